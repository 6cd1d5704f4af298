#include "broker/app/ctl_command.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <memory>
#include <optional>
#include <string_view>
#include <thread>

namespace ringmq::app {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;

constexpr int exit_ok = 0;
constexpr int exit_failed = 1;
constexpr int exit_usage = 2;

// One request, connection included: a node that does not answer in this time
// is reported as unreachable rather than waited for.
constexpr auto request_timeout = std::chrono::seconds(10);
// Lists of up to 10000 entries of a few hundred bytes each.
constexpr std::uint64_t max_response_bytes = 64 * 1024 * 1024;

struct endpoint {
  std::string host;
  std::string port;
  std::string prefix;  // a path before /api/v1, behind a reverse proxy
};

// "http://host:port/prefix", "host:port" or "[::1]:8080"; nullopt with `problem` set otherwise.
std::optional<endpoint> parse_url(std::string_view url, std::string& problem) {
  constexpr std::string_view scheme = "http://";
  if (url.starts_with("https://")) {
    problem = "https is not supported: the admin API is served over plain HTTP (http.bind)";
    return std::nullopt;
  }
  if (url.starts_with(scheme)) url.remove_prefix(scheme.size());
  endpoint e;
  const auto slash = url.find('/');
  auto authority = url.substr(0, slash);
  if (slash != std::string_view::npos) e.prefix = std::string(url.substr(slash));
  while (e.prefix.ends_with('/')) e.prefix.pop_back();
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      problem = "unbalanced [ in the URL";
      return std::nullopt;
    }
    e.host = std::string(authority.substr(1, close - 1));
    authority.remove_prefix(close + 1);
    if (authority.starts_with(':')) e.port = std::string(authority.substr(1));
  } else {
    const auto colon = authority.rfind(':');
    e.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) e.port = std::string(authority.substr(colon + 1));
  }
  if (e.port.empty()) e.port = "80";
  if (e.host.empty() || !std::all_of(e.port.begin(), e.port.end(),
                                      [](unsigned char c) { return std::isdigit(c) != 0; })) {
    problem = "expected http://HOST:PORT, got " + std::string(url);
    return std::nullopt;
  }
  return e;
}

// Percent-encodes everything but RFC 3986's unreserved characters: client ids
// and topic filters may hold '/', '+', '#', spaces or anything else.
std::string url_encode(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0xF]);
    }
  }
  return out;
}

struct http_result {
  unsigned status = 0;
  std::string body;
  std::string error;  // set when no answer came
};

// One HTTP/1.1 exchange, bounded by request_timeout as a whole.
class exchange : public std::enable_shared_from_this<exchange> {
 public:
  exchange(asio::io_context& io, const endpoint& at, bhttp::request<bhttp::string_body> req,
           http_result& result)
      : resolver_(io), stream_(io), at_(at), req_(std::move(req)), result_(result) {
    parser_.body_limit(max_response_bytes);
  }

  void start() {
    resolver_.async_resolve(at_.host, at_.port,
                            [self = shared_from_this()](beast::error_code ec,
                                                        tcp::resolver::results_type found) {
                              if (ec) return self->fail("cannot resolve " + self->at_.host, ec);
                              self->stream_.expires_after(request_timeout);
                              self->stream_.async_connect(
                                  found, [self](beast::error_code ec, const tcp::endpoint&) {
                                    self->on_connect(ec);
                                  });
                            });
  }

 private:
  void on_connect(beast::error_code ec) {
    if (ec) return fail("cannot connect", ec);
    bhttp::async_write(stream_, req_, [self = shared_from_this()](beast::error_code ec,
                                                                  std::size_t) {
      if (ec) return self->fail("cannot send the request", ec);
      bhttp::async_read(self->stream_, self->buffer_, self->parser_,
                        [self](beast::error_code ec, std::size_t) { self->on_read(ec); });
    });
  }

  void on_read(beast::error_code ec) {
    if (ec) return fail("no answer", ec);
    result_.status = parser_.get().result_int();
    result_.body = std::move(parser_.get().body());
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  void fail(const std::string& what, beast::error_code ec) {
    result_.error = what + ": " + (ec == beast::error::timeout ? "timed out" : ec.message());
  }

  tcp::resolver resolver_;
  beast::tcp_stream stream_;
  endpoint at_;
  bhttp::request<bhttp::string_body> req_;
  beast::flat_buffer buffer_;
  bhttp::response_parser<bhttp::string_body> parser_;
  http_result& result_;
};

http_result call(const endpoint& at, bhttp::verb method, const std::string& target,
                 const std::string& token, const std::string& body = {}) {
  bhttp::request<bhttp::string_body> req{method, at.prefix + target, 11};
  if (!body.empty()) {
    req.set(bhttp::field::content_type, "application/json");
    req.body() = body;
  }
  req.set(bhttp::field::host, at.host + ":" + at.port);
  req.set(bhttp::field::user_agent, "ringmq-ctl");
  req.set(bhttp::field::accept, "application/json");
  if (!token.empty()) req.set(bhttp::field::authorization, "Bearer " + token);
  req.keep_alive(false);
  req.prepare_payload();
  http_result result;
  asio::io_context io;
  std::make_shared<exchange>(io, at, std::move(req), result)->start();
  // The resolver is not covered by the stream's timer: bound the whole run.
  io.run_for(request_timeout + std::chrono::seconds(1));
  if (result.status == 0 && result.error.empty()) result.error = "no answer: timed out";
  return result;
}

// ---------------------------------------------------------------------------
// Formatting

std::string text_of(const json::value* v) {
  if (!v || v->is_null()) return "-";
  if (v->is_string()) return std::string(v->as_string());
  if (v->is_bool()) return v->as_bool() ? "yes" : "no";
  if (v->is_int64()) return std::to_string(v->as_int64());
  if (v->is_uint64()) return std::to_string(v->as_uint64());
  return json::serialize(*v);
}

std::string field(const json::object& o, std::string_view key) {
  return text_of(o.if_contains(key));
}

// Unix milliseconds as UTC ISO 8601, to the second.
std::string time_of(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v || !v->is_int64()) return "-";
  const std::time_t seconds = static_cast<std::time_t>(v->as_int64() / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char out[32];
  std::strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return out;
}

// Payloads are shown on one line, cut short, control characters escaped.
std::string printable(std::string_view s, std::size_t max = 40) {
  std::string out;
  for (const unsigned char c : s) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    if (c < 0x20 || c == 0x7F) {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0xF]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

using row = std::vector<std::string>;

// Columns padded to their widest cell, two spaces apart; the last one unpadded.
void print_table(std::ostream& out, const row& headers, const std::vector<row>& rows) {
  std::vector<std::size_t> width(headers.size());
  for (std::size_t c = 0; c < headers.size(); ++c) width[c] = headers[c].size();
  for (const auto& r : rows) {
    for (std::size_t c = 0; c < r.size() && c < width.size(); ++c) {
      width[c] = std::max(width[c], r[c].size());
    }
  }
  auto line = [&](const row& r) {
    std::string text;
    for (std::size_t c = 0; c < r.size(); ++c) {
      text += r[c];
      if (c + 1 < r.size()) text.append(width[c] - r[c].size() + 2, ' ');
    }
    out << text << "\n";
  };
  line(headers);
  for (const auto& r : rows) line(r);
}

// "3 of 250 shown (page 2, 100 per page); next: --page 3" when there is more.
void print_footer(std::ostream& out, const json::object& body, std::size_t shown,
                  std::string_view what) {
  const auto* meta = body.if_contains("meta");
  if (!meta || !meta->is_object()) return;
  const auto& m = meta->as_object();
  const auto count = field(m, "count");
  const auto* more = m.if_contains("hasnext");
  const bool hasnext = more && more->is_bool() && more->as_bool();
  if (shown == 0 && count == "0") {
    out << "no " << what << "\n";
    return;
  }
  if (hasnext || std::to_string(shown) != count) {
    const auto* page = m.if_contains("page");
    boost::system::error_code ec;
    auto page_number = page ? page->to_number<std::int64_t>(ec) : 1;
    if (ec) page_number = 1;
    out << shown << " of " << count << " " << what << " shown (page " << page_number << ")";
    if (hasnext) out << "; next: --page " << page_number + 1;
    out << "\n";
  }
}

struct list_view {
  row headers;
  std::vector<row> rows;
};

list_view clients_view(const json::array& data) {
  list_view v{{"CLIENT ID", "USERNAME", "PEER", "LISTENER", "PROTO", "KEEPALIVE", "SUBS",
               "INFLIGHT", "QUEUED", "CONNECTED AT"},
              {}};
  for (const auto& item : data) {
    if (!item.is_object()) continue;
    const auto& o = item.as_object();
    v.rows.push_back({field(o, "clientid"), field(o, "username"), field(o, "peername"),
                      field(o, "listener"), field(o, "proto_ver"), field(o, "keepalive"),
                      field(o, "subscriptions_cnt"), field(o, "inflight_cnt"),
                      field(o, "mqueue_len"), time_of(o, "connected_at")});
  }
  return v;
}

list_view sessions_view(const json::array& data) {
  list_view v{{"CLIENT ID", "CONNECTED", "USERNAME", "EXPIRY", "EXPIRES IN", "SUBS", "INFLIGHT",
               "QUEUED"},
              {}};
  for (const auto& item : data) {
    if (!item.is_object()) continue;
    const auto& o = item.as_object();
    const auto expires = field(o, "expires_in_s");
    v.rows.push_back({field(o, "clientid"), field(o, "connected"), field(o, "username"),
                      field(o, "expiry_interval"), expires == "-" ? "-" : expires + "s",
                      field(o, "subscriptions_cnt"), field(o, "inflight_cnt"),
                      field(o, "mqueue_len")});
  }
  return v;
}

row subscription_row(const json::object& o, bool with_client) {
  row r;
  if (with_client) r.push_back(field(o, "clientid"));
  for (const auto* key : {"topic", "qos", "nl", "rap", "rh", "subid"}) r.push_back(field(o, key));
  return r;
}

list_view subscriptions_view(const json::array& data) {
  list_view v{{"CLIENT ID", "TOPIC", "QOS", "NL", "RAP", "RH", "SUBID"}, {}};
  for (const auto& item : data) {
    if (item.is_object()) v.rows.push_back(subscription_row(item.as_object(), true));
  }
  return v;
}

list_view retained_view(const json::array& data) {
  list_view v{{"TOPIC", "QOS", "SIZE", "PUBLISHER", "PAYLOAD"}, {}};
  for (const auto& item : data) {
    if (!item.is_object()) continue;
    const auto& o = item.as_object();
    std::string payload = printable(field(o, "payload"));
    if (field(o, "payload_encoding") == "hex") payload = "hex:" + payload;
    v.rows.push_back({field(o, "topic"), field(o, "qos"), field(o, "payload_size"),
                      field(o, "publisher"), payload});
  }
  return v;
}

void print_client(std::ostream& out, const json::object& o) {
  const std::vector<std::pair<std::string, std::string>> facts{
      {"client id", field(o, "clientid")},
      {"connected", field(o, "connected")},
      {"username", field(o, "username")},
      {"peer", field(o, "peername")},
      {"listener", field(o, "listener")},
      {"protocol", field(o, "proto_ver")},
      {"keepalive", field(o, "keepalive")},
      {"connected at", time_of(o, "connected_at")},
      {"expiry interval", field(o, "expiry_interval")},
      {"subscriptions", field(o, "subscriptions_cnt")},
      {"inflight", field(o, "inflight_cnt")},
      {"queued", field(o, "mqueue_len")},
  };
  std::size_t width = 0;
  for (const auto& [k, _] : facts) width = std::max(width, k.size());
  for (const auto& [k, v] : facts) out << k << std::string(width - k.size() + 2, ' ') << v << "\n";
  std::vector<row> rows;
  if (const auto* subs = o.if_contains("subscriptions"); subs && subs->is_array()) {
    for (const auto& s : subs->as_array()) {
      if (s.is_object()) rows.push_back(subscription_row(s.as_object(), false));
    }
  }
  out << "\n";
  if (rows.empty()) {
    out << "no subscriptions\n";
  } else {
    print_table(out, {"TOPIC", "QOS", "NL", "RAP", "RH", "SUBID"}, rows);
  }
}

void print_cluster(std::ostream& out, const json::object& o) {
  out << "cluster " << field(o, "cluster") << "  node " << field(o, "node") << "  epoch "
      << field(o, "epoch") << "  ready " << field(o, "ready")
      << (field(o, "member") == "no" ? "  (removed from the member set)" : "") << "\n\n";
  std::vector<row> members;
  if (const auto* list = o.if_contains("members"); list && list->is_array()) {
    for (const auto& m : list->as_array()) {
      if (!m.is_object()) continue;
      const auto& mo = m.as_object();
      auto id = field(mo, "id");
      if (field(mo, "self") == "yes") id += " (this node)";
      if (field(mo, "leaving") == "yes") id += " (leaving)";
      members.push_back({id, field(mo, "state"), field(mo, "address"), field(mo, "vnodes"),
                         field(mo, "slots")});
    }
  }
  print_table(out, {"MEMBER", "STATE", "ADDRESS", "VNODES", "SLOTS"}, members);
  std::vector<row> peers;
  if (const auto* list = o.if_contains("peers"); list && list->is_array()) {
    for (const auto& p : list->as_array()) {
      if (!p.is_object()) continue;
      const auto& po = p.as_object();
      const bool synced = field(po, "routes_synced") == "yes" && field(po, "retained_synced") == "yes";
      peers.push_back({field(po, "id"), field(po, "state"), field(po, "stream"),
                       synced ? "yes" : "no", field(po, "routes"), field(po, "queue_messages"),
                       field(po, "forwarded_out") + "/" + field(po, "forwarded_in"),
                       field(po, "last_heard_ms_ago") + " ms"});
    }
  }
  if (!peers.empty()) {
    out << "\n";
    print_table(out, {"PEER", "STATE", "STREAM", "SYNCED", "ROUTES", "QUEUED", "OUT/IN", "HEARD"},
                peers);
  }
}

// ---------------------------------------------------------------------------
// pre-stop: what a container's preStop hook runs before the SIGTERM.

// Why a node should not be stopped yet, from its /api/v1/cluster; empty when
// it may stop now. Only what will end by itself is waited for: a member that
// is not alive keeps copies missing until it returns or is removed, so it is
// no reason to wait.
std::string reason_to_wait(const json::object& o, bool& leaving) {
  leaving = false;
  if (field(o, "clustered") != "yes") return {};
  const auto* members = o.if_contains("members");
  std::string down;
  if (members && members->is_array()) {
    for (const auto& m : members->as_array()) {
      if (!m.is_object()) continue;
      const auto& mo = m.as_object();
      if (field(mo, "self") == "yes") {
        leaving = field(mo, "leaving") == "yes";
      } else if (field(mo, "state") != "alive") {
        down += (down.empty() ? "" : ", ") + field(mo, "id");
      }
    }
  }
  if (leaving) return "the node is leaving the cluster; it stops once that is done";
  const auto* sessions = o.if_contains("sessions");
  if (!sessions || !sessions->is_object()) return {};
  const auto& so = sessions->as_object();
  const auto moving = field(so, "moving");
  if (moving != "0" && moving != "-") return moving + " sessions are moving to another replica set";
  const auto under = field(so, "under_replicated");
  if (under != "0" && under != "-" && down.empty()) {
    return under + " sessions it serves are not yet in sync on every replica";
  }
  return {};
}

// Waits until stopping the node loses no copy that a short wait would have
// saved (a rolling restart: the previous node is back but still catching up)
// or until a leave in progress has ended (the node exits by itself). Returns 0
// when the node may stop, 1 when the wait timed out (the hook's failure shows
// as a Kubernetes event; the pod stops anyway).
int pre_stop(const endpoint& at, const std::string& token, std::chrono::seconds timeout,
             std::ostream& out, std::ostream& err) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string said;
  bool was_leaving = false;
  for (;;) {
    const auto r = call(at, bhttp::verb::get, "/api/v1/cluster", token, {});
    if (!r.error.empty()) {
      out << (was_leaving ? "the node has left the cluster and stopped\n"
                          : "the node does not answer (" + r.error + "): nothing to wait for\n");
      return exit_ok;
    }
    boost::system::error_code ec;
    const auto body = json::parse(r.body, ec);
    if (r.status >= 400 || ec || !body.is_object()) {
      err << "ringmq ctl pre-stop: /api/v1/cluster answered " << r.status << " "
          << printable(r.body, 200) << "; not waiting\n";
      return exit_failed;
    }
    bool leaving = false;
    const auto why = reason_to_wait(body.as_object(), leaving);
    was_leaving |= leaving;
    if (why.empty()) {
      out << (was_leaving ? "the node has left the cluster\n" : "the node may stop now\n");
      return exit_ok;
    }
    if (why != said) out << "waiting: " << why << "\n" << std::flush;
    said = why;
    if (std::chrono::steady_clock::now() >= deadline) {
      err << "ringmq ctl pre-stop: still " << why << " after " << timeout.count()
          << " s; stopping anyway\n";
      return exit_failed;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

// ---------------------------------------------------------------------------
// Commands

struct options {
  std::string url = "http://127.0.0.1:8080";
  std::string token;
  bool raw_json = false;
  std::size_t page = 1;
  std::size_t limit = 100;
  std::string like;
  std::string username;
  std::string client;
  std::string id;
  std::string filter = "#";
  unsigned timeout_s = 540;
};

std::string list_query(const options& o, std::initializer_list<std::pair<const char*, std::string>>
                                             filters) {
  std::string q = "?page=" + std::to_string(o.page) + "&limit=" + std::to_string(o.limit);
  for (const auto& [key, value] : filters) {
    if (!value.empty()) q += std::string("&") + key + "=" + url_encode(value);
  }
  return q;
}

}  // namespace

int run_ctl(const std::vector<std::string>& args, const std::string& env_token,
            std::ostream& out, std::ostream& err) {
  CLI::App cli{"ringmq ctl: look at and steer a running ringmq node through its admin API",
               "ringmq ctl"};
  options o;
  o.token = env_token;
  cli.add_option("--url", o.url, "the node's HTTP address (http.bind)")
      ->capture_default_str();
  cli.add_option("--token", o.token,
                 "admin token (http.admin_token); default: $RINGMQ_HTTP__ADMIN_TOKEN");
  cli.add_flag("--json", o.raw_json, "print the API's JSON instead of a table");
  cli.add_option("--page", o.page, "page of a list, from 1")->check(CLI::PositiveNumber);
  cli.add_option("--limit", o.limit, "entries per page (1 to 10000)")
      ->check(CLI::Range(1, 10'000));
  cli.require_subcommand(1);
  cli.fallthrough();

  auto* clients = cli.add_subcommand("clients", "list connected clients");
  clients->add_option("--like", o.like, "client ids containing this text");
  clients->add_option("--username", o.username, "clients of this user name");
  auto* client = cli.add_subcommand("client", "show one client and its subscriptions");
  client->add_option("ID", o.id, "client id")->required();
  auto* kick = cli.add_subcommand("kick", "disconnect a client (needs the admin token)");
  kick->add_option("ID", o.id, "client id")->required();
  auto* sessions = cli.add_subcommand("sessions", "list sessions, connected or not");
  sessions->add_option("--like", o.like, "client ids containing this text");
  sessions->add_option("--username", o.username, "sessions of this user name");
  auto* subscriptions = cli.add_subcommand("subscriptions", "list subscriptions");
  subscriptions->add_option("--client", o.client, "subscriptions of this client id");
  auto* retained = cli.add_subcommand("retained", "list retained messages");
  retained->add_option("FILTER", o.filter, "topic filter")->capture_default_str();
  auto* cluster = cli.add_subcommand("cluster", "show the cluster: members, liveness, peers");
  auto* forget = cli.add_subcommand(
      "forget", "remove a member from the cluster's member set (needs the admin token)");
  forget->add_option("NODE", o.id, "node id")->required();
  auto* leave = cli.add_subcommand(
      "leave", "make this node leave the cluster: its sessions move to the other members, its "
               "clients are disconnected, then it stops (needs the admin token)");
  auto* prestop = cli.add_subcommand(
      "pre-stop", "wait until the node may be stopped: a leave in progress has ended, no "
                  "session is moving and those it serves are in sync on their live replicas "
                  "(a container's preStop hook)");
  prestop->add_option("--timeout", o.timeout_s, "give up after this many seconds")
      ->capture_default_str()
      ->check(CLI::Range(1u, 604'800u));

  try {
    // CLI11 takes the arguments last first.
    std::vector<std::string> reversed(args.rbegin(), args.rend());
    cli.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e, out, err) == 0 ? exit_ok : exit_usage;
  }

  std::string problem;
  const auto at = parse_url(o.url, problem);
  if (!at) {
    err << "ringmq ctl: --url: " << problem << "\n";
    return exit_usage;
  }

  if (prestop->parsed()) {
    return pre_stop(*at, o.token, std::chrono::seconds(o.timeout_s), out, err);
  }

  bhttp::verb method = bhttp::verb::get;
  std::string target;
  if (clients->parsed()) {
    target = "/api/v1/clients" + list_query(o, {{"like_clientid", o.like},
                                                 {"username", o.username}});
  } else if (client->parsed()) {
    target = "/api/v1/clients/" + url_encode(o.id);
  } else if (kick->parsed()) {
    method = bhttp::verb::delete_;
    target = "/api/v1/clients/" + url_encode(o.id);
  } else if (sessions->parsed()) {
    target = "/api/v1/sessions" + list_query(o, {{"like_clientid", o.like},
                                                  {"username", o.username}});
  } else if (subscriptions->parsed()) {
    target = "/api/v1/subscriptions" + list_query(o, {{"clientid", o.client}});
  } else if (cluster->parsed()) {
    target = "/api/v1/cluster";
  } else if (forget->parsed()) {
    method = bhttp::verb::post;
    target = "/api/v1/cluster/forget";
  } else if (leave->parsed()) {
    method = bhttp::verb::post;
    target = "/api/v1/cluster/leave";
  } else {
    target = "/api/v1/retained" + list_query(o, {{"filter", o.filter}});
  }

  const auto shown_url = "http://" + at->host + ":" + at->port + at->prefix;
  const auto request_body =
      forget->parsed() ? json::serialize(json::object{{"node", o.id}}) : std::string();
  const auto result = call(*at, method, target, o.token, request_body);
  if (!result.error.empty()) {
    err << "ringmq ctl: cannot reach " << shown_url << ": " << result.error << "\n";
    return exit_failed;
  }
  boost::system::error_code ec;
  const auto body = result.body.empty() ? json::value() : json::parse(result.body, ec);
  if (result.status >= 400) {
    std::string why = result.body;
    if (!ec && body.is_object()) {
      if (const auto* e = body.as_object().if_contains("error"); e && e->is_string()) {
        why = std::string(e->as_string());
      }
    }
    err << "ringmq ctl: " << bhttp::to_string(method) << " " << shown_url << target << ": "
        << result.status << " " << why << "\n";
    if (result.status == 401) err << "ringmq ctl: give the admin token with --token\n";
    return exit_failed;
  }
  if (kick->parsed()) {
    if (!o.raw_json) out << "disconnected " << o.id << "\n";
    return exit_ok;
  }
  if (o.raw_json) {
    out << result.body << (result.body.ends_with('\n') ? "" : "\n");
    return exit_ok;
  }
  if (ec || !body.is_object()) {
    err << "ringmq ctl: " << shown_url << target << " answered something else than a JSON "
        << "object: " << printable(result.body, 200) << "\n";
    return exit_failed;
  }
  const auto& object = body.as_object();
  if (client->parsed()) {
    print_client(out, object);
    return exit_ok;
  }
  if (cluster->parsed() || forget->parsed() || leave->parsed()) {
    if (forget->parsed()) out << "forgot " << o.id << "\n\n";
    if (leave->parsed()) {
      out << "leaving: the node hands its sessions to the other members, disconnects its "
             "clients, then stops (its log tells the progress)\n\n";
    }
    print_cluster(out, object);
    return exit_ok;
  }
  const auto* data = object.if_contains("data");
  if (!data || !data->is_array()) {
    err << "ringmq ctl: " << shown_url << target << " answered without a \"data\" list\n";
    return exit_failed;
  }
  const auto& items = data->as_array();
  list_view view;
  std::string what;
  if (clients->parsed()) {
    view = clients_view(items);
    what = "clients";
  } else if (sessions->parsed()) {
    view = sessions_view(items);
    what = "sessions";
  } else if (subscriptions->parsed()) {
    view = subscriptions_view(items);
    what = "subscriptions";
  } else {
    view = retained_view(items);
    what = "retained messages";
  }
  if (!view.rows.empty()) print_table(out, view.headers, view.rows);
  print_footer(out, object, view.rows.size(), what);
  return exit_ok;
}

int ctl_main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  const char* token = std::getenv("RINGMQ_HTTP__ADMIN_TOKEN");
  return run_ctl(args, token ? token : "", std::cout, std::cerr);
}

}  // namespace ringmq::app
