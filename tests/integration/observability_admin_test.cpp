// The admin HTTP API (/api/v1) and the health endpoints of a running ringmq,
// driven over real sockets: paging and filters, one client with its
// subscriptions, kicking a client (which sees the DISCONNECT), the bearer
// token, retained messages, publishing, malformed requests (a JSON error, never
// a crash), and `ringmq ctl` run as a command against the same node.

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json/src.hpp>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "tests/integration/child_process.hpp"
#include "tests/integration/observability_http.hpp"
#include "tests/support/broker_process.hpp"

namespace ringmq::testing {
namespace {

namespace json = boost::json;

constexpr milliseconds wait_limit{5'000};
const std::string token = "s3cret-admin-token";

class ObservabilityAdmin : public ::testing::Test {
 protected:
  // A broker with its HTTP server on an ephemeral port; `extra` are more --set overrides.
  void start(std::vector<std::string> extra = {"http.admin_token=" + token}) {
    std::vector<std::string> overrides{"http.bind=127.0.0.1:0", "mqtt.sys_interval_s=0"};
    overrides.insert(overrides.end(), extra.begin(), extra.end());
    broker_ = std::make_unique<broker_process>(overrides);
    ASSERT_TRUE(broker_->ready()) << broker_->describe();
    http_ = http_port_of(*broker_);
    ASSERT_NE(http_, 0) << broker_->describe();
  }

  void TearDown() override {
    clients_.clear();
    if (broker_ && broker_->ready()) {
      const auto status = broker_->stop();
      EXPECT_TRUE(status && status->clean()) << broker_->describe();
    }
  }

  http_reply get(const std::string& target, const std::vector<std::string>& headers = {}) {
    return http_request(http_, "GET", target, {}, headers);
  }

  // An MQTT client connected (CONNACK success) and kept until the test ends.
  mqtt_socket& connect(const std::string& id,
                       codec::protocol_version version = codec::protocol_version::v5,
                       std::optional<std::string> username = std::nullopt) {
    auto s = std::make_unique<mqtt_socket>();
    EXPECT_TRUE(s->connect_tcp(broker_->port())) << s->error();
    codec::connect_packet c;
    c.version = version;
    c.client_id = id;
    c.keep_alive = 60;
    c.username = std::move(username);
    const auto ack = s->handshake(c);
    EXPECT_TRUE(ack && ack->code == codec::reason_code::success) << id << ": " << s->error();
    clients_.push_back(std::move(s));
    return *clients_.back();
  }

  void subscribe(mqtt_socket& s, std::vector<std::pair<std::string, codec::qos>> filters) {
    codec::subscribe_packet sub;
    sub.packet_id = 1;
    for (auto& [f, q] : filters) sub.subscriptions.push_back({f, {q}});
    ASSERT_TRUE(s.send(codec::packet{sub}));
    codec::packet p;
    ASSERT_EQ(s.receive(p, wait_limit), mqtt_socket::read_result::packet) << s.error();
    ASSERT_TRUE(std::holds_alternative<codec::suback_packet>(p));
  }

  // The client ids in a paged list answer, in order.
  static std::vector<std::string> ids_of(const http_reply& r) {
    std::vector<std::string> ids;
    const auto v = r.json();
    if (!v.is_object()) return ids;
    for (const auto& item : v.at("data").as_array()) {
      ids.emplace_back(item.at("clientid").as_string());
    }
    return ids;
  }

  static json::object meta_of(const http_reply& r) {
    const auto v = r.json();
    return v.is_object() ? v.at("meta").as_object() : json::object{};
  }

  // Waits until GET `target` lists exactly `count` entries.
  bool wait_count(const std::string& target, std::size_t count) {
    const auto deadline = steady::now() + wait_limit;
    while (steady::now() < deadline) {
      const auto meta = meta_of(get(target, {bearer(token)}));
      if (meta.contains("count") && meta.at("count").to_number<std::size_t>() == count) {
        return true;
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
    return false;
  }

  child_result ctl(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
    std::vector<std::string> argv{ringmq_binary(), "ctl", "--url",
                                  "http://127.0.0.1:" + std::to_string(http_)};
    argv.insert(argv.end(), args.begin(), args.end());
    child_options options;
    options.timeout = milliseconds(15'000);
    options.set_env = std::move(env);
    options.unset_env = {"RINGMQ_HTTP__ADMIN_TOKEN"};
    for (const auto& [k, _] : options.set_env) {
      std::erase(options.unset_env, k);
    }
    return run_child(argv, options);
  }

  std::unique_ptr<broker_process> broker_;
  std::uint16_t http_ = 0;
  std::vector<std::unique_ptr<mqtt_socket>> clients_;
};

TEST_F(ObservabilityAdmin, HealthEndpointsAnswerWhenUp) {
  ASSERT_NO_FATAL_FAILURE(start());
  const auto live = get("/livez");
  EXPECT_EQ(live.status, 200) << live.describe();
  const auto ready = get("/readyz");
  EXPECT_EQ(ready.status, 200) << ready.describe();
  EXPECT_EQ(ready.body, "ready\n");
}

TEST_F(ObservabilityAdmin, ClientsArePagedInClientIdOrder) {
  ASSERT_NO_FATAL_FAILURE(start());
  for (const auto* id : {"dev-04", "dev-02", "dev-05", "dev-01", "dev-03"}) connect(id);

  const auto all = get("/api/v1/clients");
  ASSERT_EQ(all.status, 200) << all.describe();
  EXPECT_EQ(ids_of(all),
            (std::vector<std::string>{"dev-01", "dev-02", "dev-03", "dev-04", "dev-05"}));
  EXPECT_EQ(meta_of(all).at("count").to_number<int>(), 5);

  std::vector<std::string> seen;
  for (int page = 1; page <= 3; ++page) {
    const auto r = get("/api/v1/clients?limit=2&page=" + std::to_string(page));
    ASSERT_EQ(r.status, 200) << r.describe();
    const auto meta = meta_of(r);
    EXPECT_EQ(meta.at("page").to_number<int>(), page);
    EXPECT_EQ(meta.at("limit").to_number<int>(), 2);
    EXPECT_EQ(meta.at("count").to_number<int>(), 5);
    EXPECT_EQ(meta.at("hasnext").as_bool(), page < 3) << "page " << page;
    const auto ids = ids_of(r);
    EXPECT_EQ(ids.size(), page < 3 ? 2u : 1u);
    seen.insert(seen.end(), ids.begin(), ids.end());
  }
  EXPECT_EQ(seen, ids_of(all));
  const auto beyond = get("/api/v1/clients?limit=2&page=4");
  ASSERT_EQ(beyond.status, 200) << beyond.describe();
  EXPECT_TRUE(ids_of(beyond).empty());
  EXPECT_FALSE(meta_of(beyond).at("hasnext").as_bool());
}

TEST_F(ObservabilityAdmin, ClientsAreFilteredByIdSubstringAndUsername) {
  ASSERT_NO_FATAL_FAILURE(start());
  connect("kitchen-1", codec::protocol_version::v5, "alice");
  connect("kitchen-2", codec::protocol_version::v3_1_1, "bob");
  connect("garage-1", codec::protocol_version::v5, "alice");

  EXPECT_EQ(ids_of(get("/api/v1/clients?clientid=kitchen-2")),
            (std::vector<std::string>{"kitchen-2"}));
  EXPECT_EQ(ids_of(get("/api/v1/clients?like_clientid=kitchen")),
            (std::vector<std::string>{"kitchen-1", "kitchen-2"}));
  EXPECT_EQ(ids_of(get("/api/v1/clients?username=alice")),
            (std::vector<std::string>{"garage-1", "kitchen-1"}));
  EXPECT_EQ(ids_of(get("/api/v1/clients?username=alice&like_clientid=kitchen")),
            (std::vector<std::string>{"kitchen-1"}));
  const auto none = get("/api/v1/clients?clientid=nobody");
  ASSERT_EQ(none.status, 200) << none.describe();
  EXPECT_TRUE(ids_of(none).empty());
  EXPECT_EQ(meta_of(none).at("count").to_number<int>(), 0);

  const auto one = get("/api/v1/clients?clientid=kitchen-2").json();
  const auto& c = one.at("data").as_array().at(0).as_object();
  EXPECT_EQ(c.at("username").as_string(), "bob");
  EXPECT_EQ(c.at("proto_ver").as_string(), "3.1.1");
  EXPECT_TRUE(c.at("connected").as_bool());
}

TEST_F(ObservabilityAdmin, OneClientShowsItsSubscriptions) {
  ASSERT_NO_FATAL_FAILURE(start());
  // A client id that needs percent-encoding in a path.
  const std::string id = "home/sensor 7";
  auto& s = connect(id);
  ASSERT_NO_FATAL_FAILURE(subscribe(
      s, {{"home/+/temp", codec::qos::at_least_once}, {"alerts/#", codec::qos::exactly_once}}));

  const auto r = get("/api/v1/clients/" + url_encode(id));
  ASSERT_EQ(r.status, 200) << r.describe();
  const auto v = r.json();
  EXPECT_EQ(v.at("clientid").as_string(), id);
  EXPECT_EQ(v.at("subscriptions_cnt").to_number<int>(), 2);
  EXPECT_EQ(v.at("inflight_cnt").to_number<int>(), 0);
  EXPECT_EQ(v.at("mqueue_len").to_number<int>(), 0);
  std::map<std::string, int> subs;
  for (const auto& sub : v.at("subscriptions").as_array()) {
    subs[std::string(sub.at("topic").as_string())] = sub.at("qos").to_number<int>();
  }
  EXPECT_EQ(subs, (std::map<std::string, int>{{"alerts/#", 2}, {"home/+/temp", 1}}));

  const auto listed = get("/api/v1/subscriptions?clientid=" + url_encode(id));
  ASSERT_EQ(listed.status, 200) << listed.describe();
  EXPECT_EQ(meta_of(listed).at("count").to_number<int>(), 2);

  const auto missing = get("/api/v1/clients/nobody");
  EXPECT_EQ(missing.status, 404) << missing.describe();
  EXPECT_TRUE(missing.is_json_error()) << missing.describe();
}

TEST_F(ObservabilityAdmin, KickedClientSeesAdministrativeActionDisconnect) {
  ASSERT_NO_FATAL_FAILURE(start());
  auto& v5 = connect("victim-5");
  auto& v311 = connect("victim-311", codec::protocol_version::v3_1_1);
  connect("bystander");

  const auto kicked =
      http_request(http_, "DELETE", "/api/v1/clients/victim-5", {}, {bearer(token)});
  EXPECT_EQ(kicked.status, 204) << kicked.describe();
  codec::packet p;
  ASSERT_EQ(v5.receive(p, wait_limit), mqtt_socket::read_result::packet) << v5.error();
  const auto* d = std::get_if<codec::disconnect_packet>(&p);
  ASSERT_NE(d, nullptr) << "expected DISCONNECT, got " << codec::to_string(codec::type_of(p));
  EXPECT_EQ(d->code, codec::reason_code::administrative_action);
  EXPECT_TRUE(v5.wait_closed(wait_limit));

  // Before 5.0 there is no DISCONNECT from the server: the connection closes.
  const auto kicked311 =
      http_request(http_, "DELETE", "/api/v1/clients/victim-311", {}, {bearer(token)});
  EXPECT_EQ(kicked311.status, 204) << kicked311.describe();
  EXPECT_TRUE(v311.wait_closed(wait_limit));

  EXPECT_TRUE(wait_count("/api/v1/clients", 1));
  EXPECT_EQ(ids_of(get("/api/v1/clients")), (std::vector<std::string>{"bystander"}));
  const auto again =
      http_request(http_, "DELETE", "/api/v1/clients/victim-5", {}, {bearer(token)});
  EXPECT_EQ(again.status, 404) << again.describe();
  EXPECT_TRUE(again.is_json_error()) << again.describe();
}

TEST_F(ObservabilityAdmin, WritesNeedTheBearerToken) {
  ASSERT_NO_FATAL_FAILURE(start());
  connect("target");
  const auto none = http_request(http_, "DELETE", "/api/v1/clients/target");
  EXPECT_EQ(none.status, 401) << none.describe();
  EXPECT_TRUE(none.is_json_error()) << none.describe();
  const auto wrong =
      http_request(http_, "DELETE", "/api/v1/clients/target", {}, {bearer("not-the-token")});
  EXPECT_EQ(wrong.status, 403) << wrong.describe();
  EXPECT_TRUE(wrong.is_json_error()) << wrong.describe();
  const auto prefix = http_request(http_, "DELETE", "/api/v1/clients/target", {},
                                   {bearer(token + "x")});
  EXPECT_EQ(prefix.status, 403) << prefix.describe();
  const auto basic = http_request(http_, "DELETE", "/api/v1/clients/target", {},
                                  {"Authorization: Basic YWRtaW46YWRtaW4="});
  EXPECT_EQ(basic.status, 403) << basic.describe();
  const auto publish = http_request(http_, "POST", "/api/v1/publish", R"({"topic":"a"})");
  EXPECT_EQ(publish.status, 401) << publish.describe();
  // Reads need no token unless http.protect_reads is set; the client is still there.
  EXPECT_EQ(ids_of(get("/api/v1/clients")), (std::vector<std::string>{"target"}));
}

TEST_F(ObservabilityAdmin, WithoutAnAdminTokenTheApiIsReadOnly) {
  ASSERT_NO_FATAL_FAILURE(start({}));
  connect("target");
  EXPECT_EQ(get("/api/v1/clients").status, 200);
  for (const auto& auth : std::vector<std::vector<std::string>>{{}, {bearer("")},
                                                               {bearer("anything")}}) {
    const auto r = http_request(http_, "DELETE", "/api/v1/clients/target", {}, auth);
    EXPECT_EQ(r.status, 403) << r.describe();
    EXPECT_TRUE(r.is_json_error()) << r.describe();
  }
  EXPECT_EQ(ids_of(get("/api/v1/clients")), (std::vector<std::string>{"target"}));
}

TEST_F(ObservabilityAdmin, ProtectedReadsNeedTheTokenToo) {
  ASSERT_NO_FATAL_FAILURE(start({"http.admin_token=" + token, "http.protect_reads=true"}));
  for (const auto* path : {"/api/v1/clients", "/api/v1/sessions", "/api/v1/subscriptions",
                           "/api/v1/retained", "/api/v1/cluster"}) {
    const auto none = get(path);
    EXPECT_EQ(none.status, 401) << path << "\n" << none.describe();
    EXPECT_EQ(get(path, {bearer("wrong")}).status, 403) << path;
    EXPECT_EQ(get(path, {bearer(token)}).status, 200) << path;
  }
  // Probes and metrics stay open: Kubernetes and Prometheus have no token.
  EXPECT_EQ(get("/readyz").status, 200);
  EXPECT_EQ(get("/metrics").status, 200);
}

TEST_F(ObservabilityAdmin, MalformedRequestsGetJsonErrorsAndTheBrokerLivesOn) {
  ASSERT_NO_FATAL_FAILURE(start());
  struct bad_request {
    std::string method;
    std::string target;
    std::string body;
    int status;
  };
  const std::vector<bad_request> requests{
      {"GET", "/api/v1/clients?page=0", "", 400},
      {"GET", "/api/v1/clients?page=abc", "", 400},
      {"GET", "/api/v1/clients?page=-1", "", 400},
      {"GET", "/api/v1/clients?limit=0", "", 400},
      {"GET", "/api/v1/clients?limit=100000", "", 400},
      {"GET", "/api/v1/clients?limit=99999999999999999999999", "", 400},
      {"GET", "/api/v1/sessions?page=x", "", 400},
      {"GET", "/api/v1/retained?filter=a/%23/b", "", 400},
      {"GET", "/api/v1/nothing-here", "", 404},
      {"GET", "/nothing-here", "", 404},
      {"PUT", "/api/v1/clients", "", 405},
      {"GET", "/api/v1/publish", "", 405},
      {"POST", "/api/v1/publish", "this is not JSON", 400},
      {"POST", "/api/v1/publish", "{\"topic\": ", 400},
      {"POST", "/api/v1/publish", "[1, 2]", 400},
      {"POST", "/api/v1/publish", "{}", 400},
      {"POST", "/api/v1/publish", R"({"topic": 7})", 400},
      {"POST", "/api/v1/publish", R"({"topic": "a/+/b"})", 400},
      {"POST", "/api/v1/publish", R"({"topic": "a", "qos": 3})", 400},
      {"POST", "/api/v1/publish", R"({"topic": "a", "payload": 5})", 400},
      {"POST", "/api/v1/publish", R"({"topic": "a", "retain": "yes"})", 400},
      {"DELETE", "/api/v1/clients", "", 400},
      {"DELETE", "/api/v1/retained/a/%23", "", 400},
  };
  for (const auto& b : requests) {
    const auto r = http_request(http_, b.method, b.target, b.body, {bearer(token)});
    EXPECT_EQ(r.status, b.status) << b.method << " " << b.target << " " << b.body << "\n"
                                  << r.describe();
    EXPECT_TRUE(r.is_json_error()) << b.method << " " << b.target << "\n" << r.describe();
  }

  // A body over the server's limit (64 KiB): refused from its Content-Length.
  const auto big = http_exchange(
      http_, "POST /api/v1/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Authorization: Bearer " + token + "\r\nContent-Length: 10000000\r\n\r\n{\"topic\":");
  EXPECT_EQ(big.status, 413) << big.describe();
  EXPECT_TRUE(big.is_json_error()) << big.describe();
  // Headers over the limit (8 KiB).
  const auto huge_header = http_exchange(
      http_, "GET /api/v1/clients HTTP/1.1\r\nHost: x\r\nX-Filler: " + std::string(20'000, 'a') +
                 "\r\n\r\n");
  EXPECT_EQ(huge_header.status, 413) << huge_header.describe();
  // Not HTTP at all.
  const char mqtt_connect[] = "\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\r\n\r\n";
  const auto garbage = http_exchange(http_, std::string(mqtt_connect, sizeof mqtt_connect - 1));
  EXPECT_EQ(garbage.status, 400) << garbage.describe();
  EXPECT_TRUE(garbage.is_json_error()) << garbage.describe();
  // A connection that sends half a request and goes away.
  const auto cut = http_exchange(http_, "GET /api/v1/cli", milliseconds(200));
  EXPECT_EQ(cut.status, 0);

  // Still alive and serving, over HTTP and MQTT.
  EXPECT_EQ(get("/livez").status, 200);
  EXPECT_EQ(get("/api/v1/clients").status, 200);
  connect("still-works");
  EXPECT_EQ(ids_of(get("/api/v1/clients")), (std::vector<std::string>{"still-works"}));
}

TEST_F(ObservabilityAdmin, RetainedMessagesAreListedByFilterAndDeleted) {
  ASSERT_NO_FATAL_FAILURE(start());
  for (const auto* topic : {"site/a/temp", "site/b/temp", "other/x"}) {
    const auto r = http_request(
        http_, "POST", "/api/v1/publish",
        json::serialize(json::object{{"topic", topic}, {"payload", std::string("v-") + topic},
                                     {"retain", true}, {"qos", 1}}),
        {bearer(token)});
    ASSERT_EQ(r.status, 200) << r.describe();
  }
  auto topics = [&](const std::string& filter) {
    std::vector<std::string> out;
    const auto r = get("/api/v1/retained?filter=" + url_encode(filter));
    EXPECT_EQ(r.status, 200) << r.describe();
    const auto v = r.json();
    if (!v.is_object()) return out;
    for (const auto& m : v.at("data").as_array()) out.emplace_back(m.at("topic").as_string());
    return out;
  };
  EXPECT_EQ(topics("site/+/temp"), (std::vector<std::string>{"site/a/temp", "site/b/temp"}));
  EXPECT_EQ(topics("#"), (std::vector<std::string>{"other/x", "site/a/temp", "site/b/temp"}));
  EXPECT_EQ(topics("site/a/temp"), (std::vector<std::string>{"site/a/temp"}));
  const auto one = get("/api/v1/retained?filter=other/x").json();
  EXPECT_EQ(one.at("data").as_array().at(0).at("payload").as_string(), "v-other/x");

  const auto deleted =
      http_request(http_, "DELETE", "/api/v1/retained/site/a/temp", {}, {bearer(token)});
  EXPECT_EQ(deleted.status, 204) << deleted.describe();
  EXPECT_EQ(topics("site/#"), (std::vector<std::string>{"site/b/temp"}));
  const auto again =
      http_request(http_, "DELETE", "/api/v1/retained/site/a/temp", {}, {bearer(token)});
  EXPECT_EQ(again.status, 404) << again.describe();
  EXPECT_TRUE(again.is_json_error()) << again.describe();
  EXPECT_EQ(http_request(http_, "DELETE", "/api/v1/retained/other/x").status, 401);
}

TEST_F(ObservabilityAdmin, PostedPublishReachesSubscribers) {
  ASSERT_NO_FATAL_FAILURE(start());
  auto& sub = connect("listener");
  ASSERT_NO_FATAL_FAILURE(subscribe(sub, {{"cmd/+", codec::qos::at_least_once}}));
  const auto r = http_request(http_, "POST", "/api/v1/publish",
                              R"({"topic":"cmd/reboot","payload":"now","qos":1})",
                              {bearer(token)});
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.json().at("delivered").to_number<int>(), 1) << r.describe();
  codec::packet p;
  ASSERT_EQ(sub.receive(p, wait_limit), mqtt_socket::read_result::packet) << sub.error();
  const auto* pub = std::get_if<codec::publish_packet>(&p);
  ASSERT_NE(pub, nullptr);
  EXPECT_EQ(pub->topic, "cmd/reboot");
  EXPECT_EQ(pub->payload, "now");
  EXPECT_EQ(pub->qos, codec::qos::at_least_once);
}

TEST_F(ObservabilityAdmin, SessionsListOfflinePersistentSessions) {
  ASSERT_NO_FATAL_FAILURE(start());
  {
    mqtt_socket s;
    ASSERT_TRUE(s.connect_tcp(broker_->port()));
    codec::connect_packet c;
    c.client_id = "sleeper";
    c.clean_start = false;  // 3.1.1: a persistent session
    ASSERT_TRUE(s.handshake(c));
    ASSERT_NO_FATAL_FAILURE(subscribe(s, {{"wake/sleeper", codec::qos::at_least_once}}));
    codec::disconnect_packet d;
    s.send(codec::packet{d});
  }
  connect("awake");
  EXPECT_TRUE(wait_count("/api/v1/clients", 1));
  const auto r = get("/api/v1/sessions");
  ASSERT_EQ(r.status, 200) << r.describe();
  std::map<std::string, bool> connected;
  const auto sessions = r.json();
  for (const auto& s : sessions.at("data").as_array()) {
    connected[std::string(s.at("clientid").as_string())] = s.at("connected").as_bool();
  }
  EXPECT_EQ(connected, (std::map<std::string, bool>{{"awake", true}, {"sleeper", false}}));
}

// ---------------------------------------------------------------------------
// ringmq ctl

TEST_F(ObservabilityAdmin, CtlListsClientsSessionsSubscriptionsAndRetained) {
  ASSERT_NO_FATAL_FAILURE(start());
  auto& a = connect("ctl-alpha", codec::protocol_version::v5, "alice");
  connect("ctl-beta", codec::protocol_version::v3_1_1);
  ASSERT_NO_FATAL_FAILURE(subscribe(a, {{"metrics/#", codec::qos::exactly_once}}));
  ASSERT_EQ(http_request(http_, "POST", "/api/v1/publish",
                         R"({"topic":"state/door","payload":"open","retain":true})",
                         {bearer(token)})
                .status,
            200);

  const auto clients = ctl({"clients"});
  ASSERT_TRUE(clients.succeeded()) << clients.describe();
  EXPECT_NE(clients.out.find("CLIENT ID"), std::string::npos) << clients.out;
  EXPECT_NE(clients.out.find("ctl-alpha"), std::string::npos) << clients.out;
  EXPECT_NE(clients.out.find("alice"), std::string::npos) << clients.out;
  EXPECT_NE(clients.out.find("ctl-beta"), std::string::npos) << clients.out;
  // Aligned: every line starts its second column at the same place.
  std::set<std::size_t> second_column;
  std::istringstream lines(clients.out);
  for (std::string line; std::getline(lines, line);) {
    const auto gap = line.find("  ");
    const auto at = line.find_first_not_of(' ', gap);
    second_column.insert(at);
  }
  EXPECT_EQ(second_column.size(), 1u) << clients.out;

  const auto paged = ctl({"--limit", "1", "clients"});
  ASSERT_TRUE(paged.succeeded()) << paged.describe();
  EXPECT_NE(paged.out.find("--page 2"), std::string::npos) << paged.out;

  const auto raw = ctl({"--json", "clients", "--like", "alpha"});
  ASSERT_TRUE(raw.succeeded()) << raw.describe();
  boost::system::error_code ec;
  const auto v = json::parse(raw.out, ec);
  ASSERT_FALSE(ec) << raw.out;
  ASSERT_EQ(v.at("data").as_array().size(), 1u) << raw.out;
  EXPECT_EQ(v.at("data").as_array()[0].at("clientid").as_string(), "ctl-alpha");

  const auto one = ctl({"client", "ctl-alpha"});
  ASSERT_TRUE(one.succeeded()) << one.describe();
  EXPECT_NE(one.out.find("metrics/#"), std::string::npos) << one.out;
  EXPECT_NE(one.out.find("5.0"), std::string::npos) << one.out;

  const auto sessions = ctl({"sessions"});
  ASSERT_TRUE(sessions.succeeded()) << sessions.describe();
  EXPECT_NE(sessions.out.find("ctl-beta"), std::string::npos) << sessions.out;

  const auto subs = ctl({"subscriptions"});
  ASSERT_TRUE(subs.succeeded()) << subs.describe();
  EXPECT_NE(subs.out.find("metrics/#"), std::string::npos) << subs.out;

  const auto retained = ctl({"retained", "state/+"});
  ASSERT_TRUE(retained.succeeded()) << retained.describe();
  EXPECT_NE(retained.out.find("state/door"), std::string::npos) << retained.out;
  EXPECT_NE(retained.out.find("open"), std::string::npos) << retained.out;
}

TEST_F(ObservabilityAdmin, CtlKicksWithTheTokenAndFailsClearlyWithout) {
  ASSERT_NO_FATAL_FAILURE(start());
  auto& victim = connect("ctl-victim");

  const auto refused = ctl({"kick", "ctl-victim"});
  EXPECT_EQ(refused.exit_code, 1) << refused.describe();
  EXPECT_NE(refused.err.find("401"), std::string::npos) << refused.describe();
  const auto wrong = ctl({"--token", "nope", "kick", "ctl-victim"});
  EXPECT_EQ(wrong.exit_code, 1) << wrong.describe();
  EXPECT_NE(wrong.err.find("403"), std::string::npos) << wrong.describe();

  // The token from the environment, as the broker itself reads it.
  const auto kicked = ctl({"kick", "ctl-victim"}, {{"RINGMQ_HTTP__ADMIN_TOKEN", token}});
  ASSERT_TRUE(kicked.succeeded()) << kicked.describe();
  codec::packet p;
  ASSERT_EQ(victim.receive(p, wait_limit), mqtt_socket::read_result::packet) << victim.error();
  const auto* d = std::get_if<codec::disconnect_packet>(&p);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->code, codec::reason_code::administrative_action);

  const auto missing = ctl({"--token", token, "kick", "ctl-victim"});
  EXPECT_EQ(missing.exit_code, 1) << missing.describe();
  EXPECT_NE(missing.err.find("404"), std::string::npos) << missing.describe();
  const auto unknown = ctl({"client", "nobody"});
  EXPECT_EQ(unknown.exit_code, 1) << unknown.describe();
}

TEST_F(ObservabilityAdmin, CtlReportsAnUnreachableNodeAndBadUsage) {
  ASSERT_NO_FATAL_FAILURE(start());
  child_options options;
  options.timeout = milliseconds(15'000);
  const auto port = free_tcp_port();
  const auto down = run_child(
      {ringmq_binary(), "ctl", "--url", "http://127.0.0.1:" + std::to_string(port), "clients"},
      options);
  EXPECT_EQ(down.exit_code, 1) << down.describe();
  EXPECT_NE(down.err.find("cannot reach"), std::string::npos) << down.describe();

  const auto usage = ctl({"frobnicate"});
  EXPECT_EQ(usage.exit_code, 2) << usage.describe();
  const auto no_command = ctl({});
  EXPECT_EQ(no_command.exit_code, 2) << no_command.describe();
  const auto help = ctl({"--help"});
  EXPECT_TRUE(help.succeeded()) << help.describe();
  EXPECT_NE(help.out.find("kick"), std::string::npos) << help.describe();
}

// The preStop hook of the Helm chart: a node that is not clustered may stop at
// once, and one that no longer answers has nothing left to wait for.
TEST_F(ObservabilityAdmin, CtlPreStopReturnsAtOnceWhenNothingIsInProgress) {
  ASSERT_NO_FATAL_FAILURE(start());
  const auto alone = ctl({"pre-stop", "--timeout", "5"});
  ASSERT_TRUE(alone.succeeded()) << alone.describe();
  EXPECT_NE(alone.out.find("the node may stop now"), std::string::npos) << alone.describe();

  child_options options;
  options.timeout = milliseconds(15'000);
  const auto port = free_tcp_port();
  const auto gone = run_child({ringmq_binary(), "ctl", "--url",
                               "http://127.0.0.1:" + std::to_string(port), "pre-stop"},
                              options);
  ASSERT_TRUE(gone.succeeded()) << gone.describe();
  EXPECT_NE(gone.out.find("nothing to wait for"), std::string::npos) << gone.describe();

  const auto bad = ctl({"pre-stop", "--timeout", "0"});
  EXPECT_EQ(bad.exit_code, 2) << bad.describe();
}

}  // namespace
}  // namespace ringmq::testing
