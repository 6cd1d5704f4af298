#pragma once
// The router resolves a topic to the sessions of this node subscribed to it
// and delivers. Remote nodes are the cluster's business (cluster_link.hpp):
// the router tells it when a filter gains or loses a local subscription, and
// it tells the router which shared groups this node serves.
//
// The subscription trie is read under this thread's stripe of a striped lock
// (no lock shared between workers on the publish path) and written under all
// stripes. Deliveries happen while the stripe is held, so the trie's session
// pointers stay valid without reference counting per message.

#include <cstddef>
#include <map>
#include <memory>
#include <string>

#include "broker/core/cluster_link.hpp"
#include "broker/core/message.hpp"
#include "broker/core/receive_gate.hpp"
#include "broker/core/session.hpp"
#include "broker/core/striped_lock.hpp"
#include "broker/core/subscription_trie.hpp"

namespace ringmq::core {

class router {
 public:
  explicit router(std::size_t stripes);

  // Checked for every delivery (access::receive) when set; null = everyone may
  // receive everything.
  void set_gate(const receive_gate* gate) noexcept { gate_ = gate; }

  // Told of every local route change, under the write lock (null: nobody).
  void set_route_observer(cluster_link* observer) noexcept { observer_ = observer; }

  // Delivers `m` to every matching subscription in `scope` (one copy per
  // session, with the highest granted QoS and every matching subscription
  // identifier; one member per shared group). Returns how many sessions it
  // was given to.
  std::size_t publish(const message_ptr& m, time_point now, const delivery_scope& scope = {});

  // Indexes `s`'s subscription to `filter` (which may be "$share/g/f"),
  // replacing the previous options of the same filter.
  void subscribe(const std::shared_ptr<session>& s, const std::string& filter,
                 const stored_subscription& sub);
  void unsubscribe(const session& s, const std::string& filter);
  void unsubscribe_all(const session& s,
                       const std::map<std::string, stored_subscription>& filters);

  // Gives a message that a departed shared-subscription member did not
  // acknowledge to another member of its group.
  void redispatch(outgoing&& m, time_point now);

  std::size_t subscription_count() const;

 private:
  struct route {
    std::shared_ptr<session> target;
    stored_subscription sub;
  };
  using trie = subscription_trie<const session*, route>;

  session* pick_member(const trie::shared_group& group) const;
  void erase_locked(const session& s, const std::string& filter);

  // True when `target` may receive `m` now (the ACL applies at delivery time,
  // so a changed ACL applies to existing subscriptions too).
  bool may_receive(const session& target, const message& m) const {
    return !gate_ || gate_->allows(target, m);
  }

  const receive_gate* gate_ = nullptr;
  cluster_link* observer_ = nullptr;
  mutable striped_lock lock_;
  trie trie_;
};

}  // namespace ringmq::core
