#include "broker/core/session_keeper.hpp"

namespace ringmq::core {

void keeper_wait::add() {
  std::lock_guard lock(mutex_);
  ++pending_;
}

void keeper_wait::finish(bool committed) {
  std::vector<std::function<void(bool)>> then;
  bool ok = false;
  {
    std::lock_guard lock(mutex_);
    if (!committed) failed_ = true;
    if (pending_ > 0) --pending_;
    if (pending_ > 0 || then_.empty()) return;
    then.swap(then_);
    ok = !failed_;
  }
  for (auto& t : then) t(ok);
}

void keeper_wait::on_done(std::function<void(bool)> then) {
  bool ok = false;
  {
    std::lock_guard lock(mutex_);
    if (pending_ > 0) {
      then_.push_back(std::move(then));
      return;
    }
    ok = !failed_;
  }
  then(ok);
}

}  // namespace ringmq::core
