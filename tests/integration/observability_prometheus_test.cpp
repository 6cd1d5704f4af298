// ringmq scraped by a real Prometheus server (Debian's prometheus) on
// loopback: messages published with mosquitto_pub show up in Prometheus' query
// API, the target is up, the shipped alert rules load, and the exposition
// passes `promtool check metrics`.

#include <gtest/gtest.h>

#include <array>
#include <boost/json/src.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <thread>

#include "tests/integration/child_process.hpp"
#include "tests/integration/observability_http.hpp"
#include "tests/support/broker_process.hpp"

namespace ringmq::testing {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

// Prometheus starts in about a second and scrapes every second here; the
// deadline only matters when something is broken.
constexpr milliseconds prometheus_deadline{30'000};
constexpr milliseconds client_timeout{10'000};
constexpr int messages_per_qos = 10;

class temp_dir {
 public:
  temp_dir() {
    std::string pattern = (fs::temp_directory_path() / "ringmq-prom-XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ignored;
    if (!path_.empty()) fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

class ObservabilityPrometheus : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* program : {"prometheus", "promtool", "mosquitto_pub", "curl"}) {
      ASSERT_TRUE(program_available(program))
          << program << " is missing: install the Debian packages prometheus, "
                        "mosquitto-clients and curl (./dev setup)";
    }
    broker_ = std::make_unique<broker_process>(
        std::vector<std::string>{"http.bind=127.0.0.1:0", "mqtt.sys_interval_s=0"});
    ASSERT_TRUE(broker_->ready()) << broker_->describe();
    http_port_ = http_port_of(*broker_);
    ASSERT_NE(http_port_, 0) << broker_->describe();
  }

  void TearDown() override {
    prometheus_.reset();
    if (broker_ && broker_->ready()) {
      const auto status = broker_->stop();
      EXPECT_TRUE(status && status->clean()) << broker_->describe();
    }
  }

  // Starts Prometheus scraping the broker every second, with the shipped
  // alert rules loaded; returns once it serves queries.
  void start_prometheus() {
    ASSERT_FALSE(dir_.path().empty());
    prometheus_port_ = free_tcp_port();
    ASSERT_NE(prometheus_port_, 0);
    const auto config = dir_.path() / "prometheus.yml";
    {
      std::ofstream out(config);
      out << "global:\n"
             "  scrape_interval: 1s\n"
             "  scrape_timeout: 1s\n"
             "  evaluation_interval: 1s\n"
             "rule_files:\n"
             "  - " << RINGMQ_ALERT_RULES << "\n"
             "scrape_configs:\n"
             "  - job_name: ringmq\n"
             "    static_configs:\n"
             "      - targets: ['127.0.0.1:" << http_port_ << "']\n";
    }
    prometheus_ = std::make_unique<background_process>(std::vector<std::string>{
        "prometheus", "--config.file=" + config.string(),
        "--storage.tsdb.path=" + (dir_.path() / "data").string(),
        "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port_),
        "--log.level=warn"});
    ASSERT_TRUE(prometheus_->started()) << prometheus_->start_error();
    // Ready once /-/ready answers 200 (it answers 503 while the TSDB opens).
    const auto deadline = steady::now() + prometheus_deadline;
    while (steady::now() < deadline && !prometheus_->status()) {
      if (http_request(prometheus_port_, "GET", "/-/ready").status == 200) return;
      std::this_thread::sleep_for(milliseconds(100));
    }
    FAIL() << "Prometheus did not become ready\n" << prometheus_->describe();
  }

  // The value of an instant query that returns one sample; nullopt if none.
  std::optional<double> query(const std::string& promql) {
    const auto r =
        http_request(prometheus_port_, "GET", "/api/v1/query?query=" + url_encode(promql));
    last_answer_ = r.describe();
    if (r.status != 200) return std::nullopt;
    const auto v = r.json();
    if (!v.is_object()) return std::nullopt;
    const auto* data = v.as_object().if_contains("data");
    if (!data || !data->is_object()) return std::nullopt;
    const auto* result = data->as_object().if_contains("result");
    if (!result || !result->is_array() || result->as_array().size() != 1) return std::nullopt;
    const auto& value = result->as_array()[0].as_object().at("value").as_array();
    return std::strtod(std::string(value.at(1).as_string()).c_str(), nullptr);
  }

  // Polls `promql` until `wanted` holds for its value, or the deadline passes.
  std::optional<double> wait_for_value(const std::string& promql,
                                       const std::function<bool(double)>& wanted) {
    const auto deadline = steady::now() + prometheus_deadline;
    std::optional<double> last;
    while (steady::now() < deadline) {
      last = query(promql);
      if (last && wanted(*last)) return last;
      std::this_thread::sleep_for(milliseconds(200));
    }
    return last;
  }

  void publish(int qos, int count) {
    child_options options;
    options.timeout = client_timeout;
    const auto r = run_child({"mosquitto_pub", "-h", "127.0.0.1", "-p", broker_->port_string(),
                              "-i", "prom-pub-" + std::to_string(qos), "-q",
                              std::to_string(qos), "-t", "prom/test", "-m", "reading",
                              "--repeat", std::to_string(count)},
                             options);
    ASSERT_TRUE(r.succeeded()) << r.describe();
  }

  std::unique_ptr<broker_process> broker_;
  std::uint16_t http_port_ = 0;
  temp_dir dir_;
  std::unique_ptr<background_process> prometheus_;
  std::uint16_t prometheus_port_ = 0;
  std::string last_answer_;
};

TEST_F(ObservabilityPrometheus, ScrapedMessageCountsMatchWhatWasPublished) {
  ASSERT_NO_FATAL_FAILURE(start_prometheus());
  const std::string up = R"(up{job="ringmq"})";
  const auto is_up = wait_for_value(up, [](double v) { return v == 1; });
  ASSERT_TRUE(is_up && *is_up == 1) << "target never up; last answer:\n"
                                    << last_answer_ << "\n" << prometheus_->describe();

  const std::string total = R"(sum(ringmq_messages_received_total{job="ringmq"}))";
  const auto before = wait_for_value(total, [](double) { return true; });
  ASSERT_TRUE(before) << last_answer_;
  std::array<double, 3> before_qos{};
  for (int q = 0; q < 3; ++q) {
    const auto v = query(R"(ringmq_messages_received_total{job="ringmq", qos=")" +
                         std::to_string(q) + "\"}");
    ASSERT_TRUE(v) << last_answer_;
    before_qos[q] = *v;
  }

  for (int q = 0; q < 3; ++q) ASSERT_NO_FATAL_FAILURE(publish(q, messages_per_qos));

  const double expected = *before + 3 * messages_per_qos;
  const auto after = wait_for_value(total, [&](double v) { return v >= expected; });
  ASSERT_TRUE(after) << last_answer_;
  EXPECT_EQ(*after, expected) << last_answer_;
  for (int q = 0; q < 3; ++q) {
    const auto v = query(R"(ringmq_messages_received_total{job="ringmq", qos=")" +
                         std::to_string(q) + "\"}");
    ASSERT_TRUE(v) << last_answer_;
    EXPECT_EQ(*v - before_qos[q], messages_per_qos) << "qos " << q;
  }
  // Nobody subscribes to prom/test: every message was dropped for that reason.
  const auto dropped =
      query(R"(ringmq_messages_dropped_total{job="ringmq", reason="no_subscribers"})");
  ASSERT_TRUE(dropped) << last_answer_;
  EXPECT_GE(*dropped, 3 * messages_per_qos);
  EXPECT_EQ(query(R"(ringmq_ready{job="ringmq"})"), 1.0) << last_answer_;
  EXPECT_EQ(query(R"(up{job="ringmq"})"), 1.0) << last_answer_;

  // The shipped alert rules loaded, evaluate without error, and none fires
  // on a healthy node.
  const auto rules = http_request(prometheus_port_, "GET", "/api/v1/rules");
  ASSERT_EQ(rules.status, 200) << rules.describe();
  const auto rules_json = rules.json();
  ASSERT_TRUE(rules_json.is_object()) << rules.describe();
  std::set<std::string> alerts;
  for (const auto& group : rules_json.at("data").at("groups").as_array()) {
    for (const auto& rule : group.at("rules").as_array()) {
      EXPECT_NE(rule.at("health").as_string(), "err") << json::serialize(rule);
      if (rule.at("type").as_string() == "alerting") {
        alerts.emplace(rule.at("name").as_string());
        EXPECT_EQ(rule.at("state").as_string(), "inactive") << json::serialize(rule);
      }
    }
  }
  for (const auto* name : {"RingmqNodeDown", "RingmqNotReady", "RingmqConnectionsNearLimit",
                           "RingmqDroppedMessages", "RingmqAuthFailuresSpike",
                           "RingmqStoreErrors", "RingmqQueueGrowth"}) {
    EXPECT_TRUE(alerts.contains(name)) << name << " not loaded:\n" << rules.describe();
  }
}

TEST_F(ObservabilityPrometheus, ExpositionPassesPromtoolCheckMetrics) {
  // Some traffic first, so that counters and the store histogram are not all zero.
  ASSERT_NO_FATAL_FAILURE(publish(1, 5));
  ASSERT_NO_FATAL_FAILURE(publish(2, 5));
  child_options options;
  options.timeout = client_timeout;
  const auto r = run_child(
      {"bash", "-c",
       "set -o pipefail; curl -sSf http://127.0.0.1:" + std::to_string(http_port_) +
           "/metrics | promtool check metrics"},
      options);
  EXPECT_TRUE(r.succeeded()) << r.describe();
  EXPECT_EQ(r.out, "") << r.describe();
  EXPECT_EQ(r.err, "") << r.describe();
}

TEST_F(ObservabilityPrometheus, MetricsEndpointServesTheTextFormat) {
  const auto r = http_request(http_port_, "GET", "/metrics");
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_NE(r.headers.find("text/plain; version=0.0.4"), std::string::npos) << r.headers;
  for (const char* name :
       {"ringmq_connections", "ringmq_sessions", "ringmq_subscriptions",
        "ringmq_retained_messages", "ringmq_messages_received_total{qos=\"0\"}",
        "ringmq_messages_sent_total{qos=\"2\"}", "ringmq_messages_dropped_total{reason=",
        "ringmq_bytes_received_total", "ringmq_bytes_sent_total", "ringmq_auth_failures_total",
        "ringmq_store_write_seconds_bucket{le=\"+Inf\"}", "ringmq_build_info{",
        "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
        "process_start_time_seconds", "ringmq_ready 1"}) {
    EXPECT_NE(r.body.find(name), std::string::npos) << name << " missing from\n" << r.body;
  }
}

}  // namespace
}  // namespace ringmq::testing
