#pragma once
// The seam between this node's broker and the cluster it is part of
// (cluster/ implements it; docs/cluster.md describes the protocol). The core
// calls it at the few points where other nodes matter: a route of this node
// appears or goes, a message is accepted, a SUBACK is about to leave, a
// client id connects or disconnects. A node alone is a cluster of one member:
// the same calls, answered at once with nothing to send.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/core/message.hpp"
#include "broker/core/retained_index.hpp"

namespace ringmq::core {

enum class claim_result : std::uint8_t {
  granted,  // no other connection holds the client id any more
  refused,  // a later claim won the race for it: refuse this CONNECT
  // Its persistent session cannot be served here now: too few of the
  // session's replicas answer (a partition). Refuse (Server unavailable)
  // rather than serve a second copy.
  unavailable,
};

// Which subscriptions of this node a message is for.
struct delivery_scope {
  bool plain = true;  // plain (non-shared) subscriptions
  // Null: each matching shared group picks one local member (this node decides
  // alone). Else the "$share/{group}/{filter}" groups this node serves; others
  // were given to another node.
  const std::vector<std::string>* groups = nullptr;
};

class cluster_link {
 public:
  virtual ~cluster_link() = default;

  // This node's routes: `filter` ("$share/g/f" for a shared group) gained or
  // lost one local subscription. Called under the router's write lock, in the
  // order the changes happen; must not call back into the router.
  virtual void local_route_added(const std::string& filter) = 0;
  virtual void local_route_removed(const std::string& filter) = 0;

  // A message accepted on this node (from a client, a will, the admin API):
  // sends it once to every remote node with a matching route, with the
  // retained write `retained` when it is one (to every node then). Decides
  // which shared groups this node serves: fills `local_groups` and sets
  // `groups_decided` when other nodes take part. Never blocks. Returns the
  // number of remote nodes it was sent to for delivery.
  virtual std::size_t publish(const message_ptr& m, const retained_version* retained,
                              std::vector<std::string>& local_groups, bool& groups_decided) = 0;

  // False when a QoS 1/2 message on `topic` cannot be settled now: it
  // matches the routes of a node that just died, whose persistent sessions
  // are moving to their replicas, or this node has not yet received the
  // routes of every live peer (it just started). Such a message is refused before it is
  // delivered anywhere (all or nothing: a partial delivery followed by the
  // publisher's retry would deliver it twice). From any thread; cheap when no
  // node died recently.
  virtual bool can_settle(std::string_view topic) const {
    (void)topic;
    return true;
  }

  // Calls `done` once every peer that is not dead has applied this node's
  // routes as they are now (bounded by a timeout). Inline when nothing is to
  // be waited for. From any thread.
  virtual void when_routes_synced(std::function<void()> done) = 0;

  // Calls `done` once everything any live peer forwarded to this node before
  // now has been delivered here (a barrier through the peers' streams):
  // after it, no message routed by what a peer knew before now arrives.
  // Bounded by a timeout. From any thread; inline when alone.
  virtual void when_forwards_delivered(std::function<void()> done) { done(); }

  // Before the CONNACK of `client_id` on connection `connection_id`: makes
  // sure no connection on another node holds the client id any more. Returns
  // true with `result` set when decided at once; else returns false and calls
  // `later` exactly once, from any thread. A `persistent` session is also
  // made this node's to serve (with replicated sessions: its log acquired and
  // its records installed in the session registry) before it is granted.
  virtual bool claim(const std::string& client_id, std::uint64_t connection_id, bool persistent,
                     claim_result& result, std::function<void(claim_result)> later) = 0;
  // After a granted claim, on the connection's thread: runs `open_session`
  // (the session registry's open) unless a newer claim on another node
  // revoked this one meanwhile, atomically with respect to such revocations.
  // False when revoked: the CONNECT is refused.
  virtual bool confirm(const std::string& client_id, std::uint64_t connection_id,
                       const std::function<void()>& open_session) = 0;
  // The connection that claimed `client_id` ended (or gave up waiting).
  virtual void release(const std::string& client_id, std::uint64_t connection_id) = 0;
};

}  // namespace ringmq::core
