#pragma once
// Acknowledgements that wait for the store. A PUBACK, PUBREC, PUBCOMP,
// SUBACK or UNSUBACK goes out only once every store write its packet caused
// is durable, and acknowledgements leave in the order their packets came in
// ([MQTT-4.6.0-2]), so one waiting acknowledgement holds back those after it.
// Completions arrive on the store's thread; the sequencer is thread-safe and
// writes through the connection's (thread-safe) outbox.

#include <boost/container/devector.hpp>
#include <memory>
#include <functional>
#include <mutex>
#include <system_error>
#include <vector>

#include "broker/codec/packets.hpp"
#include "broker/core/outbox.hpp"
#include "broker/core/session_keeper.hpp"
#include "storage/store.hpp"

namespace ringmq::core {

class ack_sequencer : public std::enable_shared_from_this<ack_sequencer> {
 public:
  // `store` may be null: every acknowledgement goes out at once. With
  // `wait_out_failures`, a failed write is waited out (the store keeps
  // retrying it) instead of turning the packets into refusals: for packets
  // that have no failure form and must simply wait for the disk.
  ack_sequencer(std::shared_ptr<outbox> out, storage::store* store,
                bool wait_out_failures = false);

  // Sends `ack` once everything up to `seq` is durable (0: nothing to wait for).
  void send(codec::packet ack, storage::commit_seq seq);
  // Like send(), and the acknowledgement also waits until release() was
  // called `holds` times with the returned gate: a SUBACK waits for the
  // cluster's peers this way, any acknowledgement for a session keeper.
  std::uint64_t send_gated(codec::packet ack, storage::commit_seq seq, std::uint32_t holds = 1);
  void release(std::uint64_t gate);
  // What the gate waited for will not happen (a keeper could not commit):
  // the acknowledgement is sent in its failure form, or the connection closed.
  void fail(std::uint64_t gate);
  // Sends `ack` after `w`: its store position and its keeper's wait. With
  // `close_on_failure`, a failure closes the connection instead of sending
  // the acknowledgement's failure form: for a numbered QoS 2 message, whose
  // client must send it again under the same packet id (a 0x97 PUBREC would
  // end the exchange, and its retry would be another message).
  void send_after(codec::packet ack, const written& w, bool close_on_failure = false);

  // True while acknowledgements are waiting for the store.
  bool waiting() const;

  // Called (outside the sequencer's lock) with the packet id of a PUBREC
  // that failed: the QoS 2 message was not kept, so its packet id must not
  // make the client's resend look like a duplicate. Set once, before use.
  void on_refused_pubrec(std::function<void(std::uint16_t packet_id)> handler);

 private:
  struct entry {
    storage::commit_seq seq;
    codec::packet ack;
    std::uint64_t gate = 0;  // 0: not gated (or released)
    std::uint32_t holds = 0;
    bool failed = false;
    bool close_on_failure = false;
  };
  std::uint64_t enqueue(codec::packet&& ack, storage::commit_seq seq, std::uint32_t holds,
                        bool close_on_failure = false);
  // The front failed: its failure form goes out, or the connection closes (false).
  bool send_failure_locked(entry& front);
  void on_durable(storage::commit_seq seq, std::error_code ec);
  // Sends what may leave from the front; false when the connection was closed.
  bool drain_locked();
  // Tells the refusal handler about the PUBRECs that failed meanwhile.
  void notify_refused(std::unique_lock<std::mutex>& lock);
  // Turns an acknowledgement into its failure form when the write failed.
  // Returns false when the failure cannot be expressed (the connection closes).
  static bool to_failure(codec::packet& ack, codec::protocol_version version);

  std::shared_ptr<outbox> out_;
  storage::store* store_;
  const bool wait_out_failures_;
  mutable std::mutex mutex_;
  // Empty for almost every connection: devector allocates nothing until used.
  boost::container::devector<entry> waiting_;
  storage::commit_seq durable_ = 0;
  storage::commit_seq requested_ = 0;
  storage::commit_seq failed_ = 0;  // writes up to here failed (held back by a gate meanwhile)
  std::uint64_t next_gate_ = 1;
  std::function<void(std::uint16_t)> on_refused_pubrec_;
  std::vector<std::uint16_t> refused_pubrecs_;
};

}  // namespace ringmq::core
