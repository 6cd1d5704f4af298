#pragma once
// This node's part in its cluster (docs/cluster.md has the protocol and its
// guarantees). It implements the core's cluster_link: the broker tells it of
// local route changes, accepted messages, SUBACKs and CONNECTs, and it keeps
// the member set, the liveness of every peer, the route table, the streams
// to the peers and the client-id directory.
//
// Threads: the broker's workers call the cluster_link methods (they only
// queue, never wait); gRPC's threads run the peer service and the streams'
// completions; one cluster thread of its own runs the timers (heartbeats,
// liveness, digests, seeds and DNS, reconnects, wait timeouts).
// A node without cluster.bind is a cluster of one: the same object, with no
// peer server and nobody to send to.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "broker/core/broker.hpp"
#include "broker/core/cluster_link.hpp"
#include "cluster/member_set.hpp"
#include "cluster/peer_link.hpp"
#include "cluster/ring.hpp"
#include "cluster/route_table.hpp"
#include "cluster/settings.hpp"
#include "storage/store.hpp"

namespace grpc {
class Server;
}

namespace ringmq::cluster {

class peer_service;
class session_replication;

// A stream a peer opened to this node, as the node sees it.
class inbound_handle {
 public:
  virtual void cancel() = 0;
  // Answers written back on this stream later (thread-safe): a settlement
  // that became durable after its batch was handled.
  virtual void reply(std::vector<v1::PeerFrame>&& frames) = 0;

 protected:
  ~inbound_handle() = default;
};

struct peer_view {
  std::string id;
  std::string address;
  liveness state = liveness::dead;
  bool stream_open = false;
  std::int64_t last_heard_ms_ago = 0;
  std::size_t queued_messages = 0;
  std::size_t queued_bytes = 0;
  std::uint64_t acked_route_seq = 0;
  bool routes_synced = false;
  bool retained_synced = false;
  std::size_t routes = 0;
  std::uint64_t forwarded_out = 0;
  std::uint64_t forwarded_in = 0;
  std::uint64_t streams_opened = 0;
};

struct member_view {
  std::string id;
  std::uint64_t incarnation = 0;
  std::uint32_t vnodes = 0;
  std::string address;
  liveness state = liveness::alive;
  bool self = false;
  bool leaving = false;     // a drain of it is in the member set
  std::uint32_t slots = 0;  // of the ring's slot_count
};

struct cluster_view {
  std::string node_id;
  std::string name;
  std::string address;  // advertised; empty alone
  bool clustered = false;
  bool member = true;  // false once this node was removed
  bool ready = false;
  std::uint64_t epoch = 0;
  std::uint64_t digest = 0;
  std::uint64_t route_seq = 0;
  std::uint32_t ring_slots = ring::slot_count;
  std::vector<member_view> members;
  std::vector<peer_view> peers;
  std::size_t directory_entries = 0;
  // Replicated persistent sessions (all 0 when off).
  bool replicating_sessions = false;
  std::size_t session_logs = 0;
  std::size_t owned_sessions = 0;
  std::size_t under_replicated_sessions = 0;
  // Served sessions whose replica set is not the one the ring gives them
  // now (a member joined or left): waiting to be moved, or moving.
  std::size_t misplaced_sessions = 0;
  std::size_t moving_sessions = 0;
  std::uint64_t moved_sessions = 0;  // since start
  // Sessions being acquired here (takeovers and CONNECTs under way).
  std::size_t arriving_sessions = 0;
  // Session data carried by installs, since start.
  std::uint64_t handoff_bytes_out = 0;
  std::uint64_t handoff_bytes_in = 0;
  // How long the served session furthest behind on a replica has been so.
  double replica_lag_seconds = 0;
  // Totals since start.
  std::uint64_t forwarded_out = 0;
  std::uint64_t forwarded_in = 0;
  std::uint64_t dropped_peer_queue_full = 0;
  std::uint64_t dropped_peer_dead = 0;
  std::uint64_t dropped_peer_restarted = 0;
  std::uint64_t resent = 0;
  std::uint64_t forwards_failed = 0;  // publishers told a forward was not settled
  std::uint64_t dropped_claim_timeout = 0;
  std::uint64_t dropped_malformed = 0;
  std::uint64_t route_sync_timeouts = 0;
};

class cluster_node final : public core::cluster_link {
 public:
  // Runs `task` on a broker worker chosen by `key` (the same key, the same
  // worker: the order of one peer's messages is kept).
  using post_function = std::function<void(std::size_t key, std::function<void()> task)>;
  // Timings for the metrics: ("rpc:<call>", seconds) and ("route_sync", seconds).
  using observe_function = std::function<void(std::string_view what, double seconds)>;

  cluster_node(cluster_settings settings, core::broker& broker, storage::store* store,
               post_function post);
  ~cluster_node() override;
  cluster_node(const cluster_node&) = delete;
  cluster_node& operator=(const cluster_node&) = delete;

  // Reads the member set from the store, or starts one with this node's join.
  // Throws std::runtime_error when the store's set cannot be read.
  void load();
  // Opens the peer server (with cluster.bind) and starts the cluster thread.
  // Throws std::runtime_error when the address cannot be used.
  void start();
  // Ends every stream and the peer server; waits until gRPC let go of them.
  void stop();

  // A member with its routes and retained messages synced with every peer
  // that is not dead (docs/cluster.md, "Readiness").
  bool ready() const;
  // Why not ready, for logs and /readyz ("" when ready).
  std::string not_ready_reason() const;
  std::uint16_t port() const noexcept { return port_; }
  const std::string& advertised() const noexcept { return advertised_; }
  const std::string& node_id() const noexcept { return settings_.node_id; }
  cluster_view view() const;
  // Node id of `client_id`'s directory owner (first alive member of its preference list).
  std::string directory_owner_of(const std::string& client_id) const;
  // This node keeps a replicated session log of `client_id` (a directory
  // owner tells claimants so).
  bool has_replicated_session(const std::string& client_id) const;
  // Replicated sessions: what this node's log of `client_id` says, with
  // member numbers as node ids; `done(nullopt)` when it keeps none (or
  // sessions are not replicated). `done` runs on the cluster's thread.
  struct session_description {
    std::string role;
    std::uint64_t round = 0;
    std::string generation_owner;
    std::vector<std::string> replicas;
    std::uint64_t last_seq = 0;
    std::uint64_t committed = 0;
    std::size_t replicas_in_sync = 0;
  };
  void describe_session(const std::string& client_id,
                        std::function<void(std::optional<session_description>)> done) const;
  // Removes `node` from the member set. Returns an error text, or empty.
  std::string forget(const std::string& node);

  // Leaving the cluster (docs/cluster.md, "Leaving"): a drain event for this
  // node; the ring for sessions leaves it out, so every session it serves
  // or holds a copy of moves to the other members, and it reports not
  // ready. Returns an error text, or empty (also when already leaving).
  std::string leave();
  bool leaving() const;
  struct handoff_status {
    bool done = false;  // nothing needs this node any more
    std::size_t misplaced_here = 0;
    std::size_t moving_here = 0;
    std::vector<std::string> waiting_for;  // peers that still move sessions off it
  };
  handoff_status handoff() const;
  // The last step of leaving: the leave event of this node's incarnation.
  std::string depart();
  // After its clients are disconnected, a leaving node asks the other
  // members (with its heartbeats) to take over the sessions it still serves:
  // their first live replicas do, and it hands each over as usual, so that
  // none is left ownerless when it departs. Idempotent.
  void release_sessions();
  // Replicated sessions this node serves, or was fenced from and still
  // holds until their new owner's hand-over.
  std::size_t sessions_served() const;
  void set_observer(observe_function f) { observer_ = std::move(f); }
  // What keeps persistent sessions' records when they are replicated (null: the store).
  core::session_keeper* session_keeper() const noexcept;
  // Called (from any thread) when readiness may have changed. Set before start().
  void set_readiness_observer(std::function<void()> f) { readiness_observer_ = std::move(f); }

  // --- core::cluster_link --------------------------------------------------
  void local_route_added(const std::string& filter) override;
  void local_route_removed(const std::string& filter) override;
  bool can_settle(std::string_view topic) const override;

  // Whether this node is cut off from its cluster (docs/cluster.md, "Cut off
  // from the cluster"): fewer than a majority of the members answered its
  // heartbeats within the lease, now or at some time since it last looked
  // (it was paused). The others may find it dead and take its sessions
  // over, so it then serves none of them until its peers answer again, and
  // acquires each again before its client is served. Any thread.
  bool cut_off() const { return cut_off_.load() || now_ms() >= held_until_.load(); }
  void when_forwards_delivered(std::function<void()> done) override;
  std::size_t publish(const core::message_ptr& m, const core::retained_version* retained,
                      std::vector<std::string>& local_groups, bool& groups_decided) override;
  void when_routes_synced(std::function<void()> done) override;
  bool claim(const std::string& client_id, std::uint64_t connection_id, bool persistent,
             core::claim_result& result, std::function<void(core::claim_result)> later) override;
  bool confirm(const std::string& client_id, std::uint64_t connection_id,
               const std::function<void()>& open_session) override;
  void release(const std::string& client_id, std::uint64_t connection_id) override;

  // --- for peer_link and the peer service ------------------------------------
  std::int64_t now_ms() const;
  // Puts the frames that open a stream to `link` first in its queue (under
  // the routes lock, so the snapshot and the deltas after it agree).
  void opening_frames(peer_link& link,
                      const std::function<void(std::vector<v1::PeerFrame>&&)>& put_first);
  // Answers on this node's stream to `link`.
  void on_peer_response(peer_link& link, v1::PeerBatch& batch);
  void on_stream_done(peer_link& link, const grpc::Status& status);

  // A batch on a stream a peer opened. `origin` is null until its Hello.
  // Frames to answer go to `replies`; a set `finish` ends the stream.
  struct inbound_result {
    std::vector<v1::PeerFrame> replies;
    std::optional<grpc::Status> finish;
  };
  void on_inbound_batch(inbound_handle& stream, std::shared_ptr<peer_link>& origin,
                        const v1::PeerBatch& batch, inbound_result& result);
  void on_inbound_closed(inbound_handle& stream, const std::shared_ptr<peer_link>& origin);
  grpc::Status on_exchange(const v1::MemberSet& in, v1::MemberSet& out);
  void on_claim(const v1::ClaimRequest& request, std::function<void(grpc::Status, bool)> done);
  void on_kick(const v1::KickRequest& request, std::function<void(grpc::Status, bool)> done);

 private:
  struct peer_table {
    std::vector<std::shared_ptr<peer_link>> by_index;  // [0] (this node) is null
    std::vector<std::shared_ptr<peer_link>> all;
  };
  struct ticket {
    std::uint64_t boot_id = 0;
    std::uint64_t connection = 0;
    friend bool operator==(const ticket&, const ticket&) = default;
  };
  struct holder {
    origin_index node = 0;
    ticket t;
  };
  struct queued_claim {
    origin_index claimant;
    ticket t;
    std::function<void(bool)> done;
  };
  struct kick_waiter {
    std::uint64_t connection;
    std::function<void(bool)> done;
  };
  struct route_waiter {
    std::uint64_t seq;
    std::int64_t started_ms;
    std::int64_t deadline_ms;
    std::function<void()> done;
  };

  // --- membership (cluster_node.cpp) ---
  void apply_members(const member_set& incoming, const char* source);
  void rebuild_locked();
  void persist_members_locked();
  std::shared_ptr<const peer_table> peers() const;
  // A copy of the links (safe to loop over: `peers()->all` in a range-for
  // would outlive the table it points into).
  std::vector<std::shared_ptr<peer_link>> all_links() const { return peers()->all; }
  const peer_table& peers_for_this_thread() const;
  std::shared_ptr<peer_link> link_by_id(const std::string& id) const;
  std::shared_ptr<const ring> current_ring() const;

  // --- timers (cluster_node.cpp) ---
  void schedule_tick();
  void tick();
  void check_liveness(std::int64_t now);
  void on_peer_dead(peer_link& link);
  void on_peer_back(peer_link& link);
  // Drops the routes of dead peers whose sessions every live node has taken
  // over, or whose grace is over.
  void expire_departed_routes(std::int64_t now);
  void on_sessions_taken_over(peer_link& from, const std::string& node);
  void health_check(const std::shared_ptr<peer_link>& link);
  void contact_seeds();
  void resolve_dns();
  void exchange_with(const std::string& address);
  void send_digests();
  void send_heartbeats();

  // --- routes (cluster_routes.cpp) ---
  void local_route_changed(const std::string& filter, int delta);
  void check_route_waiters(std::int64_t now);
  bool routes_synced_to_peers(std::uint64_t seq) const;
  // The highest route sequence number every live peer has acknowledged.
  std::uint64_t route_seq_synced_to_peers() const;
  void send_retained_snapshot(peer_link& link);
  // Hands messages a peer forwarded to a worker (in the peer's order); once
  // what they wrote is durable, settles `ticket` (docs/cluster.md,
  // "Forwarded messages"), with `stale` told failed.
  void deliver_forwarded(peer_link& origin, std::vector<const v1::PeerFrame*>& frames,
                         forward_settlement::ticket ticket, std::vector<std::uint64_t> stale);
  void settle_forwarded(const std::shared_ptr<peer_link>& origin,
                        forward_settlement::ticket ticket, std::vector<std::uint64_t> failed);
  // The ForwardAck to send the peer, when there is something new to tell it
  // (or, with `restate`, what it was told already). Under origin.inbound_mutex.
  std::optional<v1::PeerFrame> settlement_frame(peer_link& origin, bool restate);

  // --- replicated sessions (cluster_node.cpp) ---
  void start_session_replication();
  std::vector<std::uint64_t> session_preference(const std::string& client, std::size_t n) const;
  bool member_alive(std::uint64_t member) const;
  // Whether a member asked the others to take over its sessions (leaving).
  bool member_releasing(std::uint64_t member) const;
  void send_session_log(std::uint64_t member, std::string batch);
  std::uint64_t member_number_of(const std::string& id) const;

  // --- directory (cluster_directory.cpp) ---
  origin_index directory_owner(const std::string& client_id) const;
  // `replicated` (when given) is set before the answer to whether the
  // directory owner keeps a replicated session log of the client id.
  bool claim_client_id(const std::string& client_id, std::uint64_t connection_id,
                       core::claim_result& result, std::function<void(core::claim_result)> later,
                       std::shared_ptr<std::atomic<bool>> replicated = {});
  void claim_at_owner(const std::string& client_id, origin_index claimant, ticket t,
                      std::function<void(bool)> done);
  void kick_holder(const std::string& client_id, holder h, std::function<void(bool)> done);
  void kick_local(const std::string& client_id, ticket t, std::function<void(bool)> done);
  void retry_local_kick(const std::string& client_id, std::uint64_t connection, int attempts);
  void resolve_kick_waiters(const std::string& client_id, std::uint64_t connection, bool closed);
  void claim_remote(const std::string& client_id, ticket t, peer_link& owner,
                    std::function<void(bool)> done,
                    std::shared_ptr<std::atomic<bool>> replicated = {});
  void forget_holders_of(origin_index node, std::uint64_t except_boot);
  void register_with_owners();
  void register_with(peer_link& link, std::vector<v1::PeerFrame>& frames);
  void on_release(peer_link& origin, const v1::Release& r);
  void on_register(peer_link& origin, const v1::Register& r);

  void readiness_may_have_changed() const {
    recompute_routes_incomplete();
    if (readiness_observer_) readiness_observer_();
  }
  void observe(std::string_view what, double seconds) const {
    if (observer_) observer_(what, seconds);
  }

  cluster_settings settings_;
  core::broker& broker_;
  storage::store* store_;
  post_function post_;
  observe_function observer_;
  std::function<void()> readiness_observer_;
  const std::uint64_t boot_id_;
  const std::int64_t started_ms_;
  const bool clustered_;
  std::string advertised_;
  std::uint16_t port_ = 0;
  std::uint64_t incarnation_ = 0;

  // Membership: the set, the ring and the links, changed together.
  mutable std::mutex members_mutex_;
  member_set members_;
  std::shared_ptr<const ring> ring_;
  // The ring without leaving members: where session copies go.
  std::shared_ptr<const ring> placement_ring_;
  bool leaving_ = false;           // a drain of this node is in the member set
  std::atomic<bool> releasing_{false};  // see release_sessions()
  std::uint64_t leave_epoch_ = 0;  // the epoch that carried it
  std::map<std::string, std::shared_ptr<peer_link>> links_;
  std::shared_ptr<const peer_table> peers_;
  origin_index next_index_ = 1;
  bool removed_ = false;
  std::atomic<std::uint64_t> peers_version_{0};
  // Member numbers (replication::member_number) of the members, both ways.
  std::unordered_map<std::uint64_t, std::string> id_of_member_;
  std::unordered_map<std::string, std::uint64_t> member_of_id_;

  // Routes: this node's counts per filter, numbered changes, the table of all.
  std::mutex routes_mutex_;
  std::unordered_map<std::string, std::uint32_t> local_counts_;
  std::atomic<std::uint64_t> route_seq_{0};
  route_table table_;

  mutable std::mutex waiters_mutex_;
  std::vector<route_waiter> route_waiters_;

  // Directory: who holds the client ids this node owns, claims in flight.
  mutable std::mutex directory_mutex_;
  std::unordered_map<std::string, holder> directory_;
  std::unordered_map<std::string, std::vector<holder>> superseded_;  // kicked holders, by client id
  std::unordered_map<std::string, std::vector<queued_claim>> busy_;
  std::unordered_map<std::uint64_t, std::string> pending_claims_;  // local connection -> client
  std::unordered_set<std::uint64_t> revoked_;
  std::unordered_multimap<std::string, kick_waiter> kick_waiters_;

  // Counters.
  std::atomic<std::uint64_t> dropped_claim_timeout_{0};
  std::atomic<std::uint64_t> dropped_malformed_{0};
  std::atomic<std::uint64_t> dropped_stale_{0};
  std::atomic<std::uint64_t> route_sync_timeouts_{0};
  std::uint64_t reported_drops_ = 0;
  std::int64_t last_drop_report_ms_ = 0;

  // Threads.
  boost::asio::io_context io_;
  boost::asio::steady_timer tick_timer_;
  boost::asio::ip::tcp::resolver resolver_;
  std::thread thread_;
  std::unique_ptr<session_replication> replication_;
  std::unique_ptr<peer_service> service_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::ChannelCredentials> channel_credentials_;
  grpc::ChannelArguments channel_args_;
  std::int64_t last_digest_ms_ = 0;
  std::int64_t last_dns_ms_ = 0;
  // Dead peers whose routes are still held (replicated sessions: see
  // on_peer_dead). Cluster thread only.
  struct departure {
    std::int64_t drop_by_ms = 0;     // dropped then at the latest
    std::uint64_t checks_at_death = 0;  // the orphan look numbered then
    bool told = false;               // this node said it took its sessions over
    std::set<std::string> taken_over_by;  // peers that said so
  };
  std::map<origin_index, departure> departed_;
  // departed_.size(), for can_settle() on any thread.
  std::atomic<std::size_t> departed_count_{0};
  void departed_changed() { departed_count_.store(departed_.size(), std::memory_order_release); }
  // True until the routes of every peer that is not dead have arrived (after
  // this node starts, or a peer's stream starts over): until then a message
  // would miss the subscribers of that peer's sessions, so can_settle()
  // refuses it. Recomputed when readiness may change and, while true, by
  // can_settle() itself.
  mutable std::atomic<bool> routes_incomplete_{true};
  bool recompute_routes_incomplete() const;
  // The lease (see cut_off()): a peer that answered a heartbeat sent at t
  // cannot find this node dead before t + dead_timeout; this node stops
  // serving its sessions well before, at t + lease_ms().
  std::int64_t lease_ms() const;
  // Until when the answers this node has make its lease hold.
  std::int64_t lease_expiry() const;
  // An answer came (a gRPC thread): the lease holds longer, unless it lapsed.
  void extend_lease(std::int64_t now);
  // Cluster thread: tells the sessions when the node is cut off and back.
  void check_lease(std::int64_t now);
  std::atomic<bool> cut_off_{false};
  std::atomic<std::int64_t> held_until_{std::numeric_limits<std::int64_t>::max()};
  // Takeovers peers announced for a node this one did not find dead yet:
  // sender and when. Cluster thread only.
  std::map<origin_index, std::map<std::string, std::int64_t>> early_takeovers_;
  std::set<std::string> exchanges_in_flight_;  // cluster thread only
  // Barriers (when_forwards_delivered) waiting for peers' answers.
  struct barrier_wait {
    std::set<std::string> peers;
    std::int64_t deadline_ms = 0;
    std::function<void()> done;
  };
  void barrier_reached(const std::string& peer, const std::vector<std::uint64_t>& tokens);
  // Peers dead or gone are not waited for; a barrier past its deadline is done.
  void expire_barriers(std::int64_t now);
  std::mutex barrier_mutex_;
  std::map<std::uint64_t, barrier_wait> barriers_;
  std::uint64_t next_barrier_ = 1;
  std::set<std::string> health_in_flight_;     // cluster thread only
  std::vector<std::string> dns_addresses_;     // cluster thread only
  std::atomic<int> calls_in_flight_{0};  // unary calls this node made, not yet completed
  std::atomic<bool> stopping_{false};
};

}  // namespace ringmq::cluster
