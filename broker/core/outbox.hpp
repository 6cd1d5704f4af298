#pragma once
// The thread-safe channel into one network connection. Anyone (the connection's
// own engine, a publisher on another worker delivering to this client, a
// takeover, an admin kick) appends encoded packets or asks for a close; the
// connection's worker is woken at most once per batch and writes everything
// that accumulated with one write. The lock is a leaf: nothing else is locked
// while it is held.

#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "broker/codec/encoder.hpp"

namespace ringmq::core {

class outbox {
 public:
  // `wake` schedules a flush on the connection's worker; it must not run the
  // flush inline (it is called from any thread).
  using wake_function = std::function<void()>;

  outbox(codec::protocol_version version, wake_function wake, std::size_t soft_limit_bytes);

  // Replaces the wake function; only before the outbox is shared with other threads.
  void set_wake(wake_function wake) { wake_ = std::move(wake); }

  codec::protocol_version version() const noexcept { return version_; }
  void set_version(codec::protocol_version v) noexcept { version_ = v; }

  // Encodes `p` for this connection. Returns false when the connection is closing.
  bool send(const codec::packet& p);
  bool send(const codec::publish_view& p);

  // Whether more than the soft limit is waiting (QoS 0 deliveries are dropped
  // then), and since when: a congestion that has lasted longer than
  // `overload_stuck_after` is a reader that stopped, not one that is slow.
  enum class congestion { none, slow, stuck };
  congestion congested(std::chrono::steady_clock::time_point now) const;
  std::size_t pending_bytes() const;

  // Asks the connection to close after writing what is queued (with `last`
  // first appended, e.g. a DISCONNECT), and refuses further sends.
  // `reason` says why for the log when the close comes from elsewhere
  // (takeover, admin kick), not from the connection's own engine.
  void close(std::optional<codec::packet> last = std::nullopt, std::string reason = {});
  bool closing() const;
  // Why the connection was closed from elsewhere, and the DISCONNECT code sent (if any).
  std::string close_reason() const;
  std::optional<codec::reason_code> close_code() const;

  // Called by the connection's worker: moves the queued bytes into `into`
  // (swapping buffers, so the memory is reused) and clears the wake flag.
  void take(std::string& into);

  // Packets appended since the last call; for counters.
  std::size_t take_packet_count();

 private:
  template <class Encode>
  bool append(Encode&& encode);

  mutable std::mutex mutex_;
  std::string pending_;
  // When pending_ last went over the soft limit; reset when it is written.
  mutable std::chrono::steady_clock::time_point congested_since_{};
  std::size_t packets_ = 0;
  bool wake_scheduled_ = false;
  bool closing_ = false;
  std::string close_reason_;
  std::optional<codec::reason_code> close_code_;
  codec::protocol_version version_;
  wake_function wake_;
  std::size_t soft_limit_;
};

}  // namespace ringmq::core
