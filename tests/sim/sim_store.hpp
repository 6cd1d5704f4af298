#pragma once
// A store for the simulations: ordered tables in memory, with a disk behind
// them. A write is readable at once and durable when the simulation says
// (in the order written); a crash keeps what the disk has, and, unless it is
// a power loss, also what was written but not yet durable (the operating
// system had it). No threads: completions run when the simulation advances.

#include <array>
#include <deque>
#include <functional>
#include <map>
#include <string>

#include "storage/store.hpp"

namespace ringmq::sim {

using table = std::map<std::string, std::string, std::less<>>;
using tables = std::array<table, storage::column_count>;

void apply_batch(tables& t, const storage::write_batch& b);

class sim_store final : public storage::store {
 public:
  // `completion`: the tick at which a write made now becomes durable (never
  // earlier than the one before it).
  sim_store(tables& disk, std::function<int()> completion);

  storage::commit_seq append(storage::write_batch&& batch) override;
  void when_durable(storage::commit_seq seq,
                    std::function<void(std::error_code)> done) override;
  storage::commit_seq last_appended() const override { return last_; }
  std::error_code flush() override;
  bool writable() const override { return true; }
  std::error_code scan(
      storage::column c, std::string_view prefix,
      const std::function<bool(std::string_view, std::string_view)>& visit) override;
  std::optional<std::string> get(storage::column c, std::string_view key) override;
  storage::store_stats stats() const override { return {}; }

  // --- the simulation's side
  // Writes due by `tick` become durable; their waiters run.
  void advance(int tick);
  // The process dies: with `power_loss`, what was not durable is gone;
  // otherwise the disk gets it too. Waiters are dropped.
  void crash(bool power_loss);

 private:
  struct pending {
    storage::commit_seq seq;
    int due;
    storage::write_batch batch;
  };
  void make_durable(storage::commit_seq upto);

  tables& disk_;
  tables live_;
  std::function<int()> completion_;
  std::deque<pending> pending_;
  std::multimap<storage::commit_seq, std::function<void(std::error_code)>> waiters_;
  storage::commit_seq last_ = 0;
  storage::commit_seq durable_ = 0;
};

}  // namespace ringmq::sim
