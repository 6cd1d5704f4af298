#pragma once
// A TCP relay on loopback for tests that need to break a connection between
// two live processes: it accepts on its own address, connects each client to
// the target, copies bytes both ways on one thread, and cut() closes every
// connection it relays at once (new ones are accepted afterwards).

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ringmq::testing {

class tcp_proxy {
 public:
  // Listens on listen_ip with a port the kernel picks; relays to target.
  tcp_proxy(std::string listen_ip, std::string target_ip, std::uint16_t target_port);
  ~tcp_proxy();
  tcp_proxy(const tcp_proxy&) = delete;
  tcp_proxy& operator=(const tcp_proxy&) = delete;

  bool listening() const noexcept { return port_ != 0; }
  std::uint16_t port() const noexcept { return port_; }
  std::string address() const { return listen_ip_ + ":" + std::to_string(port_); }

  // Closes every relayed connection (both sides see it end); returns how many.
  std::size_t cut();
  // Connections relayed since the start.
  std::size_t accepted() const noexcept { return accepted_.load(); }

 private:
  void run();

  std::string listen_ip_;
  std::string target_ip_;
  std::uint16_t target_port_;
  std::uint16_t port_ = 0;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  std::atomic<bool> stop_{false};
  std::atomic<bool> cut_requested_{false};
  std::atomic<std::size_t> accepted_{0};
  std::mutex mutex_;
  std::size_t last_cut_ = 0;
  std::atomic<std::size_t> cuts_done_{0};
  std::thread thread_;
};

}  // namespace ringmq::testing
