#include "broker/net/worker_pool.hpp"

#include <pthread.h>

#include <string>

namespace ringmq::net {

namespace {
thread_local int current_worker = -1;
}

worker_pool::worker_pool(std::size_t workers) {
  if (workers == 0) workers = std::max(1u, std::thread::hardware_concurrency());
  for (std::size_t i = 0; i < workers; ++i) {
    // Concurrency hint 1: each context is run by exactly one thread.
    contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
  }
}

worker_pool::~worker_pool() { stop(); }

void worker_pool::start(std::function<void(std::size_t)> on_start) {
  for (std::size_t i = 0; i < contexts_.size(); ++i) {
    guards_.emplace_back(contexts_[i]->get_executor());
    threads_.emplace_back([this, i, on_start] {
      current_worker = static_cast<int>(i);
      const std::string name = "worker-" + std::to_string(i);
      pthread_setname_np(pthread_self(), name.c_str());
      if (on_start) on_start(i);
      contexts_[i]->run();
    });
  }
}

void worker_pool::stop() {
  for (auto& g : guards_) g.reset();
  guards_.clear();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void worker_pool::halt() {
  for (auto& c : contexts_) c->stop();
  stop();
}

boost::asio::io_context& worker_pool::next() {
  auto& ctx = *contexts_[next_];
  next_ = (next_ + 1) % contexts_.size();
  return ctx;
}

int worker_pool::current() noexcept { return current_worker; }

}  // namespace ringmq::net
