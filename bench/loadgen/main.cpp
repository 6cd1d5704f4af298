// ringmq-bench: the load generator. One JSON line per run on stdout.

#include <CLI/CLI.hpp>

#include "bench/loadgen/scenario.hpp"

int main(int argc, char** argv) {
  ringmq::bench::options o;
  CLI::App cli{"ringmq-bench: MQTT load generator (fan-in, fan-out, pairs, latency, idle, "
               "persistent, failover, route convergence)",
               "ringmq-bench"};
  int protocol = 4;
  cli.add_option("-s,--scenario", o.scenario,
                 "fanin | fanout | pairs | latency | idle | persistent | sessions | failover | "
                 "route-convergence")
      ->check(CLI::IsMember({"fanin", "fanout", "pairs", "latency", "idle", "persistent",
                             "sessions", "failover", "route-convergence"}));
  cli.add_flag("--persistent-subscribers", o.persistent_subscribers,
               "subscribers keep their session (clean start 0): every message is stored");
  cli.add_option("--host", o.host, "broker address");
  cli.add_option("-p,--port", o.port, "broker port");
  cli.add_option("--hosts", o.hosts,
                 "brokers of one cluster, address:port each (comma-separated or repeated); "
                 "publishers use the first")
      ->delimiter(',');
  cli.add_option("--placement", o.placement,
                 "subscribers on another host than the publishers (cross), the same (same), or "
                 "any (random)")
      ->check(CLI::IsMember({"cross", "same", "random"}));
  cli.add_option("--kill-command", o.kill_command,
                 "failover: shell command that kills the first host's broker");
  cli.add_option("--reconnect-limit", o.reconnect_limit_s,
                 "failover: seconds after the kill when clients stop trying to reconnect");
  cli.add_option("--probe-timeout", o.probe_timeout_s,
                 "route-convergence: seconds a probe waits for its message (then a miss)");
  cli.add_option("--bind", o.bind_addresses, "local source addresses to rotate over (repeatable)");
  cli.add_option("-V,--protocol", protocol, "4 = MQTT 3.1.1, 5 = MQTT 5.0")->check(CLI::IsMember({4, 5}));
  cli.add_option("-q,--qos", o.qos, "QoS of publishes and subscriptions")->check(CLI::Range(0, 2));
  cli.add_option("-P,--publishers", o.publishers, "publishers (pairs: number of pairs)");
  cli.add_option("-S,--subscribers", o.subscribers, "subscribers");
  cli.add_option("-C,--connections", o.connections,
                 "idle: connections to hold; sessions, failover: persistent sessions to create");
  cli.add_option("--payload", o.payload, "payload bytes (at least 22)");
  cli.add_option("-r,--rate", o.rate, "messages per second over all publishers; 0 = as fast as possible");
  cli.add_option("--inflight", o.inflight, "unacknowledged QoS 1/2 publishes per publisher");
  cli.add_option("--warmup", o.warmup_s, "seconds of load before measuring");
  cli.add_option("-d,--duration", o.duration_s, "seconds measured");
  cli.add_option("--drain", o.drain_s, "seconds to wait for messages still in flight");
  cli.add_option("-m,--messages", o.messages,
                 "persistent: messages queued while subscribers are offline; route-convergence: "
                 "probes per lane");
  cli.add_option("-t,--threads", o.threads, "load generator threads");
  cli.add_option("--label", o.label, "copied into the report (e.g. the broker's name)");
  cli.add_option("--broker-pid", o.broker_pid, "idle: the broker's pid, to read its RSS");
  cli.add_option("--topic-prefix", o.topic_prefix, "first topic level of every topic");
  CLI11_PARSE(cli, argc, argv);
  o.version = static_cast<ringmq::codec::protocol_version>(protocol);
  return ringmq::bench::run(o);
}
