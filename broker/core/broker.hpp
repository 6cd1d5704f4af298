#pragma once
// The node's MQTT state, shared by every connection: sessions, subscriptions,
// retained messages, and who may do what. Connections run the protocol
// (engine.hpp) against this object from any worker thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "broker/core/auth.hpp"
#include "broker/core/auth_throttle.hpp"
#include "broker/core/cluster_link.hpp"
#include "broker/core/hlc.hpp"
#include "broker/core/journal.hpp"
#include "broker/core/receive_gate.hpp"
#include "broker/core/retained_index.hpp"
#include "broker/core/router.hpp"
#include "broker/core/session_registry.hpp"

namespace ringmq::core {

struct broker_settings {
  session_limits session;
  std::uint32_t max_packet_size = codec::max_remaining_length + 5;  // inbound, whole packet
  std::uint16_t max_keepalive = 65535;
  std::uint32_t max_session_expiry = 0xFFFFFFFFu;
  bool allow_zero_length_clientid = true;
  std::uint32_t max_client_id_length = 65535;
  std::uint16_t max_topic_alias = 64;       // Topic Alias Maximum offered to clients
  std::uint16_t receive_maximum = 20;        // inbound QoS 2 awaiting PUBREL per client
  std::chrono::milliseconds connect_timeout{10'000};
  std::size_t max_outbound_bytes = 8 * 1024 * 1024;
  bool retain_available = true;
  std::uint32_t max_subscriptions_per_client = 0;  // 0 = unlimited
  std::string version = "ringmq";
  std::string node_id = "ringmq";  // origin of this node's retained writes
  // How long a cleared retained message is remembered (docs/cluster.md).
  std::chrono::seconds retained_tombstone_ttl{86'400};
};

class broker {
 public:
  // With a store, persistent sessions and retained messages are durable.
  broker(const broker_settings& settings, std::size_t reader_stripes,
         authenticator* authn = nullptr, authorizer* authz = nullptr,
         storage::store* store = nullptr);

  // Loads sessions, subscriptions, queues and retained messages from the
  // store. Call once, before clients connect.
  std::error_code recover(time_point now);

  // The store, or null when nothing is durable.
  storage::store* store() noexcept { return store_; }
  core::journal* journal() noexcept { return journal_.get(); }
  // False while the store refuses writes (disk full): new QoS 1/2 work is refused.
  bool accepting_durable_work() const { return !store_ || store_->writable(); }

  const broker_settings& settings() const noexcept { return settings_; }
  session_registry& sessions() noexcept { return sessions_; }
  router& routes() noexcept { return router_; }
  retained_index& retained() noexcept { return retained_; }
  authenticator& authn() noexcept { return *authn_; }
  auth_throttle& throttle() noexcept { return throttle_; }
  authorizer& authz() noexcept { return *authz_; }
  void set_auth(authenticator* authn, authorizer* authz);

  // The cluster this node is part of; null only in tests of the core alone.
  // Set once, before recover() and before clients connect.
  void set_cluster(cluster_link* link) noexcept;
  cluster_link* cluster() noexcept { return cluster_; }

  // From now on every new CONNECT is refused (a node leaving the cluster):
  // 5.0 clients get CONNACK 0x9C Use another server, with `server_reference`
  // as the Server Reference when it is not empty; 3.x clients "server
  // unavailable". Any thread; the first call counts.
  void refuse_new_clients(std::string server_reference);
  // Null while CONNECTs are accepted; else the Server Reference to give.
  const std::string* refusing_new_clients() const noexcept {
    return refusing_.load(std::memory_order_acquire) ? &refusal_reference_ : nullptr;
  }

  // Stores a retained message (if the flag is set) and routes it, here and to
  // the nodes with matching routes. Returns the number of local sessions it
  // reached plus the number of other nodes it was sent to.
  std::size_t publish(const message_ptr& m, time_point now);

  // A message another node accepted and forwarded here: delivered to this
  // node's subscriptions in `scope`, never forwarded again; with `retained`,
  // also a retained write. Returns the number of local sessions it reached.
  std::size_t deliver_forwarded(const message_ptr& m, const delivery_scope& scope,
                                const retained_version* retained, time_point now);
  // A retained write another node accepted (last writer wins). True when applied.
  bool apply_retained(const message_ptr& m, const retained_version& v);
  hybrid_clock& clock() noexcept { return hlc_; }

  // Ends a session that will not be resumed: removes its subscriptions from
  // the index and publishes its pending will ("the session ends").
  void end_session(const std::shared_ptr<session>& s, time_point now);

  // Replicated sessions (docs/cluster.md): this node serves `r` from now on,
  // as its replicated log holds it. Any session of the client id here is
  // replaced (its connection closed with Session taken over), without
  // erasing records or publishing its will: it is the same session.
  // Returns the new session object's serial: changes of older objects of
  // the client id (still finishing what they were doing) are no longer its
  // changes, and its keeper refuses them (session_keeper::append).
  std::uint64_t adopt_session(recovered_session&& r, time_point now);
  // Another node serves the session of `client_id` now: this node forgets
  // it (no records erased, no will) and closes its connection (Session taken
  // over). False when there was none.
  bool let_go_session(const std::string& client_id);

  // Expires sessions and publishes delayed wills that are due. Call about once a second.
  void sweep(time_point now);

  // Connection counters for $SYS and metrics.
  void on_client_connected() noexcept;
  void on_client_disconnected() noexcept;
  std::uint64_t clients_connected() const noexcept { return connected_.load(); }
  std::uint64_t clients_maximum() const noexcept { return maximum_.load(); }
  std::uint64_t clients_total() const noexcept { return total_.load(); }

  // Unique per connection, for claiming sessions.
  std::uint64_t next_connection_id() noexcept { return ++connection_ids_; }

 private:
  broker_settings settings_;
  storage::store* store_;
  std::unique_ptr<core::journal> journal_;
  allow_all allow_all_;
  auth_throttle throttle_;
  authenticator* authn_;
  authorizer* authz_;
  receive_gate gate_;
  session_registry sessions_;
  router router_;
  retained_index retained_;
  cluster_link* cluster_ = nullptr;
  std::once_flag refusal_once_;
  std::string refusal_reference_;  // written once, before refusing_ is set
  std::atomic<bool> refusing_{false};
  hybrid_clock hlc_;
  time_point last_tombstone_purge_{};
  std::atomic<std::uint64_t> connected_{0};
  std::atomic<std::uint64_t> maximum_{0};
  std::atomic<std::uint64_t> total_{0};
  std::atomic<std::uint64_t> connection_ids_{0};
};

}  // namespace ringmq::core
