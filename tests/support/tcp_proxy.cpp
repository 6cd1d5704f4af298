#include "tests/support/tcp_proxy.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

namespace ringmq::testing {

namespace {

int connect_to(const std::string& ip, std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  ::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// Closes with a reset, so that both ends see the connection fail at once.
void reset(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd);
}

}  // namespace

tcp_proxy::tcp_proxy(std::string listen_ip, std::string target_ip, std::uint16_t target_port)
    : listen_ip_(std::move(listen_ip)), target_ip_(std::move(target_ip)), target_port_(target_port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  ::inet_pton(AF_INET, listen_ip_.c_str(), &addr.sin_addr);
  socklen_t len = sizeof addr;
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 64) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      ::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
    return;
  }
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { run(); });
}

tcp_proxy::~tcp_proxy() {
  stop_ = true;
  if (wake_[1] >= 0) (void)!::write(wake_[1], "x", 1);
  if (thread_.joinable()) thread_.join();
  for (int fd : {listen_fd_, wake_[0], wake_[1]}) {
    if (fd >= 0) ::close(fd);
  }
}

std::size_t tcp_proxy::cut() {
  const auto before = cuts_done_.load();
  cut_requested_ = true;
  (void)!::write(wake_[1], "x", 1);
  // The relay thread cuts and counts; wait for it (bounded).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (cuts_done_.load() == before && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  std::lock_guard lock(mutex_);
  return last_cut_;
}

void tcp_proxy::run() {
  struct pair {
    int a;
    int b;
  };
  std::vector<pair> pairs;
  char buffer[64 * 1024];
  while (!stop_) {
    std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    for (const auto& p : pairs) {
      fds.push_back({p.a, POLLIN, 0});
      fds.push_back({p.b, POLLIN, 0});
    }
    if (::poll(fds.data(), fds.size(), 1000) < 0) continue;
    if (fds[1].revents) {
      while (::read(wake_[0], buffer, sizeof buffer) > 0) {
      }
    }
    if (cut_requested_.exchange(false)) {
      for (const auto& p : pairs) {
        reset(p.a);
        reset(p.b);
      }
      {
        std::lock_guard lock(mutex_);
        last_cut_ = pairs.size();
      }
      pairs.clear();
      ++cuts_done_;
      continue;
    }
    // Copy what came; a side that ends ends its pair. (The pollfds of pairs
    // start at index 2, two per pair, in the order of `pairs`.)
    std::vector<pair> kept;
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      const auto& p = pairs[i];
      bool alive = true;
      for (int side = 0; side < 2 && alive; ++side) {
        const auto& pfd = fds[2 + 2 * i + side];
        if (!pfd.revents) continue;
        const int from = side == 0 ? p.a : p.b;
        const int to = side == 0 ? p.b : p.a;
        const auto n = ::read(from, buffer, sizeof buffer);
        if (n <= 0) {
          alive = false;
          break;
        }
        for (ssize_t sent = 0; sent < n;) {
          const auto w = ::send(to, buffer + sent, static_cast<std::size_t>(n - sent), MSG_NOSIGNAL);
          if (w <= 0) {
            alive = false;
            break;
          }
          sent += w;
        }
      }
      if (alive) {
        kept.push_back(p);
      } else {
        reset(p.a);
        reset(p.b);
      }
    }
    pairs.swap(kept);
    if (fds[0].revents & POLLIN) {
      const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client >= 0) {
        const int target = connect_to(target_ip_, target_port_);
        if (target < 0) {
          reset(client);
        } else {
          const int one = 1;
          ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          pairs.push_back({client, target});
          ++accepted_;
        }
      }
    }
  }
  for (const auto& p : pairs) {
    reset(p.a);
    reset(p.b);
  }
}

}  // namespace ringmq::testing
