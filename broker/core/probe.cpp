#include "broker/core/probe.hpp"

#include <deque>
#include <mutex>

namespace ringmq::core {
namespace {

struct probe_list {
  std::mutex mutex;
  std::deque<broker_probe> probes;  // deque: addresses stay valid as it grows
};

probe_list& probes() {
  static probe_list list;
  return list;
}

}  // namespace

std::string_view to_string(drop_reason reason) noexcept {
  switch (reason) {
    case drop_reason::queue_full: return "queue_full";
    case drop_reason::slow_consumer: return "slow_consumer";
    case drop_reason::expired: return "expired";
    case drop_reason::too_large: return "too_large";
    case drop_reason::offline_qos0: return "offline_qos0";
    case drop_reason::not_authorized: return "not_authorized";
    case drop_reason::no_subscribers: return "no_subscribers";
    case drop_reason::store_full: return "store_full";
    case drop_reason::duplicate: return "duplicate";
    case drop_reason::count_: break;
  }
  return "unknown";
}

broker_probe& local_probe() noexcept {
  thread_local broker_probe* mine = [] {
    auto& list = probes();
    std::lock_guard lock(list.mutex);
    return &list.probes.emplace_back();
  }();
  return *mine;
}

probe_totals sum_probes() noexcept {
  probe_totals t;
  auto& list = probes();
  std::lock_guard lock(list.mutex);
  for (const auto& p : list.probes) {
    for (std::size_t q = 0; q < 3; ++q) {
      t.messages_received[q] += p.messages_received[q].get();
      t.messages_sent[q] += p.messages_sent[q].get();
    }
    for (std::size_t r = 0; r < drop_reason_count; ++r) {
      t.messages_dropped[r] += p.messages_dropped[r].get();
    }
    t.bytes_received += p.bytes_received.get();
    t.bytes_sent += p.bytes_sent.get();
    t.packets_received += p.packets_received.get();
    t.packets_sent += p.packets_sent.get();
    t.auth_failures += p.auth_failures.get();
    t.connections_accepted += p.connections_accepted.get();
    t.connections_refused += p.connections_refused.get();
    t.protocol_errors += p.protocol_errors.get();
    t.retained_stored += p.retained_stored.get();
    t.publisher_pauses += p.publisher_pauses.get();
  }
  return t;
}

}  // namespace ringmq::core
