#pragma once
// Which numbered QoS 2 messages of one publisher a session has taken.
//
// A QoS 2 message from a replicated persistent session is numbered in its
// publisher's sequence (message::publish_number). When the node it arrived
// at dies before the publisher was told, the publisher sends it again (same
// packet id, DUP) to another node, which routes it again under the same
// number: sessions that took it the first time must not take it twice. A
// number is taken once with the packet id it came with; the same number with
// another packet id is another message (a node that died before the number
// was written numbered it, and the client did not resend in order), which is
// taken too: at worst a duplicate, never a loss.
//
// The window remembers the last `span` numbers below the highest. A publisher
// has at most its Receive Maximum of QoS 2 messages unanswered, and only
// those are ever resent, so a resend falls inside it; one further back is
// taken (at-least-once, never lost). Pure logic, no locks.

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace ringmq::core {

class dedup_window {
 public:
  static constexpr std::uint64_t span = 64;

  // True, and remembered, when `number` with `packet_id` was not taken yet.
  bool admit(std::uint64_t number, std::uint16_t packet_id);
  // Takes back an admit() whose copy was not kept (its write failed): the
  // number with that packet id is taken again when it comes again.
  void forget(std::uint64_t number, std::uint16_t packet_id);

  std::uint64_t top() const noexcept { return top_; }

  // The packet ids of top, top-1, ... as 2-byte big-endian values (the
  // DedupRecord of docs/storage.md), and back. decode() is false (and the
  // window empty) for bytes of the wrong length.
  std::string encode_ids() const;
  bool decode(std::uint64_t top, std::string_view ids);

 private:
  std::uint64_t top_ = 0;                   // 0: nothing taken
  std::array<std::uint16_t, span> ids_{};   // ids_[d]: packet id taken as top_ - d (0: none)
};

// A numbered message taken by a session: what the journal writes in the
// same change as its copy (queued or in flight), so that the copy and the
// knowledge that it was taken survive together or not at all.
struct dedup_note {
  // Called (from any thread) with publisher, number and packet id when the
  // change with the copy was not kept.
  using lost_handler = std::function<void(const std::string&, std::uint64_t, std::uint16_t)>;
  const std::string& publisher;
  const dedup_window& window;
  std::uint64_t number = 0;
  std::uint16_t packet_id = 0;
  const lost_handler* on_lost = nullptr;
};

}  // namespace ringmq::core
