// The store on a real RocksDB in a temporary directory: every column, batches
// and their order, prefix erase, reopen, durability callbacks, schema check,
// and refusal to open a damaged store.

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <random>

#include "ringmq/storage/v1/records.pb.h"
#include "storage/keys.hpp"
#include "storage/rocksdb_store.hpp"

namespace ringmq::storage {
namespace {

namespace fs = std::filesystem;

class temp_dir {
 public:
  temp_dir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() / ("ringmq-store-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
};

std::unique_ptr<store> open_at(const std::string& path, durability d = durability::batch) {
  rocksdb_options o;
  o.path = path;
  o.durability = d;
  auto r = open_rocksdb(o);
  EXPECT_FALSE(r.error) << r.message;
  return std::move(r.opened);
}

std::vector<std::pair<std::string, std::string>> dump(store& s, column c,
                                                      std::string_view prefix = {}) {
  std::vector<std::pair<std::string, std::string>> out;
  EXPECT_FALSE(s.scan(c, prefix, [&](std::string_view k, std::string_view v) {
    out.emplace_back(k, v);
    return true;
  }));
  return out;
}

const column every_column[] = {column::sessions, column::subscriptions, column::queue,
                               column::inflight, column::inbound_qos2, column::wills,
                               column::retained, column::replication, column::dedup};

TEST(RocksdbStore, EveryColumnKeepsItsRecordsAcrossReopen) {
  temp_dir dir;
  {
    auto s = open_at(dir.path());
    write_batch b;
    for (auto c : every_column) b.put(c, std::string("key-") + column_name(c), column_name(c));
    const auto seq = s->append(std::move(b));
    EXPECT_EQ(seq, 1u);
    EXPECT_FALSE(s->flush());
  }
  auto s = open_at(dir.path());
  for (auto c : every_column) {
    auto rows = dump(*s, c);
    ASSERT_EQ(rows.size(), 1u) << column_name(c);
    EXPECT_EQ(rows[0].first, std::string("key-") + column_name(c));
    EXPECT_EQ(rows[0].second, column_name(c));
  }
}

TEST(RocksdbStore, BatchesApplyInAppendOrder) {
  temp_dir dir;
  auto s = open_at(dir.path());
  for (int i = 0; i < 1000; ++i) {
    write_batch b;
    b.put(column::queue, "k", std::to_string(i));
    s->append(std::move(b));
  }
  write_batch last;
  last.erase(column::queue, "gone");
  s->append(std::move(last));
  ASSERT_FALSE(s->flush());
  EXPECT_EQ(s->get(column::queue, "k"), "999");
}

TEST(RocksdbStore, ErasePrefixRemovesOnlyThatClientsRecords) {
  temp_dir dir;
  auto s = open_at(dir.path());
  auto key = [](std::string_view client, std::uint64_t n) {
    std::string k;
    keys::append_string(k, client);
    keys::append_u64(k, n);
    return k;
  };
  write_batch b;
  for (std::uint64_t n = 0; n < 5; ++n) {
    b.put(column::queue, key("a", n), "a");
    b.put(column::queue, key("ab", n), "ab");  // "a" is a byte prefix of "ab" but not its key prefix
    b.put(column::queue, key("b", n), "b");
  }
  s->append(std::move(b));
  std::string prefix;
  keys::append_string(prefix, "a");
  write_batch erase;
  erase.erase_prefix(column::queue, prefix);
  s->append(std::move(erase));
  ASSERT_FALSE(s->flush());
  auto rows = dump(*s, column::queue);
  ASSERT_EQ(rows.size(), 10u);
  for (const auto& [k, v] : rows) EXPECT_NE(v, "a");
}

TEST(RocksdbStore, KeysScanInNumericOrder) {
  temp_dir dir;
  auto s = open_at(dir.path());
  std::vector<std::uint64_t> orders{300, 2, 70000, 1, 256};
  write_batch b;
  for (auto n : orders) {
    std::string k;
    keys::append_string(k, "client");
    keys::append_u64(k, n);
    b.put(column::inflight, k, std::to_string(n));
  }
  s->append(std::move(b));
  ASSERT_FALSE(s->flush());
  std::vector<std::string> seen;
  for (const auto& [k, v] : dump(*s, column::inflight)) seen.push_back(v);
  EXPECT_EQ(seen, (std::vector<std::string>{"1", "2", "256", "300", "70000"}));
}

TEST(RocksdbStore, WhenDurableFiresOnceCommittedAndInlineAfterwards) {
  for (auto mode : {durability::sync, durability::batch, durability::none}) {
    temp_dir dir;
    auto s = open_at(dir.path(), mode);
    std::promise<std::error_code> done;
    write_batch b;
    b.put(column::sessions, "c", "v");
    const auto seq = s->append(std::move(b));
    s->when_durable(seq, [&](std::error_code ec) { done.set_value(ec); });
    auto f = done.get_future();
    ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    EXPECT_FALSE(f.get());
    bool inline_call = false;
    s->when_durable(seq, [&](std::error_code ec) {
      EXPECT_FALSE(ec);
      inline_call = true;
    });
    EXPECT_TRUE(inline_call);
    EXPECT_GE(s->stats().commits, 1u);
  }
}

// A group (a QoS 2 publish and every copy it makes) reaches the disk whole:
// nothing appended from its start on is written before it ends, and its end
// lets the waiting batches go.
TEST(RocksdbStore, GroupsAreWrittenOnlyOnceTheyEnd) {
  for (auto mode : {durability::sync, durability::batch, durability::none}) {
    temp_dir dir;
    auto s = open_at(dir.path(), mode);
    auto durable_future = [&](commit_seq seq) {
      auto done = std::make_shared<std::promise<std::error_code>>();
      s->when_durable(seq, [done](std::error_code ec) { done->set_value(ec); });
      return done->get_future();
    };
    std::optional<store_group> outer(std::in_place, *s);
    write_batch first;
    first.put(column::inbound_qos2, "c/1", "");
    auto first_durable = durable_future(s->append(std::move(first)));
    {
      // A second group that appends nothing, opened and closed inside the first.
      store_group empty(*s);
    }
    EXPECT_EQ(first_durable.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);
    EXPECT_EQ(s->stats().commits, 0u);
    outer.reset();
    ASSERT_EQ(first_durable.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    EXPECT_FALSE(first_durable.get());

    // After every group ended, appends go straight through again.
    write_batch second;
    second.put(column::inbound_qos2, "c/2", "");
    auto second_durable = durable_future(s->append(std::move(second)));
    ASSERT_EQ(second_durable.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    EXPECT_EQ(dump(*s, column::inbound_qos2).size(), 2u);
  }
}

// An overlapping group that started later does not hold back what an earlier,
// ended group wrote.
TEST(RocksdbStore, EndingTheOldestGroupReleasesItsBatches) {
  temp_dir dir;
  auto s = open_at(dir.path(), durability::none);
  std::optional<store_group> older(std::in_place, *s);
  write_batch b;
  b.put(column::queue, "c/1", "m");
  const auto seq = s->append(std::move(b));
  store_group younger(*s);
  std::promise<std::error_code> done;
  s->when_durable(seq, [&](std::error_code ec) { done.set_value(ec); });
  older.reset();
  auto f = done.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_FALSE(f.get());
}

TEST(RocksdbStore, ManyThreadsAppendingShareCommits) {
  temp_dir dir;
  auto s = open_at(dir.path(), durability::batch);
  std::atomic<int> acknowledged{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        write_batch b;
        b.put(column::queue, std::to_string(t) + "/" + std::to_string(i), "x");
        s->when_durable(s->append(std::move(b)), [&](std::error_code ec) {
          if (!ec) ++acknowledged;
        });
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_FALSE(s->flush());
  EXPECT_EQ(acknowledged.load(), 2000);
  EXPECT_EQ(dump(*s, column::queue).size(), 2000u);
  // Group commit: far fewer fsyncs than batches.
  EXPECT_LT(s->stats().commits, s->stats().batches);
}

TEST(RocksdbStore, RefusesAnotherSchemaVersion) {
  temp_dir dir;
  { open_at(dir.path()); }
  {
    // Rewrite the schema record as a future version would.
    auto s = open_at(dir.path());
    ringmq::storage::v1::SchemaRecord schema;
    schema.set_version(schema_version + 1);
    write_batch b;
    b.put(column::meta, "schema", schema.SerializeAsString());
    s->append(std::move(b));
    ASSERT_FALSE(s->flush());
  }
  rocksdb_options o;
  o.path = dir.path();
  auto r = open_rocksdb(o);
  EXPECT_EQ(r.error, make_error_code(storage_errc::schema_mismatch));
  EXPECT_NE(r.message.find("schema version"), std::string::npos) << r.message;
}

// Flips bytes in the middle of every table file: a damaged store must not open.
TEST(RocksdbStore, RefusesToOpenADamagedStore) {
  temp_dir dir;
  {
    rocksdb_options o;
    o.path = dir.path();
    auto r = open_rocksdb(o);
    ASSERT_FALSE(r.error);
    write_batch b;
    for (int i = 0; i < 2000; ++i) b.put(column::queue, "key" + std::to_string(i), std::string(100, 'v'));
    r.opened->append(std::move(b));
    ASSERT_FALSE(r.opened->flush());
  }
  // Closing flushed the memtables into .sst files; damage them.
  {
    // Reopen and close once more so that the data is certainly in table files.
    auto s = open_at(dir.path());
  }
  int damaged = 0;
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    if (entry.path().extension() != ".sst" && entry.path().extension() != ".log") continue;
    const auto size = fs::file_size(entry.path());
    if (size < 64) continue;
    std::fstream f(entry.path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size / 2));
    const std::string junk(32, '\x5A');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
    ++damaged;
  }
  ASSERT_GT(damaged, 0);
  rocksdb_options o;
  o.path = dir.path();
  auto r = open_rocksdb(o);
  EXPECT_TRUE(r.error) << "a damaged store opened";
  EXPECT_EQ(r.error, make_error_code(storage_errc::corruption)) << r.message;
  EXPECT_FALSE(r.message.empty());
}

TEST(RocksdbStore, UnusableDirectoryIsAnError) {
  rocksdb_options o;
  o.path = "/proc/ringmq-cannot-create-this";
  auto r = open_rocksdb(o);
  EXPECT_TRUE(r.error);
  EXPECT_NE(r.message.find("/proc/ringmq-cannot-create-this"), std::string::npos);
}

TEST(MemoryStore, BehavesLikeTheInterfaceSays) {
  auto s = make_memory_store();
  write_batch b;
  b.put(column::retained, "a/b", "1");
  b.put(column::retained, "a/c", "2");
  b.put(column::retained, "b", "3");
  const auto seq = s->append(std::move(b));
  bool durable = false;
  s->when_durable(seq, [&](std::error_code ec) { durable = !ec; });
  EXPECT_TRUE(durable);
  EXPECT_EQ(dump(*s, column::retained, "a/").size(), 2u);
  write_batch erase;
  erase.erase_prefix(column::retained, "a/");
  s->append(std::move(erase));
  EXPECT_EQ(dump(*s, column::retained).size(), 1u);
  EXPECT_EQ(s->get(column::retained, "b"), "3");
}

}  // namespace
}  // namespace ringmq::storage
