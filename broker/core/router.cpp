#include "broker/core/router.hpp"

#include <algorithm>

#include "broker/codec/topic.hpp"
#include "broker/core/probe.hpp"

namespace ringmq::core {

namespace {

codec::qos granted_qos(codec::qos published, const codec::subscribe_options& o) noexcept {
  return std::min(published, o.max_qos);
}

// True when `key` is "$share/{name}/{filter}".
bool is_group_key(std::string_view key, std::string_view name, std::string_view filter) noexcept {
  constexpr std::string_view prefix = "$share/";
  return key.size() == prefix.size() + name.size() + 1 + filter.size() &&
         key.starts_with(prefix) && key.substr(prefix.size(), name.size()) == name &&
         key[prefix.size() + name.size()] == '/' && key.ends_with(filter);
}

bool in_scope(const delivery_scope& scope, const std::string& name, const std::string& filter) {
  if (!scope.groups) return true;
  for (const auto& key : *scope.groups) {
    if (is_group_key(key, name, filter)) return true;
  }
  return false;
}

}  // namespace

router::router(std::size_t stripes) : lock_(stripes) {}

session* router::pick_member(const trie::shared_group& group) const {
  const auto& members = group.members;
  const auto n = members.size();
  const auto start = group.cursor.fetch_add(1, std::memory_order_relaxed);
  // Round robin, skipping members that are offline when an online one exists.
  for (std::size_t i = 0; i < n; ++i) {
    const auto& m = members[(start + i) % n];
    if (m.second.target->online()) return m.second.target.get();
  }
  return members[start % n].second.target.get();
}

std::size_t router::publish(const message_ptr& m, time_point now, const delivery_scope& scope) {
  struct hit {
    session* target;
    const route* via;
  };
  struct group_hit {
    session* target;
    const trie::shared_group* group;
  };
  thread_local std::vector<hit> hits;
  thread_local std::vector<group_hit> group_hits;
  hits.clear();
  group_hits.clear();

  striped_lock::read_guard guard(lock_);
  trie_.match(
      m->topic,
      [&](const session* key, const route& r) {
        if (!scope.plain) return;
        // No Local: not back to the client that published it ([MQTT-3.8.3-3]).
        if (r.sub.options.no_local && key->client_id() == m->publisher) return;
        hits.push_back({r.target.get(), &r});
      },
      [&](const trie::shared_group& g) {
        if (g.members.empty() || !in_scope(scope, g.name, g.filter)) return;
        group_hits.push_back({pick_member(g), &g});
      });

  // Overlapping subscriptions of one session give one copy ([MQTT-3.3.4-2]):
  // the highest QoS, every subscription identifier ([MQTT-3.3.4-3]).
  if (hits.size() > 1) {
    std::sort(hits.begin(), hits.end(),
              [](const hit& a, const hit& b) { return a.target < b.target; });
  }
  std::size_t delivered = 0;
  for (std::size_t i = 0; i < hits.size();) {
    outgoing out;
    out.msg = m;
    out.qos = codec::qos::at_most_once;
    std::size_t j = i;
    for (; j < hits.size() && hits[j].target == hits[i].target; ++j) {
      const auto& sub = hits[j].via->sub;
      out.qos = std::max(out.qos, granted_qos(m->qos, sub.options));
      if (sub.options.retain_as_published && m->retain) out.retain = true;
      if (sub.identifier) out.subscription_ids.push_back(*sub.identifier);
    }
    if (may_receive(*hits[i].target, *m)) {
      hits[i].target->deliver(std::move(out), now);
      ++delivered;
    }
    i = j;
  }
  for (const auto& g : group_hits) {
    const route* r = nullptr;
    for (const auto& member : g.group->members) {
      if (member.second.target.get() == g.target) r = &member.second;
    }
    outgoing out;
    out.msg = m;
    out.qos = granted_qos(m->qos, r->sub.options);
    out.retain = r->sub.options.retain_as_published && m->retain;
    if (r->sub.identifier) out.subscription_ids.push_back(*r->sub.identifier);
    out.share = "$share/" + g.group->name + "/" + g.group->filter;
    if (!may_receive(*g.target, *m)) continue;
    g.target->deliver(std::move(out), now);
    ++delivered;
  }
  return delivered;
}

void router::subscribe(const std::shared_ptr<session>& s, const std::string& filter,
                       const stored_subscription& sub) {
  auto parts = codec::parse_topic_filter(filter);
  if (!parts) return;  // validated by the caller; never index an invalid filter
  striped_lock::write_guard guard(lock_);
  const bool added =
      parts->is_shared()
          ? trie_.insert_shared(parts->share_group, parts->filter, s.get(), route{s, sub})
          : trie_.insert(parts->filter, s.get(), route{s, sub});
  if (added && observer_) observer_->local_route_added(filter);
}

void router::erase_locked(const session& s, const std::string& filter) {
  auto parts = codec::parse_topic_filter(filter);
  if (!parts) return;
  const bool erased = parts->is_shared()
                          ? trie_.erase_shared(parts->share_group, parts->filter, &s)
                          : trie_.erase(parts->filter, &s);
  if (erased && observer_) observer_->local_route_removed(filter);
}

void router::unsubscribe(const session& s, const std::string& filter) {
  striped_lock::write_guard guard(lock_);
  erase_locked(s, filter);
}

void router::unsubscribe_all(const session& s,
                             const std::map<std::string, stored_subscription>& filters) {
  if (filters.empty()) return;
  striped_lock::write_guard guard(lock_);
  for (const auto& [filter, sub] : filters) erase_locked(s, filter);
}

void router::redispatch(outgoing&& m, time_point now) {
  auto parts = codec::parse_topic_filter(m.share);
  if (!parts || !parts->is_shared()) return;
  striped_lock::read_guard guard(lock_);
  const auto* group = trie_.find_group(parts->share_group, parts->filter);
  if (!group || group->members.empty()) return;  // nobody left: the message is dropped
  session* target = pick_member(*group);
  if (!may_receive(*target, *m.msg)) return;
  target->deliver(std::move(m), now);
}

std::size_t router::subscription_count() const {
  striped_lock::read_guard guard(lock_);
  return trie_.size();
}

}  // namespace ringmq::core
