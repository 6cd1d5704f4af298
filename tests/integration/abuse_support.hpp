#pragma once
// Support for the abuse tests:
//  - rss_sampler: the broker's resident memory sampled on a thread, for the
//    largest value seen while something is being done to it;
//  - limit_asan_quarantine(): keeps those memory figures meaningful in the
//    AddressSanitizer build.

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include "tests/support/broker_process.hpp"

namespace ringmq::testing {

// Under AddressSanitizer freed memory waits in a quarantine (256 MB by
// default) instead of being reused, so a broker that frees as much as it
// allocates would still grow by everything that passed through it. A small
// quarantine, inherited by the brokers started afterwards, keeps memory
// bounds checkable there too. Nothing to do in other builds.
#if defined(__SANITIZE_ADDRESS__)
#define RINGMQ_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RINGMQ_TEST_ASAN 1
#endif
#endif

inline void limit_asan_quarantine() {
#ifndef RINGMQ_TEST_ASAN
  return;
#endif
  const char* current = std::getenv("ASAN_OPTIONS");
  std::string options = current ? current : "";
  if (options.find("quarantine_size_mb") != std::string::npos) return;
  options += (options.empty() ? "" : ":") + std::string("quarantine_size_mb=1");
  ::setenv("ASAN_OPTIONS", options.c_str(), 1);
}

// The broker's VmRSS sampled every `period` until stopped; the largest value seen.
class rss_sampler {
 public:
  explicit rss_sampler(const broker_process& broker, milliseconds period = milliseconds(20))
      : broker_(broker), period_(period) {
    thread_ = std::thread([this] {
      std::unique_lock lock(mutex_);
      do {
        max_kib_ = std::max(max_kib_, broker_.resident_kib());
      } while (!stopped_.wait_for(lock, period_, [&] { return stop_; }));
    });
  }
  ~rss_sampler() { stop(); }

  // Stops sampling; the largest VmRSS seen, in KiB.
  std::uint64_t stop() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    stopped_.notify_all();
    if (thread_.joinable()) thread_.join();
    std::lock_guard lock(mutex_);
    max_kib_ = std::max(max_kib_, broker_.resident_kib());
    return max_kib_;
  }

 private:
  const broker_process& broker_;
  milliseconds period_;
  std::mutex mutex_;
  std::condition_variable stopped_;
  bool stop_ = false;
  std::uint64_t max_kib_ = 0;
  std::thread thread_;
};

}  // namespace ringmq::testing
