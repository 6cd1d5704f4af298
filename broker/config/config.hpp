#pragma once
// The broker's configuration: one immutable value built from defaults, the YAML
// file, RINGMQ_* environment variables and --set overrides, in that order of
// precedence. Every key is documented in docs/configuration.md.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ringmq::config {

enum class listener_type { mqtt, mqtts, ws, wss };
enum class durability { sync, batch, none };
enum class log_format { text, json };

struct listener_config {
  listener_type type = listener_type::mqtt;
  std::string bind = "127.0.0.1:1883";  // host:port; port 0 picks a free port
  std::string name;                     // [type:bind] shown in logs and metrics
  // TLS (mqtts, wss)
  std::string cert_file;
  std::string key_file;
  std::string ca_file;
  bool require_client_cert = false;
  bool use_identity_as_username = false;
  // WebSocket (ws, wss)
  std::string path = "/mqtt";
  std::uint32_t max_connections = 0;  // 0 = no per-listener limit

  bool operator==(const listener_config&) const = default;
};

struct node_config {
  std::string id;  // [hostname]
  std::string data_dir = "./data";
  std::uint32_t workers = 0;  // 0 = one per core
  // A SIGTERM (not a leave) waits this long for clients to take their
  // DISCONNECT before it closes what is left; the orchestrator's grace period
  // must be longer.
  std::uint32_t shutdown_timeout_ms = 10'000;

  bool operator==(const node_config&) const = default;
};

struct http_config {
  std::string bind = "127.0.0.1:8080";  // empty = no HTTP server
  std::string admin_token;
  bool protect_reads = false;  // reads of /api/v1 need the token too

  bool operator==(const http_config&) const = default;
};

struct auth_config {
  std::optional<bool> allow_anonymous;  // unset: true unless password_file is set
  std::string password_file;
  std::string acl_file;

  bool anonymous_allowed() const { return allow_anonymous.value_or(password_file.empty()); }

  bool operator==(const auth_config&) const = default;
};

struct mqtt_config {
  std::uint32_t max_packet_size = 268'435'455;
  std::uint16_t max_inflight = 20;
  std::uint32_t max_queued_messages = 1000;
  std::uint16_t max_keepalive = 65535;
  std::uint32_t max_session_expiry = 4'294'967'295u;
  bool allow_zero_length_clientid = true;
  std::uint32_t max_connections = 0;               // 0 = unlimited
  std::uint32_t max_subscriptions_per_client = 0;  // 0 = unlimited
  std::uint16_t max_topic_alias = 64;              // Topic Alias Maximum offered to 5.0 clients
  std::uint32_t connect_timeout_ms = 10'000;       // first packet must be CONNECT by then
  std::uint32_t max_client_id_length = 65535;
  std::uint32_t max_outbound_bytes = 8 * 1024 * 1024;  // per connection, beyond it QoS 0 drops
  bool retain_available = true;
  std::uint32_t sys_interval_s = 10;  // $SYS publish period, 0 = off

  bool operator==(const mqtt_config&) const = default;
};

struct storage_config {
  config::durability durability = durability::batch;
  std::uint64_t max_store_bytes = 0;  // 0 = unlimited

  bool operator==(const storage_config&) const = default;
};

struct cluster_config {
  std::string name = "ringmq";  // peers with another name are refused
  std::string bind;             // empty = single node
  std::string advertise;
  std::vector<std::string> seeds;
  std::string dns;
  std::uint32_t dns_interval_ms = 5'000;
  std::uint32_t replication_factor = 3;
  bool replicate_sessions = true;   // persistent sessions in replicated logs (clustered nodes)
  std::uint32_t write_quorum = 0;   // 0 = a majority of replication_factor
  std::uint32_t vnodes = 128;
  std::uint32_t heartbeat_interval_ms = 500;
  std::uint32_t suspect_timeout_ms = 2'000;
  std::uint32_t dead_timeout_ms = 5'000;
  // A member dead this long is removed from the member set (0: never).
  std::uint32_t dead_member_timeout_ms = 600'000;
  // Given to MQTT 5.0 clients a leaving node disconnects (DISCONNECT 0x9C Use
  // another server with this Server Reference); empty: 0x8B Server shutting down.
  std::string server_reference;
  // Clients a leaving node disconnects per second, once its sessions are elsewhere.
  std::uint32_t leave_disconnect_rate = 1'000;
  std::uint32_t digest_interval_ms = 10'000;
  std::uint32_t route_sync_timeout_ms = 5'000;
  std::uint32_t claim_timeout_ms = 3'000;
  std::uint64_t peer_queue_bytes = 64ull << 20;
  std::uint32_t tombstone_ttl_s = 86'400;
  // Mutual TLS between nodes: all three files, or none.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_ca_file;
  std::string tls_server_name;  // name checked in peers' certificates; empty = the address

  bool operator==(const cluster_config&) const = default;
};

struct log_config {
  std::string level = "info";  // trace debug info warn error
  config::log_format format = log_format::text;

  bool operator==(const log_config&) const = default;
};

struct config {
  node_config node;
  std::vector<listener_config> listeners;  // [one mqtt listener on 127.0.0.1:1883]
  http_config http;
  auth_config auth;
  mqtt_config mqtt;
  storage_config storage;
  cluster_config cluster;
  log_config log;

  bool operator==(const config&) const = default;
};

// A configuration problem, reported with the key and where it came from.
struct config_error {
  std::string key;     // e.g. "mqtt.max_inflight" or "listeners[1].bind"
  std::string source;  // file path, "environment RINGMQ_...", or "--set"
  int line = 0;        // 1-based line in the file, 0 when not from a file
  std::string message;

  // "ringmq.yaml:12: mqtt.max_inflight: expected an integer from 1 to 65535"
  std::string to_string() const;
};

struct load_options {
  std::string file;                      // empty = no file
  std::vector<std::string> set;          // "key.path=value" from --set, in order
  std::vector<std::string> environment;  // "NAME=value" entries; only RINGMQ_* are read
};

// Builds the configuration. On error returns the first problem found.
// Unknown keys are errors (a typo must not silently fall back to a default).
struct load_result {
  std::optional<config> value;
  std::optional<config_error> error;
};
load_result load(const load_options& options);

// Splits "host:port" / "[v6]:port"; false when malformed.
bool split_host_port(const std::string& address, std::string& host, std::uint16_t& port);

}  // namespace ringmq::config
