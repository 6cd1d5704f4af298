#include <map>
#include <mutex>

#include "storage/store.hpp"

namespace ringmq::storage {

const char* column_name(column c) noexcept {
  switch (c) {
    case column::meta: return "meta";
    case column::sessions: return "sessions";
    case column::subscriptions: return "subscriptions";
    case column::queue: return "queue";
    case column::inflight: return "inflight";
    case column::inbound_qos2: return "inbound_qos2";
    case column::wills: return "wills";
    case column::retained: return "retained";
    case column::replication: return "replication";
    case column::dedup: return "dedup";
    case column::count_: break;
  }
  return "unknown";
}

namespace {

// Applies every batch at once under a lock; "durable" as soon as applied.
class memory_store final : public store {
 public:
  commit_seq append(write_batch&& batch) override {
    std::lock_guard lock(mutex_);
    for (const auto& op : batch.operations()) {
      auto& table = tables_[static_cast<std::size_t>(op.col)];
      switch (op.what) {
        case write_batch::operation::kind::put:
          table[op.key] = op.value;
          break;
        case write_batch::operation::kind::erase:
          table.erase(op.key);
          break;
        case write_batch::operation::kind::erase_prefix: {
          auto it = table.lower_bound(op.key);
          while (it != table.end() && std::string_view(it->first).starts_with(op.key)) {
            it = table.erase(it);
          }
          break;
        }
      }
    }
    ++stats_.batches;
    ++stats_.commits;
    return ++seq_;
  }

  void when_durable(commit_seq, std::function<void(std::error_code)> done) override { done({}); }

  commit_seq last_appended() const override {
    std::lock_guard lock(mutex_);
    return seq_;
  }

  std::error_code flush() override { return {}; }
  bool writable() const override { return true; }

  std::error_code scan(
      column c, std::string_view prefix,
      const std::function<bool(std::string_view, std::string_view)>& visit) override {
    std::lock_guard lock(mutex_);
    const auto& table = tables_[static_cast<std::size_t>(c)];
    for (auto it = table.lower_bound(std::string(prefix));
         it != table.end() && std::string_view(it->first).starts_with(prefix); ++it) {
      if (!visit(it->first, it->second)) break;
    }
    return {};
  }

  std::optional<std::string> get(column c, std::string_view key) override {
    std::lock_guard lock(mutex_);
    const auto& table = tables_[static_cast<std::size_t>(c)];
    auto it = table.find(std::string(key));
    if (it == table.end()) return std::nullopt;
    return it->second;
  }

  store_stats stats() const override {
    std::lock_guard lock(mutex_);
    return stats_;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::string> tables_[column_count];
  commit_seq seq_ = 0;
  store_stats stats_;
};

}  // namespace

std::unique_ptr<store> make_memory_store() { return std::make_unique<memory_store>(); }

}  // namespace ringmq::storage
