#pragma once
// N workers, each an io_context run by one thread. A connection and its timers
// live on one worker for their whole life, so nothing inside a worker needs a
// lock or a strand.

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

namespace ringmq::net {

class worker_pool {
 public:
  explicit worker_pool(std::size_t workers);
  ~worker_pool();
  worker_pool(const worker_pool&) = delete;
  worker_pool& operator=(const worker_pool&) = delete;

  // Starts one thread per worker; `on_start(index)` runs first on each thread.
  void start(std::function<void(std::size_t)> on_start = {});
  // Lets the loops finish what is queued and joins the threads.
  void stop();
  // Stops the loops where they are (pending work is abandoned) and joins.
  void halt();

  std::size_t size() const noexcept { return contexts_.size(); }
  boost::asio::io_context& context(std::size_t i) { return *contexts_[i]; }
  // Round-robin choice for new connections.
  boost::asio::io_context& next();
  // The worker index of the calling thread, or -1 outside the pool.
  static int current() noexcept;

 private:
  using work_guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<work_guard> guards_;
  std::vector<std::thread> threads_;
  std::size_t next_ = 0;
};

}  // namespace ringmq::net
