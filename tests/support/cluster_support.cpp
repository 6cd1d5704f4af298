#include "tests/support/cluster_support.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <regex>

#include "tests/integration/observability_http.hpp"

namespace ringmq::testing {

namespace {

std::uint16_t port_from(const std::string& log, const std::regex& pattern) {
  std::smatch m;
  if (!std::regex_search(log, m, pattern)) return 0;
  return static_cast<std::uint16_t>(std::stoi(m[1].str()));
}

// Positions of the last "ready" and "not ready" lines of a log.
bool latest_is_ready(const std::string& log) {
  const auto ready = log.rfind(" ready: routes and retained messages synced");
  if (ready == std::string::npos) return false;
  const auto not_ready = log.rfind(" not ready: ");
  return not_ready == std::string::npos || not_ready < ready;
}

std::optional<std::uint64_t> latest_epoch(const std::string& log) {
  const auto at = log.rfind("member set changed: epoch=");
  if (at == std::string::npos) return std::nullopt;
  return std::stoull(log.substr(at + std::string_view("member set changed: epoch=").size()));
}

}  // namespace

child_result run_ctl(cluster_member& node, std::vector<std::string> args,
                     std::chrono::milliseconds timeout) {
  std::vector<std::string> argv{ringmq_binary(), "ctl", "--url",
                                "http://" + node.ip() + ":" + std::to_string(node.http_port()),
                                "--token", "cluster-test-token"};
  argv.insert(argv.end(), args.begin(), args.end());
  child_options options;
  options.timeout = timeout;
  return run_child(argv, options);
}

std::vector<std::string> fast_cluster_timings() {
#if defined(__SANITIZE_THREAD__)
  // ThreadSanitizer slows every node down five to fifteen times: with the
  // fast timings, a heartbeat answered late makes a node find itself cut off
  // from its cluster (and refuse CONNECTs) although nothing failed.
  return {"cluster.heartbeat_interval_ms=300", "cluster.suspect_timeout_ms=2000",
          "cluster.dead_timeout_ms=4500",      "cluster.digest_interval_ms=1000",
          "cluster.dns_interval_ms=500",       "mqtt.sys_interval_s=0",
          "http.admin_token=cluster-test-token"};
#else
  return {"cluster.heartbeat_interval_ms=100", "cluster.suspect_timeout_ms=600",
          "cluster.dead_timeout_ms=1500",      "cluster.digest_interval_ms=1000",
          "cluster.dns_interval_ms=500",       "mqtt.sys_interval_s=0",
          "http.admin_token=cluster-test-token"};
#endif
}

cluster_member::cluster_member(std::string id, std::string ip, std::string data_dir,
                               std::vector<std::string> overrides)
    : id_(std::move(id)),
      ip_(std::move(ip)),
      data_dir_(std::move(data_dir)),
      overrides_(std::move(overrides)) {
  std::filesystem::create_directories(data_dir_);
}

void cluster_member::run_as(unsigned uid) {
  uid_ = uid;
  namespace fs = std::filesystem;
  std::error_code ignored;
  ::chown(data_dir_.c_str(), uid, uid);
  for (const auto& entry : fs::recursive_directory_iterator(data_dir_, ignored)) {
    ::chown(entry.path().c_str(), uid, uid);
  }
}

cluster_member::~cluster_member() {
  if (process_) process_.reset();  // kills what still runs
}

bool cluster_member::start(const std::vector<std::string>& seeds, milliseconds timeout) {
  if (process_) {
    earlier_logs_ += process_->describe() + "\n";
    process_.reset();
  }
  std::vector<std::string> sets{
      "node.id=" + id_,
      "node.data_dir=" + data_dir_,
      "listeners[0].bind=" + ip_ + ":" + std::to_string(mqtt_port_),
      "http.bind=" + ip_ + ":" + std::to_string(http_port_),
      "cluster.bind=" + ip_ + ":" + std::to_string(cluster_port_),
  };
  if (!seeds.empty()) {
    std::string list = "cluster.seeds=[";
    for (std::size_t i = 0; i < seeds.size(); ++i) list += (i ? "," : "") + seeds[i];
    sets.push_back(list + "]");
  }
  for (const auto& t : fast_cluster_timings()) sets.push_back(t);
  sets.insert(sets.end(), overrides_.begin(), overrides_.end());
  std::vector<std::string> argv;
  if (uid_) {
    const auto id = std::to_string(*uid_);
    argv = {"setpriv", "--reuid=" + id, "--regid=" + id, "--clear-groups"};
  }
  argv.push_back(ringmq_binary());
  for (auto& s : sets) {
    argv.push_back("--set");
    argv.push_back(std::move(s));
  }
  ended_by_test_ = false;
  process_ = std::make_unique<background_process>(std::move(argv));
  if (!process_->started()) return false;
  if (!process_->wait_for_err(" started: ", timeout)) return false;
  const auto log = process_->err();
  static const std::regex mqtt(R"(listening: listener=\S+ address=\S+:(\d+))");
  static const std::regex http(R"(http listening: address=\S+:(\d+))");
  static const std::regex peer(R"(peer server listening: address=\S+ advertised=\S+:(\d+))");
  mqtt_port_ = port_from(log, mqtt);
  http_port_ = port_from(log, http);
  cluster_port_ = port_from(log, peer);
  return mqtt_port_ && http_port_ && cluster_port_;
}

bool cluster_member::wait_ready(milliseconds timeout) {
  if (!process_) return false;
  return process_->wait_for([](const std::string&, const std::string& err) {
    return latest_is_ready(err);
  }, timeout) && latest_is_ready(process_->err());
}

bool cluster_member::wait_epoch(std::uint64_t epoch, milliseconds timeout) {
  if (!process_) return false;
  const auto reached = [epoch](const std::string& err) {
    const auto e = latest_epoch(err);
    // A node's own first join is not logged as a change: epoch 1 is its start.
    return e ? *e == epoch : epoch == 1;
  };
  return process_->wait_for([&](const std::string&, const std::string& err) {
    return reached(err);
  }, timeout) && reached(process_->err());
}

bool cluster_member::exited_by_itself() const {
  return process_ && !running() && !ended_by_test_;
}

void cluster_member::kill() {
  ended_by_test_ = true;
  if (!process_ || !running()) return;
  process_->signal(SIGKILL);
  process_->wait_exit(milliseconds(10'000));
}

void cluster_member::pause() {
  if (process_) process_->signal(SIGSTOP);
}

void cluster_member::resume() {
  if (process_) process_->signal(SIGCONT);
}

std::optional<exit_status> cluster_member::stop(milliseconds timeout) {
  ended_by_test_ = true;
  if (!process_) return std::nullopt;
  if (running()) process_->signal(SIGTERM);
  return process_->wait_exit(timeout);
}

std::optional<exit_status> cluster_member::wait_exit(milliseconds timeout) {
  ended_by_test_ = true;
  if (!process_) return std::nullopt;
  return process_->wait_exit(timeout);
}

bool cluster_member::running() const { return process_ && !process_->status(); }

std::string cluster_member::log() const { return process_ ? process_->err() : std::string(); }

bool cluster_member::wait_for_log(std::string_view text, milliseconds timeout) {
  return process_ && process_->wait_for_err(text, timeout);
}

bool cluster_member::wait_for_log_count(std::string_view text, std::size_t count,
                                        milliseconds timeout) {
  return process_ && process_->wait_for([&](const std::string&, const std::string& err) {
    return count_of(err, text) >= count;
  }, timeout);
}

std::string cluster_member::describe() const {
  return "---- " + id_ + " (" + ip_ + ")\n" + earlier_logs_ +
         (process_ ? process_->describe() : std::string("not started\n"));
}

boost::json::value cluster_member::get_json(const std::string& target) const {
  const auto reply = http_request_to(ip_, http_port_, "GET", target);
  if (reply.status != 200) return nullptr;
  return reply.json();
}

test_cluster::test_cluster(int size, std::vector<std::string> overrides, cluster_options options)
    : overrides_(std::move(overrides)) {
  const auto base = std::filesystem::temp_directory_path() / "ringmq-cluster-XXXXXX";
  std::string pattern = base.string();
  if (::mkdtemp(pattern.data()) != nullptr) root_ = pattern;
  // Nodes of other users reach their own directories through it.
  if (options.separate_users) ::chmod(root_.c_str(), 0755);
  // Each test process has its own /24 of loopback addresses, so that tests
  // running at once never meet.
  const auto pid = static_cast<unsigned>(::getpid());
  prefix_ = "127." + std::to_string(1 + (pid / 250) % 250) + "." + std::to_string(pid % 250) + ".";
  for (int i = 1; i <= size; ++i) {
    members_.push_back(std::make_unique<cluster_member>(
        "n" + std::to_string(i), ip_of(i), root_ + "/n" + std::to_string(i), overrides_));
    if (options.separate_users) members_.back()->run_as(40000 + static_cast<unsigned>(i));
  }
  if (size == 0) return;
  if (!node(1).start()) return;
  const std::vector<std::string> seeds{node(1).cluster_address()};
  for (int i = 2; i <= size; ++i) {
    if (!node(i).start(seeds)) return;
  }
  started_ = wait_converged(static_cast<std::uint64_t>(size));
}

test_cluster::~test_cluster() {
  for (auto& m : members_) {
    if (m->exited_by_itself()) {
      ADD_FAILURE() << m->id() << " exited while the test ran\n" << m->describe();
    }
    if (!m->running()) continue;
    const auto status = m->stop();
    if (!status || !status->clean()) {
      ADD_FAILURE() << m->id() << " did not shut down cleanly on SIGTERM\n" << m->describe();
    }
  }
  members_.clear();
  if (!root_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }
}

std::string test_cluster::ip_of(int i) const { return prefix_ + std::to_string(i); }

cluster_member* test_cluster::add(std::vector<std::string> overrides) {
  const int i = size() + 1;
  auto all = overrides_;
  all.insert(all.end(), overrides.begin(), overrides.end());
  members_.push_back(std::make_unique<cluster_member>(
      "n" + std::to_string(i), ip_of(i), root_ + "/n" + std::to_string(i), all));
  auto& m = *members_.back();
  if (!m.start({node(1).cluster_address()})) return nullptr;
  return &m;
}

bool test_cluster::converged(std::uint64_t epoch) const {
  for (const auto& m : members_) {
    if (!m->running()) continue;
    const auto v = m->get_json("/api/v1/cluster");
    if (!v.is_object()) return false;
    const auto& o = v.as_object();
    if (!o.contains("ready") || !o.at("ready").as_bool()) return false;
    if (!o.at("epoch").is_number() || o.at("epoch").to_number<std::uint64_t>() != epoch) {
      return false;
    }
    for (const auto& other : members_) {
      if (other.get() == m.get() || !other->running()) continue;
      bool seen = false;
      for (const auto& p : o.at("peers").as_array()) {
        const auto& peer = p.as_object();
        if (peer.at("id").as_string() != other->id()) continue;
        seen = peer.at("state").as_string() == "alive" && peer.at("stream").as_string() == "open" &&
               peer.at("routes_synced").as_bool() && peer.at("retained_synced").as_bool();
      }
      if (!seen) return false;
    }
  }
  return true;
}

bool test_cluster::wait_converged(std::uint64_t epoch, milliseconds timeout) {
  // The cluster's own view is the authority here: asked every 20 ms until it
  // agrees everywhere, or the deadline passes.
  const auto deadline = steady::now() + timeout;
  while (steady::now() < deadline) {
    if (converged(epoch)) return true;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return converged(epoch);
}

std::string test_cluster::describe() const {
  std::string out;
  for (const auto& m : members_) out += m->describe();
  return out;
}

}  // namespace ringmq::testing
