#pragma once
// Every open connection of the node: for limits, for the admin API and for a
// graceful shutdown. Touched on connect and disconnect only, never per packet.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker/codec/reason_code.hpp"

namespace ringmq::net {

// What the admin API shows of a connection.
struct connection_view {
  std::uint64_t id = 0;
  std::string client_id;
  std::optional<std::string> username;
  std::string peer;
  std::string listener;
  std::string protocol;  // "3.1", "3.1.1", "5.0"
  std::uint16_t keep_alive = 0;
  bool connected = false;  // CONNECT accepted
  std::int64_t connected_at_ms = 0;  // Unix time
};

class connection_handle {
 public:
  virtual ~connection_handle() = default;
  // Closes the connection from any thread (5.0 clients get DISCONNECT `code`).
  // Closes the connection with `code` (5.0: a DISCONNECT, with a Server
  // Reference when `server_reference` is not empty: 0x9C Use another server).
  virtual void shutdown(codec::reason_code code, std::string server_reference = {}) = 0;
  // A consistent snapshot, taken on the connection's own worker.
  virtual void describe(std::function<void(connection_view)> done) = 0;
};

class connection_tracker {
 public:
  std::uint64_t add(std::weak_ptr<connection_handle> c);
  void remove(std::uint64_t id);
  std::size_t size() const noexcept { return count_.load(std::memory_order_relaxed); }
  std::vector<std::shared_ptr<connection_handle>> all() const;

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::uint64_t, std::weak_ptr<connection_handle>> connections_;
  std::uint64_t next_id_ = 0;
  std::atomic<std::size_t> count_{0};
};

}  // namespace ringmq::net
