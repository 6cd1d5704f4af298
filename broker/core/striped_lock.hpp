#pragma once
// A reader-writer lock whose readers never share a cache line: each thread
// reads under its own stripe's mutex, a writer takes every stripe. Matching a
// PUBLISH (read, constant) therefore never contends with matching on another
// worker; SUBSCRIBE/UNSUBSCRIBE (write, rare) pay for all stripes.

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>

namespace ringmq::core {

class striped_lock {
 public:
  explicit striped_lock(std::size_t stripes) : count_(stripes ? stripes : 1),
                                               stripes_(new stripe[count_]) {}

  class read_guard {
   public:
    explicit read_guard(striped_lock& l) : m_(l.stripes_[l.my_stripe()].mutex) { m_.lock(); }
    ~read_guard() { m_.unlock(); }
    read_guard(const read_guard&) = delete;
    read_guard& operator=(const read_guard&) = delete;

   private:
    std::mutex& m_;
  };

  class write_guard {
   public:
    explicit write_guard(striped_lock& l) : l_(l) {
      for (std::size_t i = 0; i < l_.count_; ++i) l_.stripes_[i].mutex.lock();
    }
    ~write_guard() {
      for (std::size_t i = l_.count_; i-- > 0;) l_.stripes_[i].mutex.unlock();
    }
    write_guard(const write_guard&) = delete;
    write_guard& operator=(const write_guard&) = delete;

   private:
    striped_lock& l_;
  };

 private:
  struct alignas(64) stripe {
    std::mutex mutex;
  };

  std::size_t my_stripe() const noexcept {
    static std::atomic<std::size_t> next_thread{0};
    thread_local const std::size_t index = next_thread.fetch_add(1, std::memory_order_relaxed);
    return index % count_;
  }

  std::size_t count_;
  std::unique_ptr<stripe[]> stripes_;
};

}  // namespace ringmq::core
