#pragma once
// The composition root of one ringmq node: configuration in, every component
// built and wired, run until a signal asks it to stop.

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <atomic>
#include <memory>
#include <stdexcept>
#include <unordered_set>
#include <vector>

#include "broker/auth/file_auth.hpp"
#include "broker/config/config.hpp"
#include "broker/core/broker.hpp"
#include "broker/http/server.hpp"
#include "broker/metrics/metrics.hpp"
#include "cluster/cluster_node.hpp"
#include "storage/store.hpp"
#include "broker/net/connection_tracker.hpp"
#include "broker/net/listener.hpp"
#include "broker/net/worker_pool.hpp"

namespace ringmq::app {

// The node cannot start (unusable data directory, damaged store, ...): the
// message says what and where, for the operator.
class startup_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A file the configuration points to (password file, ACL file) is unreadable
// or wrong: a configuration problem, which ringmq reports like the others
// (exit code 2, the message names the key, the file and the line).
class configuration_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class node {
 public:
  // Opens the store in node.data_dir; throws startup_error when it cannot be used.
  explicit node(const config::config& cfg);
  ~node();

  // Opens listeners and starts the workers; throws on an unusable address.
  void start();
  // Runs the control loop (signals, timers) until shutdown completes. Returns the exit code.
  int run();

 private:
  void on_signal(int signal);
  void reload();
  void load_auth();
  void reload_auth();
  void begin_shutdown();
  void wait_for_connections();
  // Leaving the cluster (POST /api/v1/cluster/leave): the sessions go to the
  // other members, then the clients are disconnected at a bounded rate, then
  // the node departs and stops (exit code 0). Error text, or empty.
  std::string request_leave();
  void resume_leave();
  void leave_step();
  void tick();
  void report_drops(core::time_point now);
  void start_http();
  void answer_livez(http::reply_function reply);
  void watch_store();
  void watch_readiness();
  bool ready() const;

  config::config config_;
  // Declared before control_ so that it is destroyed after it: a pending
  // accept on control_ holds a socket of a worker's io_context, and destroying
  // it once that context is gone is a use after free at exit.
  net::worker_pool workers_;
  boost::asio::io_context control_;  // signals, timers, accepting
  boost::asio::signal_set signals_;
  boost::asio::signal_set reload_signal_;
  boost::asio::steady_timer tick_timer_;
  boost::asio::steady_timer shutdown_timer_;
  // Null when not configured (the broker then allows everything at no cost).
  // Declared before broker_, which points to them.
  std::unique_ptr<auth::file_authenticator> authn_;
  std::unique_ptr<auth::file_authorizer> authz_;
  std::unique_ptr<storage::store> store_;
  std::unique_ptr<core::broker> broker_;
  // After the broker, which it points to (and so destroyed before it).
  std::unique_ptr<cluster::cluster_node> cluster_;
  std::shared_ptr<http::server> http_;
  std::unique_ptr<metrics::node_metrics> metrics_;
  std::atomic<bool> ready_{false};
  bool store_writable_ = true;
  std::string not_ready_reason_ = "starting";  // as last logged
  net::connection_tracker tracker_;
  std::vector<std::shared_ptr<net::listener>> listeners_;
  core::time_point started_;
  core::time_point last_sys_;
  core::time_point shutdown_deadline_;
  // Drops of clients that do not keep up, as far as the log has told (report_drops).
  std::uint64_t reported_slow_consumer_ = 0;
  std::uint64_t reported_queue_full_ = 0;
  core::time_point last_drop_report_{};
  bool shutting_down_ = false;
  // Leaving: set from the HTTP thread, acted on by the control loop.
  enum class leave_phase { none, handing_off, disconnecting, releasing, departing };
  std::atomic<leave_phase> leave_phase_{leave_phase::none};
  boost::asio::steady_timer leave_timer_;
  core::time_point leave_started_{};
  core::time_point leave_reported_{};
  core::time_point departed_at_{};
  core::time_point all_told_at_{};
  // Connections told to go (kept alive by the tracker's snapshot until closed).
  std::unordered_set<const net::connection_handle*> told_;
};

}  // namespace ringmq::app
