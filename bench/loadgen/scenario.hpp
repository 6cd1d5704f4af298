#pragma once
// The load generator's scenarios and what they report.

#include <cstdint>
#include <string>
#include <vector>

#include "broker/codec/types.hpp"

namespace ringmq::bench {

struct options {
  // fanin | fanout | pairs | latency | idle | persistent | sessions | failover | route-convergence
  std::string scenario = "pairs";
  std::string host = "127.0.0.1";
  std::uint16_t port = 1883;
  // Several brokers (nodes of one cluster), "address:port" each; empty = host and port.
  std::vector<std::string> hosts;
  // Where subscribers connect relative to publishers, which use the first host:
  // cross (another host), same (the first host), random (any host).
  std::string placement = "cross";
  std::vector<std::string> bind_addresses;  // local source addresses, rotated (idle: >28k conns)
  codec::protocol_version version = codec::protocol_version::v3_1_1;
  int qos = 0;
  std::uint32_t publishers = 1;
  std::uint32_t subscribers = 1;
  std::uint32_t connections = 1000;  // idle
  std::uint32_t payload = 64;
  double rate = 0;                   // messages per second, all publishers together; 0 = max
  std::uint32_t inflight = 20;       // per publisher, QoS 1/2
  double warmup_s = 1;
  double duration_s = 5;
  double drain_s = 10;               // how long to wait for in-flight messages at the end
  std::uint32_t messages = 10000;    // persistent: messages queued while offline
  std::uint32_t threads = 1;
  std::string label;                 // e.g. the broker's name, copied to the report
  int broker_pid = 0;                // idle: read its RSS from /proc
  std::string topic_prefix = "bench";
  bool persistent_subscribers = false;  // subscribers keep their session (clean start 0)
  // failover: run through /bin/sh once the sessions hold their messages (e.g.
  // "kill -9 PID" of the first host's broker); then every client reconnects to
  // the other hosts, giving up after reconnect_limit_s.
  std::string kill_command;
  double reconnect_limit_s = 60;
  // route-convergence: probes per lane (-P lanes), and how long a probe waits.
  double probe_timeout_s = 2;
};

// Runs the scenario; prints one JSON line to stdout. Returns the process exit
// code: 0 ok, 3 when QoS >= 1 messages were lost or QoS 2 messages duplicated,
// 1 when the run could not be made (connection refused, ...).
int run(const options& o);

}  // namespace ringmq::bench
