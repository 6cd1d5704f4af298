#pragma once
// The replicated log of one persistent session, Sans-I/O (like the protocol
// engine): messages and persistence completions go in, messages to send,
// what to persist and what became committed come out. No sockets, threads
// or clocks, so a simulator can drive many of them over a network that drops,
// delays, reorders and partitions, and crash them (tests/sim/).
//
// The protocol (docs/cluster.md, "Replicated persistent sessions"): the R
// members of the session's preference list are its replicas. A node becomes
// the session's owner by winning a generation (a ballot: round, node) from
// a prepare quorum Q of the replicas; it adopts the most advanced log among
// their promises and installs it on the replicas; then it appends changes,
// each committed once a write quorum W of replicas has made it durable.
// With Q + W > R every prepare quorum meets every write quorum, so a new
// owner always has every committed change; replicas refuse anything from a
// generation older than the one they promised, so a deposed owner commits
// nothing more (it is fenced).
//
// Replica sets change (members join and leave) only with a generation: a
// node that acquires a generation may install the log on a new set (the
// target). A log names the sets it must be found on: while a new
// generation's install is under way, the sets its owner prepared on and
// the target (joint); once the install has reached a write quorum of each,
// the target alone (sealed). A candidate prepares on the sets the newest
// log it hears of names (a prepare quorum of each) and installs on those
// and its target (a write quorum of each) before it serves. So the sets a
// session lived on always hold, in any prepare quorum, a log that leads on
// to where it lives now. A candidate that holds no log of the session does
// not know its sets: it prepares on every member, and takes the session as
// new only when fewer than a write quorum of them are left unheard (every
// committed change is on a write quorum of some set's members, so one of
// them answered with its log) and installs it on every member as a set too
// (a write quorum of all of them), so that two nodes creating one session at
// once with different guesses meet.

#include <compare>
#include <map>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

namespace ringmq::cluster::replication {

// A node, by a number every node derives alike from its id (cluster/replication
// member_number()): ballots of two nodes never tie.
using member = std::uint64_t;

// A generation: higher round wins, the node breaks ties (so two candidates
// never hold the same generation).
struct ballot {
  std::uint64_t round = 0;
  member node = 0;

  friend auto operator<=>(const ballot&, const ballot&) = default;
  friend bool operator==(const ballot&, const ballot&) = default;
};

struct entry {
  std::uint64_t seq = 0;  // position in the log, from 1
  ballot gen;             // the owner generation that appended it
  std::string data;       // the change; opaque to the log

  friend bool operator==(const entry&, const entry&) = default;
};

// ----- messages between the replicas of one session

struct prepare {
  ballot gen;
};
// The replica sets a log names: its set, and while its generation's install
// is under way the other sets it must also be found on.
using joint_sets = std::vector<std::vector<member>>;
// A log is a snapshot (the state after the entries up to base_seq, opaque
// here) followed by the entries after it.
struct promise {
  ballot gen;        // answered for
  bool ok = false;   // false: `promised` is higher
  ballot promised;   // the replica's promise after handling the prepare
  ballot log_gen;    // generation of the replica's log
  std::uint64_t base_seq = 0;
  std::string snapshot;
  std::vector<entry> entries;
  std::vector<member> replicas;  // the replica set of the replica's log
  joint_sets joint;
};
struct accept {
  ballot gen;
  bool install = false;    // replace the whole log with base, snapshot and entries
  std::uint64_t prev = 0;  // not install: the entries follow this seq
  std::uint64_t base_seq = 0;  // install only
  std::string snapshot;        // install only
  // The sets the owner's log names (a replica holding the log of this
  // generation names them too).
  std::vector<member> replicas;
  joint_sets joint;
  std::vector<entry> entries;
  std::uint64_t commit = 0;  // the owner's commit point: replicas may compact up to it
};
struct accepted {
  ballot gen;         // answered for
  bool ok = false;    // false: refused (see promised) or needs more (see last)
  ballot promised;
  std::uint64_t last = 0;  // the replica's last seq (in gen's log when ok)
  bool needs_install = false;
  std::uint64_t known_commit = 0;  // the owner's commit point as the replica knows it
};

// From a new owner to the node that served the session before it, once the
// new owner's subscriptions route to it everywhere: let the session go now.
// (A refusal only says that a newer generation exists; the node keeps the
// session's routes until this comes, so that no message finds nobody to
// take it in between. Sent by the driver, not by the log.)
struct handover {
  ballot gen;  // the new owner's generation
};

// From a node that holds a session it was fenced from and heard no handover
// for (it was lost, or the new owner never got that far): "if you serve it,
// hand it over to me". Answered by the driver, not the log.
struct handover_request {};

using message = std::variant<prepare, promise, accept, accepted, handover, handover_request>;

struct outgoing {
  member to;
  message msg;
};

class session_log {
 public:
  struct config {
    member self = 0;
    std::vector<member> replicas;  // may include self
    std::size_t write_quorum = 2;
    std::size_t prepare_quorum = 2;  // R - W + 1 or more
    // The write quorum asked for (0: a majority), for replica sets of
    // another size than this one's.
    std::size_t write_setting = 0;
  };

  // What survives a crash: written before the answers that depend on it.
  struct durable_state {
    ballot promised;
    ballot log_gen;
    std::uint64_t base_seq = 0;  // entries up to here are in the snapshot
    std::string snapshot;
    std::vector<entry> entries;
    // The replica set of this log (the set it was installed on; for a log
    // never installed, the set it was made with). Empty: the config's.
    std::vector<member> replicas;
    // While the install of log_gen is under way: the other sets it must
    // also be found on (empty: sealed).
    joint_sets joint;

    friend bool operator==(const durable_state&, const durable_state&) = default;
  };

  enum class role : std::uint8_t { replica, candidate, owner };

  // What the driver does after a call: send `send` now; when `persist` is
  // set, make durable_state() durable and then call on_persisted(persist).
  struct effects {
    std::vector<outgoing> send;
    std::optional<std::uint64_t> persist;  // version to persist
    std::uint64_t committed = 0;           // the owner's commit point moved to here (0: no)
    bool became_owner = false;             // installed on a write quorum: serving
    // With became_owner: the node whose generation the adopted log was
    // (0: none, or this node), to be handed the session over once this
    // node's subscriptions route everywhere.
    member deposed = 0;
    bool fenced = false;                   // was owner or candidate, is not any more
    member handed_over = 0;                // a handover came from this new owner: let go
    member handover_asked = 0;             // this node asks for a handover (when serving)
  };

  explicit session_log(config c);
  session_log(config c, durable_state restored);

  // --- owner side -------------------------------------------------------------
  // Tries to become the owner with a generation above every one seen, and
  // installs the log on `target` (empty: the set of the log it finds). An
  // owner that acquires again keeps its changes under way: they commit in
  // the new generation (a move to another replica set). `everyone`: every
  // member, prepared on when this node holds no log of the session.
  effects acquire(std::vector<member> target = {}, std::vector<member> everyone = {});
  // Appends a change (owner only; nullopt otherwise): its seq, committed later.
  std::optional<std::uint64_t> propose(std::string data, effects& out);

  // --- everything -------------------------------------------------------------
  effects on_message(member from, const message& m);
  // Resends what is not acknowledged (prepares, accepts): call periodically.
  effects on_tick();
  // durable_state() as it was at `version` is durable.
  effects on_persisted(std::uint64_t version);
  // Folds the entries up to `upto` (at most what is known committed) into
  // `snapshot`, the state after them; the log keeps only what follows.
  // False (nothing done) when `upto` is not known committed or not in the log.
  bool compact(std::uint64_t upto, std::string snapshot, effects& out);

  // --- views ------------------------------------------------------------------
  role current_role() const noexcept { return role_; }
  bool serving() const noexcept { return role_ == role::owner && installed_; }
  ballot generation() const noexcept { return gen_; }
  ballot promised() const noexcept { return durable_.promised; }
  // The newest generation this node knows of: its promise, or a newer one
  // it heard of from a refusal or a handover (which fence without asking
  // for a promise).
  ballot newest_known() const noexcept { return std::max(durable_.promised, heard_); }
  std::uint64_t committed() const noexcept { return commit_; }
  // The commit point this node knows (its own as owner, the owner's as replica).
  std::uint64_t known_commit() const noexcept { return std::max(commit_, known_commit_); }
  std::uint64_t base_seq() const noexcept { return durable_.base_seq; }
  const std::string& snapshot() const noexcept { return durable_.snapshot; }
  std::uint64_t last_seq() const noexcept;
  const std::vector<entry>& entries() const noexcept { return durable_.entries; }
  const durable_state& state() const noexcept { return durable_; }
  const config& settings() const noexcept { return config_; }
  // The replica set of the log held here.
  const std::vector<member>& replicas() const noexcept { return durable_.replicas; }
  // Candidate: every member of the sets it prepares on.
  std::vector<member> asked() const;
  // Owner: the generation of the log it adopted (its own previous one when
  // nobody else served the session meanwhile).
  ballot adopted_generation() const noexcept { return adopted_gen_; }
  // Owner: installing on a replica set other than the one before.
  bool moving() const noexcept { return role_ != role::replica && moving_; }
  // An owner with nothing left to tell anyone: every replica holds the whole
  // log and knows the commit point. A driver ticks only logs that are not
  // settled (and replicas do not need ticks).
  bool settled() const noexcept;
  // Owner: the replicas (itself included) known to hold the whole log.
  std::size_t replicas_in_sync() const noexcept;

 private:
  struct held_reply {
    std::uint64_t version;
    outgoing reply;
  };

  std::uint64_t request_persist(effects& out);
  void step_down(effects& out);
  void adopt(effects& out);
  void advance_commit(effects& out);
  void tell_deposed(effects& out);
  accept accept_from(std::uint64_t after) const;
  accept install_message() const;
  effects handle(member from, const prepare& m);
  effects handle(member from, const promise& m);
  effects handle(member from, const accept& m);
  effects handle(member from, const accepted& m);
  effects handle(member from, const handover& m);
  effects handle(member from, const handover_request& m);
  void heard_of_log(ballot log_gen, const std::vector<member>& replicas, const joint_sets& joint,
                    effects& out);
  bool quorum_promised(const std::vector<member>& set) const;
  void prepare_on_sets(effects& out);
  void maybe_adopt(effects& out);
  std::size_t peer_index(member m) const;
  bool quorum_holds(const std::vector<member>& set, std::size_t w, std::uint64_t seq) const;
  void switch_to_target();
  config with_set(const std::vector<member>& replicas) const;

  config config_;
  durable_state durable_;
  std::uint64_t version_ = 0;          // persistence requests made
  std::uint64_t durable_version_ = 0;  // persistence completed up to
  std::vector<held_reply> held_;       // answers waiting for durability

  role role_ = role::replica;
  ballot gen_;                         // candidate or owner generation
  std::uint64_t highest_round_ = 0;    // seen anywhere
  ballot heard_;                       // newest generation a refusal or handover named
  // Candidate.
  std::map<member, promise> promises_;  // for gen_, from anyone
  joint_sets sets_;                     // prepared on (candidate), installing on (owner)
  std::vector<member> target_;          // the replica set to install on
  std::vector<member> everyone_;
  bool guessed_ = false;                // config_.replicas is a guess (no log seen yet)
  ballot pointer_gen_;                  // the newest log heard of: its generation
  bool moving_ = false;                 // target_ is not the set before
  // Owner: the replicas it sends to (the old set and the target while
  // installing, then the target); the vectors below are by their index.
  std::vector<member> peers_;
  bool installed_ = false;
  std::uint64_t install_seq_ = 0;      // the adopted log ends here
  ballot deposed_;                     // the adopted log's owner, told once installed
  ballot adopted_gen_;                 // the adopted log's generation
  std::vector<std::uint64_t> match_;   // by replica index: acknowledged last seq
  std::vector<std::uint64_t> sent_;    // by replica index: last seq sent (pipelining)
  std::vector<bool> needs_install_;
  std::vector<std::uint64_t> told_commit_;  // by replica index: the commit point it acknowledged knowing
  std::uint64_t commit_ = 0;
  std::uint64_t known_commit_ = 0;  // as a replica, from the owner
  std::uint64_t self_durable_seq_ = 0;  // the owner's own log is durable up to here
  std::uint64_t install_version_ = 0;   // the owner's own install is durable at this version
  std::vector<std::pair<std::uint64_t, std::uint64_t>> pending_self_;  // (version, last seq)
};

// The log settings of a replica set with write quorum `w` (0: a majority;
// clipped to 1..R); prepares need R - W + 1, so that every prepare quorum
// meets every write quorum.
session_log::config quorums(member self, std::vector<member> replicas, std::size_t w);

}  // namespace ringmq::cluster::replication
