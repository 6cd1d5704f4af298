#pragma once
// When a peer may be told that the messages it forwarded here are settled.
//
// A node that accepts a QoS 1 or 2 message and forwards it to the nodes with
// matching routes acknowledges it to its publisher only once every such node
// has made durable what the message caused there (queued copies for
// persistent sessions, in the store or in their replicated logs): otherwise
// the copy could die with that node after the publisher was told it was safe.
// The receiving node tells the sender with a ForwardAck: every message up to
// a number is settled, and those listed as failed were not kept (their writes
// failed, or they were meant for an earlier process of this node), so the
// publisher is told the same.
//
// Messages arrive numbered and in order, a batch at a time; their writes
// become durable in any order. This keeps the batches in arrival order and
// answers the highest number below which every batch is settled. Pure
// bookkeeping: no locks (the owner holds one), no I/O.

#include <cstdint>
#include <deque>
#include <vector>

namespace ringmq::cluster {

class forward_settlement {
 public:
  using ticket = std::uint64_t;

  // A batch whose highest number is `last_seq` (above every earlier batch's)
  // began to be delivered. Returns its ticket for finish().
  ticket begin(std::uint64_t last_seq);
  // The batch's writes are durable; `failed` lists its numbers that were not
  // kept. A ticket from before reset() (or unknown) is ignored.
  void finish(ticket t, std::vector<std::uint64_t> failed = {});

  // What the sender has not been told yet: true with the highest settled
  // number and the failures below it, once there is something new to tell.
  bool take(std::uint64_t& settled, std::vector<std::uint64_t>& failed);
  // The highest number below which every batch is settled (told or not).
  std::uint64_t settled() const noexcept { return settled_; }
  // Batches begun and not yet settled.
  std::size_t pending() const noexcept { return batches_.size(); }

  // The sender restarted: its numbers start again, and what was pending for
  // its earlier process is forgotten.
  void reset();

 private:
  struct batch {
    ticket id;
    std::uint64_t last_seq;
    bool done = false;
    std::vector<std::uint64_t> failed;
  };
  void advance();

  std::deque<batch> batches_;
  ticket next_ticket_ = 1;
  std::uint64_t settled_ = 0;
  std::uint64_t told_ = 0;
  std::vector<std::uint64_t> failed_untold_;
};

}  // namespace ringmq::cluster
