// Session logs kept in a real RocksDB in a temporary directory: what a
// restart reads back is the log as last persisted, through appends,
// compaction and whole replacement, and only the difference is written.

#include "cluster/replication/log_storage.hpp"

#include <gtest/gtest.h>

#include <future>

#include "storage/rocksdb_store.hpp"
#include "tests/support/scratch_dir.hpp"

namespace ringmq::cluster::replication {
namespace {

using durable_state = session_log::durable_state;
const session_log::config replicas{1, {11, 22, 33}, 2, 2};

std::unique_ptr<storage::store> open_store(const std::string& path) {
  storage::rocksdb_options o;
  o.path = path;
  o.durability = storage::durability::sync;
  auto r = storage::open_rocksdb(o);
  EXPECT_FALSE(r.error) << r.message;
  return std::move(r.opened);
}

void wait_durable(storage::store& s, storage::commit_seq seq) {
  std::promise<std::error_code> done;
  s.when_durable(seq, [&](std::error_code ec) { done.set_value(ec); });
  EXPECT_FALSE(done.get_future().get());
}

std::map<std::string, durable_state> reopen_and_load(const std::string& path) {
  auto s = open_store(path);
  log_storage logs(*s);
  std::map<std::string, stored_log> stored;
  EXPECT_FALSE(logs.load(stored));
  std::map<std::string, durable_state> out;
  for (auto& [client, log] : stored) {
    EXPECT_EQ(log.replicas, replicas.replicas);
    EXPECT_EQ(log.write_quorum, 2u);
    out[client] = std::move(log.state);
  }
  return out;
}

durable_state log_with(ballot gen, std::uint64_t base, std::string snapshot, std::uint64_t first,
                       std::uint64_t last) {
  durable_state s;
  s.promised = gen;
  s.log_gen = gen;
  s.base_seq = base;
  s.snapshot = std::move(snapshot);
  for (auto seq = first; seq <= last; ++seq) s.entries.push_back({seq, gen, "e" + std::to_string(seq)});
  s.replicas = replicas.replicas;  // a log names its replica set
  return s;
}

std::size_t stored_keys(storage::store& s) {
  std::size_t n = 0;
  EXPECT_FALSE(s.scan(storage::column::replication, {}, [&](auto, auto) {
    ++n;
    return true;
  }));
  return n;
}

TEST(LogStorage, ARestartReadsBackEachLogAsLastPersisted) {
  testing::scratch_dir dir("ringmq-logs");
  const ballot g1{1, 7};
  const ballot g2{2, 3};
  {
    auto s = open_store(dir.path());
    log_storage logs(*s);
    std::map<std::string, stored_log> none;
    ASSERT_FALSE(logs.load(none));
    EXPECT_TRUE(none.empty());
    logs.persist("dev-1", replicas, log_with(g1, 0, "", 1, 3));
    logs.persist("dev-1", replicas, log_with(g1, 0, "", 1, 5));       // grew
    logs.persist("dev-1", replicas, log_with(g1, 4, "upto4", 5, 6));  // compacted and grew
    logs.persist("dev-2", replicas, log_with(g1, 0, "", 1, 2));
    auto replaced = log_with(g2, 1, "upto1", 2, 2);           // a new generation's install
    replaced.entries[0].gen = g1;
    wait_durable(*s, logs.persist("dev-2", replicas, replaced));
    EXPECT_EQ(stored_keys(*s), 2u + 2u + 2u + 1u) << "meta, snapshot and live entries only";
  }
  const auto back = reopen_and_load(dir.path());
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back.at("dev-1"), log_with(g1, 4, "upto4", 5, 6));
  auto expected = log_with(g2, 1, "upto1", 2, 2);
  expected.entries[0].gen = g1;
  EXPECT_EQ(back.at("dev-2"), expected);
}

TEST(LogStorage, APromiseAloneIsKept) {
  testing::scratch_dir dir("ringmq-logs");
  {
    auto s = open_store(dir.path());
    log_storage logs(*s);
    durable_state promised_only;
    promised_only.promised = ballot{9, 2};
    wait_durable(*s, logs.persist("dev-1", replicas, promised_only));
  }
  const auto back = reopen_and_load(dir.path());
  EXPECT_EQ(back.at("dev-1").promised, (ballot{9, 2}));
  EXPECT_TRUE(back.at("dev-1").entries.empty());
}

TEST(LogStorage, AnErasedLogIsGoneAfterARestart) {
  testing::scratch_dir dir("ringmq-logs");
  {
    auto s = open_store(dir.path());
    log_storage logs(*s);
    logs.persist("dev-1", replicas, log_with({1, 1}, 0, "", 1, 3));
    logs.persist("dev-10", replicas, log_with({1, 1}, 0, "", 1, 1));
    wait_durable(*s, logs.erase("dev-1"));
  }
  const auto back = reopen_and_load(dir.path());
  ASSERT_EQ(back.size(), 1u) << "dev-10 is not dev-1's prefix";
  EXPECT_TRUE(back.contains("dev-10"));
}

TEST(LogStorage, ALogShorterInItsGenerationIsWrittenWhole) {
  // A log of the same generation that went back (an install, base moved back)
  // must not keep stored entries past its end.
  testing::scratch_dir dir("ringmq-logs");
  {
    auto s = open_store(dir.path());
    log_storage logs(*s);
    logs.persist("dev-1", replicas, log_with({1, 1}, 3, "upto3", 4, 6));
    wait_durable(*s, logs.persist("dev-1", replicas, log_with({1, 1}, 1, "upto1", 2, 4)));
  }
  EXPECT_EQ(reopen_and_load(dir.path()).at("dev-1"), log_with({1, 1}, 1, "upto1", 2, 4));
}

}  // namespace
}  // namespace ringmq::cluster::replication
