#include "broker/app/node.hpp"

#include <spdlog/spdlog.h>

#include <csignal>

#include "broker/core/sys_topics.hpp"
#include "broker/version.hpp"

namespace ringmq::app {

namespace {

core::broker_settings broker_settings_from(const config::config& c, std::size_t workers) {
  core::broker_settings s;
  s.session.max_inflight = c.mqtt.max_inflight;
  s.session.max_queued_messages = c.mqtt.max_queued_messages;
  // The whole packet, as MQTT 5's Maximum Packet Size counts it.
  s.max_packet_size = c.mqtt.max_packet_size;
  s.max_keepalive = c.mqtt.max_keepalive;
  s.max_session_expiry = c.mqtt.max_session_expiry;
  s.allow_zero_length_clientid = c.mqtt.allow_zero_length_clientid;
  s.max_client_id_length = c.mqtt.max_client_id_length;
  s.max_topic_alias = c.mqtt.max_topic_alias;
  s.receive_maximum = c.mqtt.max_inflight;
  s.connect_timeout = std::chrono::milliseconds(c.mqtt.connect_timeout_ms);
  s.max_outbound_bytes = c.mqtt.max_outbound_bytes;
  s.retain_available = c.mqtt.retain_available;
  s.max_subscriptions_per_client = c.mqtt.max_subscriptions_per_client;
  s.version = std::string("ringmq ") + ringmq::version;
  (void)workers;
  return s;
}

}  // namespace

node::node(const config::config& cfg)
    : config_(cfg),
      signals_(control_),
      tick_timer_(control_),
      shutdown_timer_(control_),
      workers_(cfg.node.workers) {
  // Reader stripes: one per worker, plus room for the control and HTTP threads.
  broker_ = std::make_unique<core::broker>(broker_settings_from(cfg, workers_.size()),
                                           workers_.size() + 2);
}

node::~node() { workers_.stop(); }

void node::start() {
  started_ = core::clock::now();
  last_sys_ = started_;
  net::server_limits limits{config_.mqtt.max_connections};
  for (const auto& l : config_.listeners) {
    if (l.type != config::listener_type::mqtt) {
      // TLS and WebSocket listeners arrive with the security and transports work.
      throw std::runtime_error("listener " + l.name + ": type not supported yet");
    }
    net::listener_settings ls;
    ls.name = l.name;
    config::split_host_port(l.bind, ls.host, ls.port);
    ls.max_connections = l.max_connections;
    auto listener = std::make_shared<net::tcp_listener>(control_, workers_, *broker_, tracker_,
                                                        ls, limits, net::connection_settings{});
    listener->open();
    spdlog::info("listening: listener={} address={}:{}", l.name, ls.host, listener->port());
    listeners_.push_back(std::move(listener));
  }
  workers_.start();
  for (auto& l : listeners_) l->start();
  signals_.add(SIGINT);
  signals_.add(SIGTERM);
  signals_.async_wait([this](const boost::system::error_code& ec, int signal) {
    if (!ec) on_signal(signal);
  });
  tick();
  spdlog::info("ringmq {} started: node={} workers={}", ringmq::version, config_.node.id,
               workers_.size());
}

void node::tick() {
  const auto now = core::clock::now();
  broker_->sweep(now);
  const auto interval = std::chrono::seconds(config_.mqtt.sys_interval_s);
  if (interval.count() > 0 && (now - last_sys_ >= interval || last_sys_ == started_)) {
    last_sys_ = now;
    core::publish_sys_topics(*broker_, now,
                             std::chrono::duration_cast<std::chrono::seconds>(now - started_));
  }
  tick_timer_.expires_after(std::chrono::seconds(1));
  tick_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) tick();
  });
}

void node::on_signal(int signal) {
  if (shutting_down_) {
    spdlog::warn("second signal {}: exiting at once", signal);
    std::_Exit(1);
  }
  spdlog::info("signal {}: shutting down", signal);
  signals_.async_wait([this](const boost::system::error_code& ec, int s) {
    if (!ec) on_signal(s);
  });
  begin_shutdown();
}

void node::begin_shutdown() {
  shutting_down_ = true;
  for (auto& l : listeners_) l->stop();
  for (auto& c : tracker_.all()) c->shutdown(codec::reason_code::server_shutting_down);
  shutdown_deadline_ = core::clock::now() + std::chrono::seconds(10);
  wait_for_connections();
}

void node::wait_for_connections() {
  if (tracker_.size() == 0 || core::clock::now() >= shutdown_deadline_) {
    if (tracker_.size() > 0) {
      spdlog::warn("shutdown: {} connections still open after the grace period",
                   tracker_.size());
    }
    tick_timer_.cancel();
    signals_.cancel();
    control_.stop();
    return;
  }
  shutdown_timer_.expires_after(std::chrono::milliseconds(20));
  shutdown_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) wait_for_connections();
  });
}

int node::run() {
  control_.run();
  // Every connection is closed (or past its grace period): stop the loops.
  workers_.halt();
  spdlog::info("ringmq stopped");
  return 0;
}

}  // namespace ringmq::app
