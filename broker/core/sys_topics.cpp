#include "broker/core/sys_topics.hpp"

#include <string>

#include "broker/core/probe.hpp"

namespace ringmq::core {

namespace {

void publish_value(broker& b, time_point now, const char* topic, std::string value) {
  auto m = std::make_shared<message>();
  m->topic = topic;
  m->payload = std::move(value);
  m->qos = codec::qos::at_most_once;
  m->retain = true;
  m->publisher = "$SYS";
  m->received_at = now;
  b.publish(m, now);
}

}  // namespace

void publish_sys_topics(broker& b, time_point now, std::chrono::seconds uptime) {
  const auto totals = sum_probes();
  std::uint64_t received = 0;
  std::uint64_t sent = 0;
  for (std::size_t q = 0; q < 3; ++q) {
    received += totals.messages_received[q];
    sent += totals.messages_sent[q];
  }
  const auto sessions = b.sessions().size();
  const auto connected = b.clients_connected();
  publish_value(b, now, "$SYS/broker/version", b.settings().version);
  publish_value(b, now, "$SYS/broker/uptime", std::to_string(uptime.count()) + " seconds");
  publish_value(b, now, "$SYS/broker/clients/connected", std::to_string(connected));
  publish_value(b, now, "$SYS/broker/clients/disconnected",
                std::to_string(sessions > connected ? sessions - connected : 0));
  publish_value(b, now, "$SYS/broker/clients/total", std::to_string(sessions));
  publish_value(b, now, "$SYS/broker/clients/maximum", std::to_string(b.clients_maximum()));
  publish_value(b, now, "$SYS/broker/messages/received", std::to_string(received));
  publish_value(b, now, "$SYS/broker/messages/sent", std::to_string(sent));
  publish_value(b, now, "$SYS/broker/bytes/received", std::to_string(totals.bytes_received));
  publish_value(b, now, "$SYS/broker/bytes/sent", std::to_string(totals.bytes_sent));
  publish_value(b, now, "$SYS/broker/subscriptions/count",
                std::to_string(b.routes().subscription_count()));
  publish_value(b, now, "$SYS/broker/retained messages/count",
                std::to_string(b.retained().size()));
}

}  // namespace ringmq::core
