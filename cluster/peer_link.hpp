#pragma once
// One other member as this node sees it: its address and channel, whether it
// is alive, the stream this node opened to it (this node's data goes out on
// it, the peer's answers come back on it) with its bounded send queue, and
// what this node has received from the peer's own stream (docs/cluster.md,
// "The peer protocol").
//
// Any thread may queue. One batch is written at a time: whatever queued up
// meanwhile goes in the next one, so a busy link writes few large batches.

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "broker/core/message.hpp"
#include "broker/core/retained_index.hpp"
#include "broker/core/session_keeper.hpp"
#include "cluster/forward_settlement.hpp"
#include "cluster/route_table.hpp"
#include "ringmq/cluster/v1/cluster.grpc.pb.h"

namespace ringmq::cluster {

enum class liveness : std::uint8_t { alive, suspect, dead };
const char* to_string(liveness l) noexcept;

class cluster_node;
class outbound_stream;

// Something waiting to be sent to a peer: a ready frame, or a message that
// becomes a Forward or Retained frame when its batch is written (so the
// expiry left is counted then, and the payload is copied once, there).
struct outbound_item {
  enum class kind : std::uint8_t { frame, forward, retained };
  kind what = kind::frame;
  std::unique_ptr<v1::PeerFrame> frame;
  core::message_ptr msg;
  bool plain = false;
  std::vector<std::string> groups;
  std::optional<core::retained_version> version;
  std::size_t bytes = 0;
  std::uint64_t seq = 0;  // messages: numbered per link, so the peer can acknowledge them
  // A QoS 1/2 message's publisher waits (with every other node it went to)
  // until the peer settles it: added to once when queued, finished once.
  std::shared_ptr<core::keeper_wait> settle;
  std::int64_t queued_at_ms = 0;
};

// What this node knows of the peer's stream to it (guarded by inbound_mutex).
struct inbound_state {
  std::uint64_t boot_id = 0;
  std::uint64_t applied_route_seq = 0;  // last route frame applied
  bool routes_synced = false;           // its snapshot arrived
  bool retained_synced = false;         // digests compared, snapshot merged if needed
  bool retained_pull_pending = false;
  int retained_mismatches = 0;  // periodic digests in a row that differed
  // Messages numbered below this were meant for an earlier process of this
  // node (the sender says so in its Hello): not delivered.
  std::uint64_t discard_below = 0;
  void* stream = nullptr;  // the inbound stream currently serving it
};

struct link_counters {
  std::atomic<std::uint64_t> forwarded_out{0};
  std::atomic<std::uint64_t> forwarded_in{0};
  std::atomic<std::uint64_t> dropped_queue_full{0};
  std::atomic<std::uint64_t> dropped_dead{0};
  std::atomic<std::uint64_t> dropped_stale{0};  // resent to a process of the peer that restarted
  std::atomic<std::uint64_t> resent{0};         // written again after a broken stream
  std::atomic<std::uint64_t> batches_out{0};
  std::atomic<std::uint64_t> streams_opened{0};
  // Forwards whose publishers were told they failed: the peer did not keep
  // them, it died first, or it did not settle them within the timeout.
  std::atomic<std::uint64_t> settle_failed{0};
};

class peer_link : public std::enable_shared_from_this<peer_link> {
 public:
  peer_link(cluster_node& owner, std::string id, origin_index index, std::int64_t now_ms,
            std::uint64_t queue_limit_bytes);
  ~peer_link();
  peer_link(const peer_link&) = delete;
  peer_link& operator=(const peer_link&) = delete;

  const std::string& id() const noexcept { return id_; }
  origin_index index() const noexcept { return index_; }

  // --- address and channel (cluster thread) --------------------------------
  // A new address closes the stream and makes a new channel.
  void set_address(const std::string& address, std::shared_ptr<grpc::ChannelCredentials> creds,
                   const grpc::ChannelArguments& args);
  std::string address() const;
  std::shared_ptr<grpc::Channel> channel() const;

  // --- liveness ------------------------------------------------------------
  void heard(std::int64_t now_ms) noexcept {
    last_heard_ms_.store(now_ms, std::memory_order_relaxed);
  }
  std::int64_t last_heard_ms() const noexcept {
    return last_heard_ms_.load(std::memory_order_relaxed);
  }
  liveness state() const noexcept { return state_.load(std::memory_order_relaxed); }
  void set_state(liveness l) noexcept { state_.store(l, std::memory_order_relaxed); }
  // The peer answered a heartbeat this node sent at `sent_ms` (this node's
  // clock): it heard this node then or later, so it cannot find this node
  // dead before dead_timeout has passed since `sent_ms`. 0: it never
  // answered since this node started.
  void confirmed(std::int64_t sent_ms) noexcept {
    auto seen = confirmed_ms_.load(std::memory_order_relaxed);
    while (sent_ms > seen &&
           !confirmed_ms_.compare_exchange_weak(seen, sent_ms, std::memory_order_relaxed)) {
    }
  }
  std::int64_t confirmed_ms() const noexcept {
    return confirmed_ms_.load(std::memory_order_relaxed);
  }

  // --- what the peer reports with its heartbeats -----------------------------
  // Its member set's epoch and the sessions it serves that are not on the
  // replica set the ring gives them; `since_ms`: when it first reported an
  // epoch at least `epoch` (0: not yet).
  struct placement_report {
    std::uint64_t epoch = 0;
    std::uint64_t misplaced = 0;
    std::int64_t at_ms = 0;
  };
  void record_placement(std::uint64_t epoch, std::uint64_t misplaced, std::int64_t now_ms) {
    std::lock_guard lock(report_mutex_);
    if (epoch > report_.epoch) epoch_raised_at_ms_ = now_ms;
    report_ = {epoch, misplaced, now_ms};
  }
  placement_report placement() const {
    std::lock_guard lock(report_mutex_);
    return report_;
  }
  // When the peer's reported epoch last rose (its view of the ring changed then).
  std::int64_t epoch_raised_at_ms() const {
    std::lock_guard lock(report_mutex_);
    return epoch_raised_at_ms_;
  }
  bool dead() const noexcept { return state() == liveness::dead; }
  // Whether its last heartbeat asked the others to take its sessions over.
  void record_releasing(bool releasing) noexcept {
    releasing_.store(releasing, std::memory_order_relaxed);
  }
  bool releasing() const noexcept { return releasing_.load(std::memory_order_relaxed); }

  // --- sending (any thread) ------------------------------------------------
  // A message under the drop policy (QoS 0 beyond half the queue bound,
  // anything beyond the bound). False when it was dropped.
  bool enqueue_message(outbound_item&& item);
  // Protocol frames are never dropped. Without `write_now` the caller (who
  // holds a lock) calls pump() later itself.
  void enqueue_frame(v1::PeerFrame&& frame, bool write_now = true);
  // A frame the next stream's opening frames restate (a route delta): queued
  // only while a stream is open or opening, else left to that restatement.
  void enqueue_restated(v1::PeerFrame&& frame);
  // Starts a write of what is queued if none is in flight. Never under a lock.
  void pump();
  // Drops every queued message (the peer is dead); returns how many.
  std::size_t drop_queue();
  std::size_t queued_messages() const;
  std::size_t queued_bytes() const;

  // --- the outbound stream (cluster thread) --------------------------------
  // Opens a stream when there is none and the backoff allows; the owner puts
  // the opening frames (Hello, route snapshot, retained digest) first.
  void maintain(std::int64_t now_ms);
  void close_stream();
  bool stream_open() const;
  // The peer is back (its own stream opened): the next maintain() retries at once.
  void retry_now();
  // Route sequence number the peer acknowledged on the current stream.
  std::uint64_t acked_route_seq() const noexcept {
    return acked_route_seq_.load(std::memory_order_acquire);
  }
  void on_route_ack(std::uint64_t seq) noexcept;
  // Messages up to `seq` are settled on the peer (those in `failed` not
  // kept): they need not be kept for a resend, and their publishers learn it.
  void on_forward_ack(std::uint64_t seq, const std::vector<std::uint64_t>& failed = {});
  // Publishers of messages the peer has not settled after `timeout_ms` are
  // told they failed (the messages are still resent). Returns how many.
  std::size_t expire_settles(std::int64_t now_ms, std::int64_t timeout_ms);
  // For the next Hello: messages below this number were written before.
  std::uint64_t resend_below() const;
  std::uint64_t peer_boot_id() const noexcept {
    return peer_boot_id_.load(std::memory_order_relaxed);
  }
  void set_peer_boot_id(std::uint64_t id) noexcept {
    peer_boot_id_.store(id, std::memory_order_relaxed);
  }

  // --- what the peer sent on its own stream --------------------------------
  std::mutex inbound_mutex;
  inbound_state inbound;
  // The peer's messages delivered so far (guarded by inbound_mutex; not reset
  // by a new stream, so that a resend after a broken stream is recognized).
  std::uint64_t delivered_boot = 0;
  std::uint64_t delivered_seq = 0;
  // Which of the peer's messages this node may tell it are settled (guarded
  // by inbound_mutex; reset with delivered_seq when the peer restarts).
  forward_settlement settlement;

  // --- pacing what the peer sends (any thread) -------------------------------
  // Batches of its messages handed to a worker and not yet delivered there.
  // The peer's stream reads its next batch only when few wait (or after a
  // bound), so that a peer sending faster than this node's worker delivers
  // meets gRPC's flow control, and then its own queue's drop policy for QoS 0,
  // instead of filling this node's task queue and its clients' outboxes.
  void delivery_posted();
  void delivery_done();
  // Waits until at most `max_waiting` batches wait, or for `bound` at most.
  void await_deliveries(int max_waiting, std::chrono::milliseconds bound);

  link_counters counters;

 private:
  friend class outbound_stream;
  void on_write_done(outbound_stream* s, bool ok);
  // One of a write's two ends (see outbound_stream::write_steps_left); after
  // the last it settles the write. True when the next batch may be written.
  bool write_step_done(outbound_stream* s);
  void on_response(outbound_stream* s, v1::PeerBatch& batch);
  void on_broken(outbound_stream* s);
  void on_done(outbound_stream* s, const grpc::Status& status);
  // A write on `s` (or its opening) ended; true when its hold is to be released.
  bool end_write_locked(outbound_stream* s);
  // Moves up to one batch's worth of items out of the queue (under mutex_).
  void queue_frame_locked(v1::PeerFrame&& frame);
  std::vector<outbound_item> take_batch_locked();
  void build_batch(std::vector<outbound_item>& items, v1::PeerBatch& out);

  cluster_node& owner_;
  const std::string id_;
  const origin_index index_;
  const std::uint64_t queue_limit_;

  // Since when the queue has held more than a short wait's worth (under mutex_).
  std::chrono::steady_clock::time_point backlog_since_{};

  std::mutex delivery_mutex_;
  std::condition_variable delivery_cv_;
  int deliveries_waiting_ = 0;

  std::atomic<std::int64_t> last_heard_ms_;
  std::atomic<std::int64_t> confirmed_ms_{0};
  mutable std::mutex report_mutex_;
  placement_report report_;
  std::int64_t epoch_raised_at_ms_ = 0;
  std::atomic<bool> releasing_{false};
  std::atomic<liveness> state_{liveness::alive};
  std::atomic<std::uint64_t> acked_route_seq_{0};
  std::atomic<std::uint64_t> peer_boot_id_{0};

  mutable std::mutex mutex_;
  std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
  std::shared_ptr<v1::Peer::Stub> stub_;  // replaced when the address changes
  outbound_stream* stream_ = nullptr;  // alive while held (see outbound_stream)
  bool writing_ = false;
  bool broken_ = false;  // stream_ failed; its hold goes once no write is in flight
  std::int64_t next_attempt_ms_ = 0;
  std::int64_t backoff_ms_ = 100;
  std::deque<outbound_item> queue_;
  // Messages written but not yet acknowledged, in order: resent on the next
  // stream. Counted in queue_bytes_ until acknowledged.
  std::deque<outbound_item> unacked_;
  std::size_t queue_bytes_ = 0;
  std::size_t queue_messages_ = 0;
  std::uint64_t next_seq_ = 0;
  std::uint64_t written_seq_ = 0;  // highest message number ever given to a write
  // The peer's last settlement, for messages that were being written when it
  // came: failures among them are found here when their write ends.
  std::uint64_t settled_seq_ = 0;
  std::vector<std::uint64_t> failed_unmatched_;
  bool draining_ = false;          // a broken stream still has a write in flight
};

}  // namespace ringmq::cluster
