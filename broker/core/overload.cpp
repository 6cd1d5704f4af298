#include "broker/core/overload.hpp"

namespace ringmq::core {
namespace {

// Per thread: the PUBLISH being handled and its deliveries run on one thread.
thread_local bool overloaded = false;

}  // namespace

void signal_qos0_overload() noexcept { overloaded = true; }

bool take_qos0_overload() noexcept {
  const bool was = overloaded;
  overloaded = false;
  return was;
}

}  // namespace ringmq::core
