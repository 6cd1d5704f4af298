#include "tests/sim/sim_store.hpp"

namespace ringmq::sim {

void apply_batch(tables& t, const storage::write_batch& b) {
  using kind = storage::write_batch::operation::kind;
  for (const auto& op : b.operations()) {
    auto& col = t[static_cast<std::size_t>(op.col)];
    switch (op.what) {
      case kind::put: col[op.key] = op.value; break;
      case kind::erase: col.erase(op.key); break;
      case kind::erase_prefix: {
        auto it = col.lower_bound(op.key);
        while (it != col.end() && it->first.starts_with(op.key)) it = col.erase(it);
        break;
      }
    }
  }
}

sim_store::sim_store(tables& disk, std::function<int()> completion)
    : disk_(disk), live_(disk), completion_(std::move(completion)) {}

storage::commit_seq sim_store::append(storage::write_batch&& batch) {
  apply_batch(live_, batch);
  pending_.push_back({++last_, completion_(), std::move(batch)});
  return last_;
}

void sim_store::when_durable(storage::commit_seq seq, std::function<void(std::error_code)> done) {
  if (seq <= durable_) {
    done({});
    return;
  }
  waiters_.emplace(seq, std::move(done));
}

std::error_code sim_store::flush() {
  make_durable(last_);
  return {};
}

std::error_code sim_store::scan(
    storage::column c, std::string_view prefix,
    const std::function<bool(std::string_view, std::string_view)>& visit) {
  const auto& col = live_[static_cast<std::size_t>(c)];
  for (auto it = col.lower_bound(prefix); it != col.end() && it->first.starts_with(prefix); ++it) {
    if (!visit(it->first, it->second)) break;
  }
  return {};
}

std::optional<std::string> sim_store::get(storage::column c, std::string_view key) {
  const auto& col = live_[static_cast<std::size_t>(c)];
  auto it = col.find(key);
  if (it == col.end()) return std::nullopt;
  return it->second;
}

void sim_store::advance(int tick) {
  storage::commit_seq upto = durable_;
  for (const auto& p : pending_) {
    if (p.due > tick) break;
    upto = p.seq;
  }
  if (upto > durable_) make_durable(upto);
}

void sim_store::make_durable(storage::commit_seq upto) {
  while (!pending_.empty() && pending_.front().seq <= upto) {
    apply_batch(disk_, pending_.front().batch);
    pending_.pop_front();
  }
  durable_ = std::max(durable_, upto);
  // Waiters may append (and wait) again: take the ones due first.
  std::vector<std::function<void(std::error_code)>> due;
  for (auto it = waiters_.begin(); it != waiters_.end() && it->first <= durable_;) {
    due.push_back(std::move(it->second));
    it = waiters_.erase(it);
  }
  for (auto& d : due) d({});
}

void sim_store::crash(bool power_loss) {
  if (!power_loss) {
    for (const auto& p : pending_) apply_batch(disk_, p.batch);
  }
  pending_.clear();
  waiters_.clear();
}

}  // namespace ringmq::sim
