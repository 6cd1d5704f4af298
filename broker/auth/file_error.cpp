#include "broker/auth/file_error.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ringmq::auth {

std::string file_error::to_string() const {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line);
  out += ": ";
  out += message;
  return out;
}

std::optional<std::string> read_text_file(const std::string& path, file_error& error) {
  error = file_error{path, 0, {}};
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error.message = std::string("cannot open: ") + std::strerror(errno);
    return std::nullopt;
  }
  std::string content;
  char buffer[16 * 1024];
  for (;;) {
    const auto n = ::read(fd, buffer, sizeof buffer);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      error.message = std::string("cannot read: ") + std::strerror(errno);
      ::close(fd);
      return std::nullopt;
    }
    content.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return content;
}

}  // namespace ringmq::auth
