// A damaged store is refused, never served with holes: ringmq exits with code 1
// and a message that names the data directory, whether the damage is in the
// table files (.sst), the MANIFEST or the middle of the write-ahead log. A
// store written by another schema version is refused too, naming both versions.
//
// One store with persistent sessions, subscriptions, queued and retained
// messages is made once, through the broker; every case damages its own copy.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "ringmq/storage/v1/records.pb.h"
#include "storage/rocksdb_store.hpp"
#include "tests/support/durability_support.hpp"

namespace ringmq::testing::durability {
namespace {

namespace fs = std::filesystem;
using codec::protocol_version;
using codec::qos;

constexpr int sessions = 20;
constexpr int messages = 200;

// Overwrites `length` bytes in the middle of `path` with a pattern no
// checksum matches by chance.
void damage_middle(const fs::path& path, std::size_t length = 64) {
  const auto size = fs::file_size(path);
  ASSERT_GT(size, length * 2) << path;
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f) << path;
  f.seekp(static_cast<std::streamoff>(size / 2 - length / 2));
  for (std::size_t i = 0; i < length; ++i) f.put(static_cast<char>(0xA5 ^ (i * 37)));
  ASSERT_TRUE(f.good()) << path;
}

// Damages the payload of the manifest record nearest the middle of the
// file, so that its checksum cannot match. (Damage that lands on a record's
// header can look like the unfinished last write of a crash, which RocksDB
// rightly tolerates; where the middle falls depends on the records.) The
// manifest is a log of records, each a 7-byte header (checksum, length,
// type) and its payload, in 32 KiB blocks.
void damage_record_payload(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  constexpr std::size_t block = 32 * 1024, header = 7;
  std::size_t best = 0, best_length = 0, at = 0;
  while (at + header <= bytes.size()) {
    const auto left_in_block = block - at % block;
    if (left_in_block < header) {
      at += left_in_block;  // the block's trailer
      continue;
    }
    const auto length = static_cast<std::size_t>(static_cast<unsigned char>(bytes[at + 4])) |
                        static_cast<std::size_t>(static_cast<unsigned char>(bytes[at + 5])) << 8;
    if (length == 0 || at + header + length > bytes.size()) break;
    const auto middle = at + header + length / 2;
    if (best == 0 || (middle > bytes.size() / 2 ? middle - bytes.size() / 2
                                                 : bytes.size() / 2 - middle) <
                         (best > bytes.size() / 2 ? best - bytes.size() / 2
                                                  : bytes.size() / 2 - best)) {
      best = middle;
      best_length = length;
    }
    at += header + length;
  }
  ASSERT_GT(best_length, 4u) << "no record with a payload in " << path;
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(best - 2));
  for (int i = 0; i < 4; ++i) f.put(static_cast<char>(~bytes[best - 2 + static_cast<std::size_t>(i)]));
  ASSERT_TRUE(f.good()) << path;
}

std::vector<fs::path> files_named(const std::string& dir, std::string_view prefix,
                                  std::string_view suffix) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const auto name = e.path().filename().string();
    if (name.starts_with(prefix) && name.ends_with(suffix)) out.push_back(e.path());
  }
  return out;
}

// Persistent sessions with a subscription each, `messages` QoS 1 messages
// queued for every one of them, and retained messages. `stop_cleanly`:
// SIGTERM (everything in table files after a second start), else SIGKILL
// while the data is only in the write-ahead log.
void make_store(const std::string& data, bool stop_cleanly) {
  const std::vector<std::string> settings{"storage.durability=sync",
                                          "mqtt.max_queued_messages=100000"};
  {
    node_process node(data, settings);
    ASSERT_TRUE(node.ready()) << node.describe();
    for (int i = 0; i < sessions; ++i) {
      recording_subscriber sub(
          persistent_connect("damaged-" + std::to_string(i), protocol_version::v5, 3600));
      ASSERT_TRUE(sub.connect(node.port())) << sub.error();
      ASSERT_TRUE(sub.subscribe({{"damaged/#", qos::at_least_once}})) << sub.error();
      sub.disconnect();
    }
    auto o = stream_options{};
    o.client_id = "damaged-pub";
    o.qos = qos::at_least_once;
    o.name = "m";
    o.topic = "damaged/t";
    o.count = messages;
    stream_publisher queued(node.port(), o);
    o.client_id = "damaged-retained";
    o.name = "r";
    o.topic = "damaged/r";
    o.retained = true;
    o.count = 50;
    stream_publisher retained(node.port(), o);
    queued.join();
    retained.join();
    ASSERT_EQ(queued.count(ack_state::accepted), static_cast<std::size_t>(messages))
        << queued.error();
    ASSERT_EQ(retained.count(ack_state::accepted), 50u) << retained.error();
    if (!stop_cleanly) {
      node.kill();
      return;
    }
    const auto status = node.stop();
    ASSERT_TRUE(status && status->clean()) << node.log_tail();
  }
  // Opening replays the write-ahead log into table files.
  node_process again(data, settings);
  ASSERT_TRUE(again.ready()) << again.describe();
  const auto status = again.stop();
  ASSERT_TRUE(status && status->clean()) << again.log_tail();
}

class DurabilityCorruption : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pristine_ = new scratch_dir("ringmq-pristine");
    make_store(*pristine_ / "flushed", true);
    make_store(*pristine_ / "in-wal", false);
    made_ = !HasFailure();
  }
  static void TearDownTestSuite() {
    delete pristine_;
    pristine_ = nullptr;
  }
  void SetUp() override {
    // Fails every case, not skips it: a damaged-store test that did not run proves nothing.
    if (!made_) GTEST_FAIL() << "the store could not be made (see the failure above)";
  }

  // A fresh copy of a pristine store, for one case to damage.
  std::string copy_of(std::string_view which) {
    const auto to = dir_ / "data";
    fs::copy(*pristine_ / std::string(which), to, fs::copy_options::recursive);
    return to;
  }

  // Starts ringmq on `data`: it must exit with code 1 without serving, and say
  // which directory. Returns its log.
  std::string expect_refusal(const std::string& data) {
    node_process node(data, {"storage.durability=sync"});
    EXPECT_FALSE(node.ready()) << "ringmq served a damaged store\n" << node.log_tail();
    const auto status = node.wait_exit(milliseconds(20'000));
    EXPECT_TRUE(status) << "still running\n" << node.log_tail();
    if (status) {
      EXPECT_EQ(status->exit_code, 1) << status->describe() << "\n" << node.log_tail();
    }
    const auto log = node.log();
    EXPECT_NE(log.find(data), std::string::npos) << "the message does not name " << data
                                                 << "\n" << log;
    EXPECT_EQ(log.find(" started: "), std::string::npos) << log;
    const auto fatal = log.find("fatal: ");
    EXPECT_NE(fatal, std::string::npos) << log;
    std::cout << "[ refused  ] " << (fatal == std::string::npos ? log : log.substr(fatal));
    return log;
  }

  static scratch_dir* pristine_;
  static bool made_;
  scratch_dir dir_{"ringmq-damaged"};
};

scratch_dir* DurabilityCorruption::pristine_ = nullptr;
bool DurabilityCorruption::made_ = false;

bool says_damaged(const std::string& log) {
  return log.find("Corruption") != std::string::npos || log.find("damaged") != std::string::npos;
}

TEST_F(DurabilityCorruption, AnUndamagedCopyIsServed) {
  // The control case: copying the store is not what the other cases detect.
  const auto data = copy_of("flushed");
  ASSERT_FALSE(files_named(data, "", ".sst").empty()) << "no table files in " << data;
  node_process node(data, {"storage.durability=sync"});
  ASSERT_TRUE(node.ready()) << node.describe();
  EXPECT_NE(node.log().find("recovered from the store: sessions=" + std::to_string(sessions)),
            std::string::npos)
      << node.log_tail();
  recording_subscriber sub(persistent_connect("damaged-7", protocol_version::v5, 3600));
  const auto ack = sub.connect(node.port());
  ASSERT_TRUE(ack) << sub.error();
  EXPECT_TRUE(ack->session_present);
  const auto last = numbered_payload("m", messages);
  ASSERT_EQ(sub.pump_until_payload(last, milliseconds(10'000)),
            recording_subscriber::pump_result::done);
  std::vector<ack_state> all(messages + 1, ack_state::accepted);
  EXPECT_EQ(check_stream(sub.deliveries(), "m", all, false).problems, "");
  sub.disconnect();
  const auto status = node.stop();
  ASSERT_TRUE(status && status->clean()) << node.log_tail();
}

TEST_F(DurabilityCorruption, DamagedTableFilesAreRefused) {
  const auto data = copy_of("flushed");
  const auto tables = files_named(data, "", ".sst");
  ASSERT_FALSE(tables.empty()) << "no table files in " << data;
  for (const auto& t : tables) damage_middle(t);
  EXPECT_TRUE(says_damaged(expect_refusal(data)));
}

TEST_F(DurabilityCorruption, DamagedManifestIsRefused) {
  const auto data = copy_of("flushed");
  const auto manifests = files_named(data, "MANIFEST-", "");
  ASSERT_EQ(manifests.size(), 1u);
  damage_record_payload(manifests[0]);
  EXPECT_TRUE(says_damaged(expect_refusal(data)));
}

TEST_F(DurabilityCorruption, DamageInTheMiddleOfTheWriteAheadLogIsRefused) {
  // Acknowledged messages live only in the log here: a record damaged in the
  // middle is not an unfinished last write, and dropping it (with everything
  // after it) would lose acknowledged messages.
  const auto data = copy_of("in-wal");
  const auto logs = files_named(data, "", ".log");
  ASSERT_FALSE(logs.empty()) << "no write-ahead log in " << data;
  const auto biggest = *std::max_element(logs.begin(), logs.end(), [](auto& a, auto& b) {
    return fs::file_size(a) < fs::file_size(b);
  });
  ASSERT_GT(fs::file_size(biggest), 64u * 1024) << "the acknowledged data is not in the log";
  damage_middle(biggest);
  EXPECT_TRUE(says_damaged(expect_refusal(data)));
}

TEST_F(DurabilityCorruption, ATornLastWriteIsNotDamage) {
  // The process died while writing its last log record: that write was never
  // acknowledged, so the record is dropped and the store is served.
  const auto data = copy_of("in-wal");
  const auto logs = files_named(data, "", ".log");
  ASSERT_FALSE(logs.empty());
  const auto biggest = *std::max_element(logs.begin(), logs.end(), [](auto& a, auto& b) {
    return fs::file_size(a) < fs::file_size(b);
  });
  fs::resize_file(biggest, fs::file_size(biggest) - 7);
  node_process node(data, {"storage.durability=sync"});
  ASSERT_TRUE(node.ready()) << node.describe();
  EXPECT_NE(node.log().find("recovered from the store: sessions=" + std::to_string(sessions)),
            std::string::npos)
      << node.log_tail();
  const auto status = node.stop();
  ASSERT_TRUE(status && status->clean()) << node.log_tail();
}

TEST_F(DurabilityCorruption, AStoreOfAnotherSchemaVersionIsRefusedNamingBothVersions) {
  const auto data = copy_of("flushed");
  {
    // Rewrite the schema record as a later version would.
    storage::rocksdb_options o;
    o.path = data;
    auto opened = storage::open_rocksdb(o);
    ASSERT_FALSE(opened.error) << opened.message;
    ringmq::storage::v1::SchemaRecord schema;
    schema.set_version(storage::schema_version + 1);
    schema.set_created_by("ringmq (a later version)");
    storage::write_batch b;
    b.put(storage::column::meta, "schema", schema.SerializeAsString());
    opened.opened->append(std::move(b));
    ASSERT_FALSE(opened.opened->flush());
  }
  const auto log = expect_refusal(data);
  const auto theirs = "schema version " + std::to_string(storage::schema_version + 1);
  const auto ours = "version " + std::to_string(storage::schema_version);
  EXPECT_NE(log.find(theirs), std::string::npos) << log;
  EXPECT_NE(log.find(ours, log.find(theirs) + theirs.size()), std::string::npos) << log;
}

}  // namespace
}  // namespace ringmq::testing::durability
