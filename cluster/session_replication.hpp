#pragma once
// Replicated persistent sessions on a live node (docs/cluster.md,
// "Replicated persistent sessions"): the driver of the Sans-I/O replicator.
// It keeps the records of every persistent session for the core (it is the
// journal's session_keeper): a served session's changes become entries of
// its log, committed on the write quorum of its replicas before what depends
// on them is acknowledged. It acquires a session for a CONNECT, takes over
// sessions whose owner died, installs a won session in the broker and lets go
// of one another node won.
//
// Threads: every replicator call runs on one strand of the cluster's
// io_context; workers only post to it. Peers' batches come from gRPC threads,
// store completions from the store's thread: both are posted too.

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "broker/core/broker.hpp"
#include "broker/core/session_keeper.hpp"
#include "cluster/replication/log_storage.hpp"
#include "cluster/replication/session_replicator.hpp"
#include "storage/store.hpp"

namespace ringmq::cluster {

class session_replication final : public core::session_keeper {
 public:
  using member = replication::member;

  struct settings {
    member self = 0;
    std::size_t replication_factor = 3;  // clipped to the member count
    std::size_t write_quorum = 0;        // 0: a majority of the replicas
    std::chrono::milliseconds acquire_timeout{3'000};
    // How long a fenced session waits for its new owner's handover before
    // asking for it (twice), then taking the session back.
    std::chrono::milliseconds handover_timeout{5'000};
    // How often unacknowledged log messages are resent and acquisitions
    // timed out; 0: never by itself (the owner of the io_context calls
    // tick(), as the deterministic simulation of tests/sim does).
    std::chrono::milliseconds tick{100};
    // How often sessions without a live owner are looked for, and served
    // sessions whose replica set is not the ring's any more are moved.
    std::chrono::milliseconds orphan_check{500};
    // Moves under way at once (each a new generation of one session).
    std::size_t max_moves = 1024;
    // Takeovers of orphans under way at once (more start at each look, every
    // orphan_check, as these finish).
    std::size_t max_takeovers = 1'024;
    // A log's unacknowledged messages are sent again at most every this many
    // ticks (replication::session_replicator::settings).
    std::uint64_t resend_every_ticks = 5;
    // The time, for deadlines (a simulation gives its own).
    std::function<std::chrono::steady_clock::time_point()> now = [] {
      return std::chrono::steady_clock::now();
    };
    // No thread runs the io_context: its owner polls it (the simulation).
    // stop() then finishes on the spot instead of waiting for the strand.
    bool polled = false;
  };

  struct hooks {
    // The members of `client`'s preference list, in order, at most `n`.
    std::function<std::vector<member>(const std::string& client, std::size_t n)> preference;
    // Whether a member is up as far as this node can tell (self: always).
    std::function<bool(member)> alive;
    // Sends a serialized LogBatch to a member (dropped when it cannot be).
    std::function<void(member to, std::string batch)> send;
    // Whether a member may serve sessions: alive and not handing its
    // sessions off (a leaving node that asked for them to be taken over).
    // Its sessions are taken over like a dead member's. Null: alive.
    std::function<bool(member)> may_serve;
    // Every member of the cluster, alive or not (asked whether they hold a
    // log of a session this node holds none of).
    std::function<std::vector<member>()> members;
    // Changes whenever the ring may give sessions other replica sets (the
    // member set's epoch); null: looked at every time.
    std::function<std::uint64_t()> ring_version;
  };

  session_replication(settings s, storage::store& store, core::broker& broker, hooks h,
                      boost::asio::io_context& io);
  ~session_replication() override;

  // Reads the logs kept in the store (before start()).
  std::error_code load();
  // Once the broker has recovered the store (before anything else runs):
  // the persistent sessions it holds stay this node's (see keeps()).
  void keep_stored_sessions_local();
  void start();
  // Fails what waits; after it nothing runs on the strand.
  void stop();
  // One round of resends, acquisition timeouts and the look for sessions
  // without a live owner (run every settings.tick by itself; posted to the
  // strand).
  void tick_now();

  // --- core::session_keeper ----------------------------------------------------
  // Every persistent session's records are kept in its log, but for those
  // this node's store held when replication started (kept as before, on this
  // node, until they end: see start()).
  bool keeps(const std::string& client) const override { return !local_.contains(client); }
  void append(const std::string& client, std::uint64_t writer, storage::write_batch&& change,
              std::function<void(bool committed)> done) override;

  // --- the cluster node --------------------------------------------------------
  // Makes `client` served here (its records in the broker) and calls
  // `done(true)`; `done(false)` when another node won or no quorum answered
  // in time. From any thread; `done` runs on the strand.
  void acquire(const std::string& client, std::function<void(bool)> done);
  // A LogBatch from a peer.
  void on_batch(member from, std::string bytes);
  // The node is cut off from its cluster, or back (cluster_node::cut_off()).
  // Cut off, it may have been found dead and its sessions taken over: it
  // disconnects the clients of the sessions it serves, refuses CONNECTs of
  // replicated sessions and takes nothing over. Back, each session it
  // served is acquired again (a new generation) when its client connects,
  // so the node learns whether another one serves it now. Any thread.
  void set_cut_off(bool off);

  // What this node's log of one session says (for the admin API).
  struct session_state {
    std::string role;  // "owner" (serving), "candidate", "replica"
    std::uint64_t round = 0;
    member generation_owner = 0;  // who holds the newest generation it knows
    std::vector<member> replicas;
    std::uint64_t last_seq = 0;
    std::uint64_t committed = 0;  // as far as this node knows
    std::size_t replicas_in_sync = 0;  // owner only
  };
  // Calls `done` on the strand with the state of `client`'s log here
  // (nullopt: this node keeps none).
  void describe(const std::string& client,
                std::function<void(std::optional<session_state>)> done);

  // The logs themselves, for a simulation that polls the io_context and
  // looks at them between polls (never from another thread).
  const replication::session_replicator& replicator() const { return *replicator_; }

  // --- views (any thread) -------------------------------------------------------
  // Whether this node keeps a log of `client`'s session (it may have ended).
  bool has_log(const std::string& client) const;
  std::size_t sessions() const noexcept { return sessions_.load(); }
  std::size_t owned_sessions() const noexcept { return owned_.load(); }
  std::size_t under_replicated() const noexcept { return under_replicated_.load(); }
  std::uint64_t malformed_batches() const noexcept { return malformed_.load(); }
  // Sessions moved to another replica set since start, and moving now.
  std::uint64_t moved_sessions() const noexcept { return moved_.load(); }
  std::size_t moving_sessions() const noexcept { return moving_count_.load(); }
  // Served sessions whose replica set is not the one the ring gives them
  // (waiting to be moved, or moving).
  std::size_t misplaced_sessions() const noexcept { return misplaced_.load(); }
  // Sessions this node was fenced from and still holds until their new
  // owner's hand-over.
  std::size_t handing_over_sessions() const noexcept { return handing_over_count_.load(); }
  // Sessions this node is acquiring (a takeover, or a CONNECT): coming to
  // be served here, not yet installed on a write quorum of their sets.
  std::size_t arriving_sessions() const noexcept { return arriving_.load(); }
  // Session data carried by installs, sent and received (see
  // replication::session_replicator::install_bytes_sent()).
  std::uint64_t handoff_bytes_sent() const noexcept { return handoff_sent_.load(); }
  std::uint64_t handoff_bytes_received() const noexcept { return handoff_received_.load(); }
  // How long the served session whose replicas are furthest behind has been
  // so (zero: every replica holds every served session entirely).
  std::chrono::milliseconds replica_lag() const noexcept {
    return std::chrono::milliseconds(replica_lag_ms_.load());
  }
  // Looks for sessions without a live owner are numbered; this is the number
  // of the latest that found none this node should take over (and none it
  // was still taking over). A look numbered above the count when a member
  // died saw it dead: every session of it this node takes over is served.
  std::uint64_t orphan_checks() const noexcept { return orphan_checks_.load(); }
  std::uint64_t last_quiet_orphan_check() const noexcept { return quiet_check_.load(); }

 private:
  struct acquire_waiter {
    std::chrono::steady_clock::time_point deadline;
    std::function<void(bool)> done;
  };

  // On the strand:
  void on_owned(const std::string& client, replication::session_records records,
                member deposed);
  void on_fenced(const std::string& client);
  void let_go(const std::string& client, const char* why);
  void finish_acquire(const std::string& client, bool ok);
  void flush();
  void schedule_flush();
  void schedule_tick();
  void tick();
  void finish_stop();
  void restore_own_sessions();
  void take_over_orphans();
  bool may_serve(member m) const;
  void find_misplaced();
  void start_moves();
  void update_views();
  replication::session_log::config placement(const std::string& client);

  settings settings_;
  storage::store& store_;
  core::broker& broker_;
  hooks hooks_;
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::steady_timer timer_;
  replication::log_storage log_storage_;
  std::unique_ptr<replication::session_replicator> replicator_;
  std::unordered_map<std::string, std::vector<acquire_waiter>> acquiring_;
  // Sessions this node was fenced from and still holds, waiting for their
  // new owner's handover (its routes everywhere); let go at the deadline
  // regardless (the new owner may have died meanwhile).
  struct handover_wait {
    std::chrono::steady_clock::time_point deadline;
    int asks = 0;  // handover requests sent since the last try to take it back
  };
  std::unordered_map<std::string, handover_wait> handing_over_;
  // The serial of the session object last loaded from each log into the
  // broker (broker::adopt_session): changes of older objects are refused.
  std::unordered_map<std::string, std::uint64_t> adopted_;
  // Sessions served here whose routes every live peer has (after taking them
  // over): a handover may be given for them.
  std::unordered_set<std::string> routed_;
  // Persistent sessions the store held at start (written before sessions
  // were replicated): kept in the store as before. Fixed after start().
  std::unordered_set<std::string> local_;
  // Sessions whose last generation was this node's before it restarted:
  // taken back by the first look for orphans.
  std::unordered_set<std::string> restarted_;
  // Served sessions this node was cut off from its cluster with: another
  // node may serve them now. Acquired again before a client is served.
  std::unordered_set<std::string> in_doubt_;
  std::atomic<bool> cut_off_{false};
  std::chrono::steady_clock::time_point last_orphan_check_{};
  bool flush_posted_ = false;
  bool stopped_ = false;
  mutable std::mutex logged_mutex_;
  std::unordered_set<std::string> logged_;  // clients with a log here (has_log)
  std::atomic<std::size_t> sessions_{0};
  std::atomic<std::size_t> owned_{0};
  std::atomic<std::size_t> under_replicated_{0};
  std::atomic<std::uint64_t> malformed_{0};
  std::unordered_set<std::string> moving_;  // on the strand
  std::deque<std::string> misplaced_queue_;  // to move, as the last look found
  // Whether the next look compares every served session with the ring (it
  // costs a ring lookup per session): after the ring changed, while some are
  // left to move, and every 10 s (a move that waited for a dead member).
  std::uint64_t ring_version_seen_ = 0;
  bool misplaced_left_ = true;
  std::chrono::steady_clock::time_point last_full_look_{};
  std::atomic<std::uint64_t> moved_{0};
  std::atomic<std::size_t> moving_count_{0};
  std::atomic<std::size_t> misplaced_{0};
  std::atomic<std::size_t> arriving_{0};
  std::atomic<std::size_t> handing_over_count_{0};
  std::atomic<std::uint64_t> handoff_sent_{0};
  std::atomic<std::uint64_t> handoff_received_{0};
  std::atomic<std::int64_t> replica_lag_ms_{0};
  std::atomic<std::uint64_t> orphan_checks_{0};
  std::atomic<std::uint64_t> quiet_check_{0};
  // What the store's completions point at: cleared by stop().
  std::shared_ptr<std::atomic<bool>> alive_ = std::make_shared<std::atomic<bool>>(true);
};

}  // namespace ringmq::cluster
