#pragma once
// The composition root of one ringmq node: configuration in, every component
// built and wired, run until a signal asks it to stop.

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <vector>

#include "broker/config/config.hpp"
#include "broker/core/broker.hpp"
#include "broker/net/connection_tracker.hpp"
#include "broker/net/tcp_listener.hpp"
#include "broker/net/worker_pool.hpp"

namespace ringmq::app {

class node {
 public:
  explicit node(const config::config& cfg);
  ~node();

  // Opens listeners and starts the workers; throws on an unusable address.
  void start();
  // Runs the control loop (signals, timers) until shutdown completes. Returns the exit code.
  int run();

 private:
  void on_signal(int signal);
  void begin_shutdown();
  void wait_for_connections();
  void tick();

  config::config config_;
  boost::asio::io_context control_;  // signals, timers, accepting
  boost::asio::signal_set signals_;
  boost::asio::steady_timer tick_timer_;
  boost::asio::steady_timer shutdown_timer_;
  net::worker_pool workers_;
  std::unique_ptr<core::broker> broker_;
  net::connection_tracker tracker_;
  std::vector<std::shared_ptr<net::tcp_listener>> listeners_;
  core::time_point started_;
  core::time_point last_sys_;
  core::time_point shutdown_deadline_;
  bool shutting_down_ = false;
};

}  // namespace ringmq::app
