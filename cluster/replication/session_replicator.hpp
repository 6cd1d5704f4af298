#pragma once
// The replicated logs of every persistent session this node takes part in,
// as owner or replica: one session_log per session, their messages gathered
// into one batch per peer, their writes into the store's group commits, their
// commits reported to whoever proposed the change.
//
// Sans-I/O like the log itself: the driver (cluster/) delivers peers'
// batches, ticks, and tells it what the store made durable; it sends what
// take_outgoing() returns. Single-threaded: the driver calls it from one
// thread (or under one lock).
//
// A session's replica set is chosen by the node that acquires it (from the
// ring: the target) and travels with every prepare and install, so every
// replica counts quorums over the same set even while the nodes' views of
// the ring differ. A set changes only with a new generation (session_log.hpp):
// an owner whose set is not the ring's any more moves the session (move()),
// serving it all along.

#include <cstdint>
#include <functional>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cluster/replication/log_storage.hpp"
#include "cluster/replication/session_change.hpp"
#include "cluster/replication/session_log.hpp"

namespace ringmq::cluster::replication {

// The member number of a node: the same on every node, never 0. It includes
// the node's incarnation (a new one whenever its store starts empty), so a
// node that lost its disk is a different member: it cannot vote for a
// session it once held (it forgot its promises) until it is added again.
member member_number(std::string_view node_id, std::uint64_t incarnation) noexcept;

// One log message and the session it is about. Prepares and installs also
// carry the session's replica set and write quorum: a replica that has no
// log of the session yet creates it with them.
struct addressed {
  std::string client;
  message msg;
  std::vector<member> replicas;
  std::size_t write_quorum = 0;
};

class session_replicator {
 public:
  struct settings {
    member self = 0;
    // The write quorum of every replica set (0: a majority), the same on
    // every node.
    std::size_t write_quorum = 0;
    // Entries a log keeps past its snapshot before the committed ones are folded in.
    std::size_t compact_after = 64;
    // Resends (on_tick) of one log at most every this many ticks, and of at
    // most this many logs per tick: with 100,000s of logs waiting on a slow
    // peer, resending all of them every tick only piles up its queue.
    std::uint64_t resend_every_ticks = 5;
    std::size_t resends_per_tick = 4'096;
  };

  struct hooks {
    // The replica set `client` should have: the first R members of its
    // preference list with its write quorum. A node that holds no log of it
    // prepares there; an acquisition installs the log there when all of
    // them are alive (else on the set the log has).
    std::function<session_log::config(const std::string& client)> placement;
    // Every member (asked whether it holds a log, by a node that holds none).
    std::function<std::vector<member>()> members;
    // Whether a member is alive as far as this node knows (null: all are).
    std::function<bool(member)> alive;
    // A move of `client` to another replica set finished (it stayed served here).
    std::function<void(const std::string& client)> moved;
    // `client` is served here from now on: its records as its log holds them,
    // and the node that served it before (0: none, or this node), to be
    // handed it over (hand_over()) once this node's routes are everywhere.
    std::function<void(const std::string& client, session_records records, member deposed)>
        owned;
    // `client` is not served here any more: a newer generation exists
    // elsewhere. Its changes fail from now on; the session itself is let go
    // when handed_over comes (or the driver gives up waiting for it).
    std::function<void(const std::string& client)> fenced;
    // The new owner of `client` (`to`) says its routes are everywhere: let it go.
    std::function<void(const std::string& client, member to)> handed_over;
    // A log of `client` was made here (or read from the store).
    std::function<void(const std::string& client)> created;
    // `from` holds `client`, which this node serves, and asks to be handed it over.
    std::function<void(const std::string& client, member from)> handover_asked;
  };

  session_replicator(settings s, log_storage& storage, hooks h);

  // Reads the logs kept in the store (at start, before anything else).
  std::error_code load();

  // --- owner side -------------------------------------------------------------
  // Becomes the owner of `client` with a new generation (a CONNECT, or the
  // owner died): owned() follows once a quorum installed it; fenced() when
  // another node won.
  void acquire(const std::string& client);
  bool serving(const std::string& client) const;
  // Moves a served session to the replica set placement() gives now, with a
  // new generation; its changes meanwhile wait and commit in it. False when
  // it is not served here, already moving, or already there.
  bool move(const std::string& client);
  // Tells `to` (the node that served `client` before) that the session is
  // served here now; nothing when it is not.
  void hand_over(const std::string& client, member to);
  // Asks `to` (who holds the newest generation this node knows of) to hand
  // `client` over if it serves it.
  void ask_handover(const std::string& client, member to);
  // Appends a change of a served session. `done(true)` once it is committed on
  // the write quorum; `done(false)` when it will not be here (fenced). False
  // (and `done` not kept) when the session is not served here.
  bool propose(const std::string& client, std::string change, std::function<void(bool)> done);

  // --- everything -------------------------------------------------------------
  void on_messages(member from, std::vector<addressed> batch);
  // Resends what is not acknowledged, for the logs that have anything to resend.
  void on_tick();
  // The store made everything up to `seq` durable.
  void on_durable(storage::commit_seq seq);
  // What to send, one batch per peer; empty when nothing.
  std::map<member, std::vector<addressed>> take_outgoing();
  // Store positions to wait for (then call on_durable); each once.
  std::vector<storage::commit_seq> take_writes();

  // --- views ------------------------------------------------------------------
  std::size_t sessions() const noexcept { return logs_.size(); }
  std::size_t owned_sessions() const noexcept;
  // Owned sessions that fewer than all their replicas hold entirely.
  std::size_t under_replicated() const noexcept;
  const session_log* log_of(const std::string& client) const;
  // Session data (snapshots and entries) carried by installs -- whole logs
  // sent to install a generation: a move to another replica set, a new owner
  // taking a session over, a replica that lost its copy -- sent and received.
  std::uint64_t install_bytes_sent() const noexcept { return install_bytes_sent_; }
  std::uint64_t install_bytes_received() const noexcept { return install_bytes_received_; }
  // Served sessions some replica does not hold entirely yet: the ticks since
  // the one behind longest fell behind, the tick it did so in counted (0:
  // every replica has everything).
  std::uint64_t replica_lag_ticks() const noexcept;
  // The records a log holds (its snapshot and every entry after it); false
  // when they do not decode.
  static bool records_of(const session_log& log, const std::string& client, session_records& out);
  // The sessions this node keeps a log of, with their replica sets.
  std::vector<std::pair<std::string, std::vector<member>>> replica_sets() const;
  // Calls `visit` with every log (without copying them; nothing may be added
  // or removed meanwhile).
  template <typename Visit>
  void for_each_log(Visit&& visit) const {
    for (const auto& [client, s] : logs_) visit(client, *s.log);
  }

 private:
  struct waiter {
    std::uint64_t seq;
    std::function<void(bool)> done;
  };
  struct held_change {
    std::string data;
    std::function<void(bool)> done;
  };
  struct session {
    std::unique_ptr<session_log> log;
    std::vector<waiter> waiters;
    std::uint64_t reported_commit = 0;
    std::uint64_t resent_at = 0;      // the tick of its last resend
    bool moving = false;              // acquiring again while serving
    ballot moved_from;                // the generation it served before the move
    std::vector<held_change> held;    // proposed while moving
    std::uint64_t behind_since = 0;   // tick + 1 when a replica fell behind (0: none is)
  };
  struct pending_write {
    storage::commit_seq seq;
    std::string client;
    std::uint64_t version;
  };

  session* find(const std::string& client);
  session& create(const std::string& client, session_log::config c,
                  session_log::durable_state restored = {});
  void apply(const std::string& client, session& s, session_log::effects&& e);
  void deliver(member from, addressed&& m);
  void maybe_compact(const std::string& client, session& s);
  void fail_waiters(session& s);
  std::vector<member> target_for(const std::string& client, const session_log& log) const;

  settings settings_;
  log_storage& storage_;
  hooks hooks_;
  std::unordered_map<std::string, session> logs_;
  // Logs with something to resend (candidates, owners not settled).
  std::unordered_set<std::string> active_;
  std::map<member, std::vector<addressed>> outgoing_;
  std::deque<pending_write> pending_writes_;  // in commit order
  std::vector<storage::commit_seq> new_writes_;
  std::uint64_t ticks_ = 0;
  std::uint64_t install_bytes_sent_ = 0;
  std::uint64_t install_bytes_received_ = 0;
};

}  // namespace ringmq::cluster::replication
