#pragma once
// Files for the security tests: a private temporary directory, writing and
// rewriting files in it, and a free TCP port for a mosquitto to listen on.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace ringmq::testing {

class scratch_dir {
 public:
  scratch_dir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "ringmq-it-auth-XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~scratch_dir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;

  std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }

  // Replaces the file atomically (write aside, rename): the broker rereading
  // it on SIGHUP sees the old content or the new one.
  std::string write(std::string_view name, std::string_view content) const {
    const auto target = file(name);
    const auto temp = target + ".new";
    {
      std::ofstream out(temp, std::ios::binary | std::ios::trunc);
      out << content;
    }
    std::filesystem::rename(temp, target);
    return target;
  }

 private:
  std::string path_;
};

// A port nothing listens on right now (the kernel picks it; tiny race accepted).
inline std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof addr;
  std::uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

}  // namespace ringmq::testing
