// The journal on a real RocksDB store in a temporary directory: every kind of
// record goes in, the store is closed and reopened, and load() gives back
// exactly what was written; ending a session erases all of its records.

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "broker/core/journal.hpp"
#include "storage/rocksdb_store.hpp"

namespace ringmq::core {
namespace {

namespace fs = std::filesystem;

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("ringmq-journal-" + std::to_string(rd()));
    fs::create_directories(dir_);
    open();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void open() {
    store_.reset();
    storage::rocksdb_options o;
    o.path = dir_.string();
    auto r = storage::open_rocksdb(o);
    ASSERT_FALSE(r.error) << r.message;
    store_ = std::move(r.opened);
    journal_ = std::make_unique<journal>(*store_);
  }
  recovered_state reopen_and_load() {
    EXPECT_FALSE(store_->flush());
    open();
    recovered_state state;
    EXPECT_FALSE(journal_->load(state, clock::now()));
    return state;
  }

  static message_ptr make_message(std::string topic, std::string payload) {
    auto m = std::make_shared<message>();
    m->topic = std::move(topic);
    m->payload = std::move(payload);
    m->qos = codec::qos::exactly_once;
    m->retain = true;
    m->publisher = "sensor-1";
    m->props.content_type = "text/plain";
    m->props.user_properties.push_back({"site", "plant-7"});
    m->props.message_expiry_interval = 3600;
    m->received_at = clock::now();
    m->expires_at = m->received_at + std::chrono::seconds(3600);
    return m;
  }

  fs::path dir_;
  std::unique_ptr<storage::store> store_;
  std::unique_ptr<journal> journal_;
};

TEST_F(JournalTest, EveryRecordKindSurvivesAReopen) {
  const std::string client = "device-42";
  journal_->save_session(client, 600, 1'700'000'000'000, "alice");
  stored_subscription sub;
  sub.options.max_qos = codec::qos::at_least_once;
  sub.options.no_local = true;
  sub.options.retain_handling = 2;
  sub.identifier = 7;
  journal_->save_subscription(client, "plant/+/temperature", sub);
  outgoing queued;
  queued.msg = make_message("plant/1/temperature", "21.5");
  queued.qos = codec::qos::at_least_once;
  queued.subscription_ids = {7};
  queued.share = "$share/g/plant/#";
  journal_->queue_put(client, 5, queued);
  outgoing flying;
  flying.msg = make_message("plant/2/temperature", "19.0");
  flying.qos = codec::qos::exactly_once;
  journal_->inflight_put(client, 3, 77, inflight_stage::awaiting_pubrec, &flying);
  journal_->inflight_put(client, 4, 78, inflight_stage::awaiting_pubcomp, nullptr);
  journal_->inbound_put(client, 900);
  journal_->will_put(client, *make_message("devices/device-42/status", "offline"),
                     clock::now() + std::chrono::seconds(30));
  journal_->retained_put(*make_message("plant/1/alarm", "on"), {0x1234'0001, "n2"});
  journal_->retained_tombstone("plant/1/cleared", {0x1234'0002, "n3"});

  const auto state = reopen_and_load();
  ASSERT_EQ(state.sessions.size(), 1u);
  const auto& s = state.sessions[0];
  EXPECT_EQ(s.client_id, client);
  EXPECT_EQ(s.expiry_interval, 600u);
  EXPECT_EQ(s.disconnected_at_ms, 1'700'000'000'000);
  EXPECT_EQ(s.username, "alice");
  ASSERT_EQ(s.subscriptions.size(), 1u);
  EXPECT_EQ(s.subscriptions[0].first, "plant/+/temperature");
  EXPECT_EQ(s.subscriptions[0].second.options, sub.options);
  EXPECT_EQ(s.subscriptions[0].second.identifier, 7u);
  ASSERT_EQ(s.queue.size(), 1u);
  EXPECT_EQ(s.queue[0].order, 5u);
  EXPECT_EQ(s.queue[0].delivery.msg->payload, "21.5");
  EXPECT_EQ(s.queue[0].delivery.msg->props.content_type, "text/plain");
  EXPECT_EQ(s.queue[0].delivery.msg->props.user_properties, queued.msg->props.user_properties);
  EXPECT_TRUE(s.queue[0].delivery.msg->expires_at.has_value());
  EXPECT_EQ(s.queue[0].delivery.subscription_ids, std::vector<std::uint32_t>{7});
  EXPECT_EQ(s.queue[0].delivery.share, "$share/g/plant/#");
  ASSERT_EQ(s.inflight.size(), 2u);
  EXPECT_EQ(s.inflight[0].order, 3u);
  EXPECT_EQ(s.inflight[0].packet_id, 77);
  EXPECT_EQ(s.inflight[0].stage, inflight_stage::awaiting_pubrec);
  EXPECT_EQ(s.inflight[0].delivery.msg->topic, "plant/2/temperature");
  EXPECT_EQ(s.inflight[1].packet_id, 78);
  EXPECT_EQ(s.inflight[1].stage, inflight_stage::awaiting_pubcomp);
  EXPECT_EQ(s.inflight[1].delivery.msg, nullptr);
  EXPECT_EQ(s.inbound_qos2, std::vector<std::uint16_t>{900});
  ASSERT_NE(s.will, nullptr);
  EXPECT_EQ(s.will->payload, "offline");
  EXPECT_GT(s.will_due_ms, unix_now_ms());
  // The retained column is ordered by topic: the message, then the tombstone.
  ASSERT_EQ(state.retained.size(), 2u);
  EXPECT_EQ(state.retained[0].msg->topic, "plant/1/alarm");
  EXPECT_TRUE(state.retained[0].msg->retain);
  EXPECT_EQ(state.retained[0].version, (retained_version{0x1234'0001, "n2"}));
  EXPECT_EQ(state.retained[1].msg->topic, "plant/1/cleared");
  EXPECT_TRUE(state.retained[1].msg->payload.empty()) << "a tombstone has no payload";
  EXPECT_EQ(state.retained[1].version, (retained_version{0x1234'0002, "n3"}));
}

TEST_F(JournalTest, AnArmedWillComesBackWithItsDelayAndAPendingOneWithoutIt) {
  journal_->save_session(std::string("open"), 600, 0);
  journal_->will_arm(std::string("open"), *make_message("wills/open", "gone"), 30);
  journal_->save_session(std::string("delayed"), 600, 1'700'000'000'000);
  journal_->will_arm(std::string("delayed"), *make_message("wills/delayed", "gone"), 30);
  journal_->will_put(std::string("delayed"), *make_message("wills/delayed", "gone"),
                     clock::now() + std::chrono::seconds(10));
  auto state = reopen_and_load();
  ASSERT_EQ(state.sessions.size(), 2u);
  const bool open_first = state.sessions[0].client_id == "open";
  const auto& open = state.sessions[open_first ? 0 : 1];
  const auto& delayed = state.sessions[open_first ? 1 : 0];
  ASSERT_NE(open.will, nullptr);
  EXPECT_EQ(open.will_armed_delay_s, std::optional<std::uint32_t>(30));
  ASSERT_NE(delayed.will, nullptr);
  EXPECT_FALSE(delayed.will_armed_delay_s) << "the pending will replaced the armed one";
  EXPECT_GT(delayed.will_due_ms, unix_now_ms());
}

TEST_F(JournalTest, ErasingASessionLeavesItsNeighbours) {
  stored_subscription sub;
  outgoing m;
  m.msg = make_message("t", "p");
  m.qos = codec::qos::at_least_once;
  // "dev" is a byte prefix of "dev2": the length-prefixed keys keep them apart.
  for (const std::string client : {"dev", "dev2"}) {
    journal_->save_session(client, 60, 0);
    journal_->save_subscription(client, "t", sub);
    journal_->queue_put(client, 1, m);
    journal_->inflight_put(client, 2, 5, inflight_stage::awaiting_puback, &m);
    journal_->inbound_put(client, 9);
  }
  journal_->erase_session(std::string("dev"));
  const auto state = reopen_and_load();
  ASSERT_EQ(state.sessions.size(), 1u);
  EXPECT_EQ(state.sessions[0].client_id, "dev2");
  EXPECT_EQ(state.sessions[0].subscriptions.size(), 1u);
  EXPECT_EQ(state.sessions[0].queue.size(), 1u);
  EXPECT_EQ(state.sessions[0].inflight.size(), 1u);
  EXPECT_EQ(state.sessions[0].inbound_qos2.size(), 1u);
}

TEST_F(JournalTest, QueueToInflightIsOneChange) {
  outgoing m;
  m.msg = make_message("t", "p");
  m.qos = codec::qos::at_least_once;
  journal_->save_session(std::string("c"), 60, 0);
  journal_->queue_put(std::string("c"), 10, m);
  journal_->queue_to_inflight(std::string("c"), 10, 10, 3, inflight_stage::awaiting_puback, m);
  journal_->retained_put(*make_message("gone", "x"), {1, "n1"});
  journal_->retained_erase("gone");
  const auto state = reopen_and_load();
  ASSERT_EQ(state.sessions.size(), 1u);
  EXPECT_TRUE(state.sessions[0].queue.empty());
  ASSERT_EQ(state.sessions[0].inflight.size(), 1u);
  EXPECT_EQ(state.sessions[0].inflight[0].packet_id, 3);
  EXPECT_TRUE(state.retained.empty());
}

TEST_F(JournalTest, AppendsRaiseTheThreadsCommitWatermark) {
  take_commit_watermark();
  journal_->save_session(std::string("w"), 60, 0);
  const auto seq = take_commit_watermark();
  EXPECT_GT(seq, 0u);
  EXPECT_EQ(take_commit_watermark(), 0u) << "taking resets the watermark";
}

TEST_F(JournalTest, NumberedQos2RecordsSurviveAReopenAndGoWithTheSession) {
  const std::string client = "device-7";
  journal_->save_session(client, 600, 0);
  journal_->inbound_put(client, 40, 17);
  journal_->inbound_put(client, 41, 18);
  journal_->inbound_put(client, 42);  // not numbered
  journal_->inbound_erase(client, 41);
  dedup_window taken;
  taken.admit(5, 100);
  taken.admit(3, 101);
  journal_->dedup_put(client, "sensor-1", taken);
  journal_->dedup_put(client, "sensor-2", taken);
  journal_->dedup_erase(client, "sensor-2");

  auto state = reopen_and_load();
  ASSERT_EQ(state.sessions.size(), 1u);
  const auto& s = state.sessions[0];
  EXPECT_EQ(s.inbound_qos2, (std::vector<std::uint16_t>{40, 42}));
  EXPECT_EQ(s.inbound_numbers, (std::vector<std::pair<std::uint16_t, std::uint64_t>>{{40, 17}}));
  EXPECT_EQ(s.publish_counter, 18u) << "the counter outlives the packet id that last raised it";
  ASSERT_EQ(s.taken.size(), 1u);
  EXPECT_EQ(s.taken[0].first, "sensor-1");
  auto back = s.taken[0].second;
  EXPECT_FALSE(back.admit(5, 100));
  EXPECT_FALSE(back.admit(3, 101));
  EXPECT_TRUE(back.admit(4, 102));

  journal_->erase_session(client);
  state = reopen_and_load();
  EXPECT_TRUE(state.sessions.empty());
  std::size_t left = 0;
  for (auto c : {storage::column::inbound_qos2, storage::column::dedup}) {
    EXPECT_FALSE(store_->scan(c, {}, [&](auto, auto) {
      ++left;
      return true;
    }));
  }
  EXPECT_EQ(left, 0u);
}

}  // namespace
}  // namespace ringmq::core
