// The engine with a session keeper (session_keeper.hpp) that commits or
// fails when the test says so: a kept session's changes go to the keeper and
// not to the store, and what depends on them (a PUBACK or PUBREC of a message
// queued for a kept session, a SUBACK, a QoS 2 PUBLISH to a kept session's
// client) waits for the commit; a failed commit is a failed acknowledgement.

#include <mutex>
#include <set>

#include "broker/core/session_keeper.hpp"
#include "tests/unit/core/engine_harness.hpp"

namespace ringmq::core {
namespace {

using namespace harness;

class scripted_keeper final : public session_keeper {
 public:
  explicit scripted_keeper(std::set<std::string> kept) : kept_(std::move(kept)) {}

  bool keeps(const std::string& client) const override {
    std::lock_guard lock(mutex_);
    return kept_.contains(client);
  }
  void append(const std::string& client, std::uint64_t, storage::write_batch&& change,
              std::function<void(bool)> done) override {
    {
      std::lock_guard lock(mutex_);
      seen_.push_back(client);
      if (!at_once_) {
        pending_.push_back({client, std::move(change), std::move(done)});
        return;
      }
    }
    done(true);
  }
  // Commits what comes at once (while clients connect) or waits for the test.
  void commit_at_once(bool yes) {
    std::lock_guard lock(mutex_);
    at_once_ = yes;
  }
  // Every client whose change came, committed or waiting.
  std::vector<std::string> clients_seen() const {
    std::lock_guard lock(mutex_);
    return seen_;
  }

  // Changes waiting, oldest first.
  std::size_t waiting() const {
    std::lock_guard lock(mutex_);
    return pending_.size();
  }
  std::vector<std::string> clients_waiting() const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (const auto& p : pending_) out.push_back(p.client);
    return out;
  }
  // Answers the oldest change waiting (false: none waits).
  bool finish_first(bool committed = true) {
    change first;
    {
      std::lock_guard lock(mutex_);
      if (pending_.empty()) return false;
      first = std::move(pending_.front());
      pending_.erase(pending_.begin());
    }
    first.done(committed);
    return true;
  }
  // Answers every change waiting.
  void finish_all(bool committed = true) {
    std::vector<change> now;
    {
      std::lock_guard lock(mutex_);
      now.swap(pending_);
    }
    for (auto& c : now) c.done(committed);
  }

 private:
  struct change {
    std::string client;
    storage::write_batch batch;
    std::function<void(bool)> done;
  };
  mutable std::mutex mutex_;
  std::set<std::string> kept_;
  std::vector<change> pending_;
  std::vector<std::string> seen_;
  bool at_once_ = false;
};

class EngineKeeper : public ::testing::Test {
 protected:
  EngineKeeper() : store_(storage::make_memory_store()), bench_({}, store_.get()) {
    bench_.broker().journal()->set_keeper(&keeper_);
  }

  std::size_t stored_sessions() {
    std::size_t n = 0;
    EXPECT_FALSE(store_->scan(storage::column::sessions, {}, [&](auto, auto) {
      ++n;
      return true;
    }));
    return n;
  }

  // CONNECT, its session's writes committed, CONNACK (which waits for them).
  client& persistent(const std::string& id) {
    keeper_.commit_at_once(true);
    auto& c = bench_.persistent(id);
    keeper_.commit_at_once(false);
    return c;
  }

  // SUBSCRIBE, the keeper commits, SUBACK.
  void subscribe_kept(client& c, const std::string& filter, qos q) {
    codec::subscribe_packet s;
    s.packet_id = 1;
    s.subscriptions.push_back(make_subscription(filter, q));
    c.send(std::move(s));
    keeper_.finish_all();
    c.expect<codec::suback_packet>();
  }

  std::unique_ptr<storage::store> store_;
  scripted_keeper keeper_{{"kept", "kept-subscriber"}};
  bench bench_;
};

TEST_F(EngineKeeper, AKeptSessionsChangesGoToTheKeeperNotTheStore) {
  auto& kept = persistent("kept");
  auto& local = persistent("local");
  (void)kept;
  (void)local;
  EXPECT_EQ(stored_sessions(), 1u) << "only the session that is not kept";
  const auto clients = keeper_.clients_seen();
  ASSERT_FALSE(clients.empty());
  for (const auto& c : clients) EXPECT_EQ(c, "kept");
}

TEST_F(EngineKeeper, ACONNACKWaitsUntilTheSessionAndItsWillAreCommitted) {
  auto& dev = bench_.add(v5);
  auto c = dev.connect_packet("kept", false);
  c.props.session_expiry_interval = 600;
  c.will = make_will("wills/kept", "gone");
  dev.send(std::move(c));
  dev.expect_nothing();
  EXPECT_GE(keeper_.waiting(), 2u) << "the session record and the will";
  keeper_.finish_all();
  EXPECT_EQ(dev.expect<codec::connack_packet>().code, reason_code::success);
}

TEST_F(EngineKeeper, AConnectWhoseSessionCannotBeKeptIsRefused) {
  auto& dev = bench_.add(v5);
  auto c = dev.connect_packet("kept", false);
  c.props.session_expiry_interval = 600;
  dev.send(std::move(c));
  keeper_.finish_all(false);
  EXPECT_EQ(dev.expect<codec::connack_packet>().code, reason_code::server_unavailable);
}

TEST_F(EngineKeeper, APubackWaitsUntilTheQueuedCopyIsCommitted) {
  auto& sub = persistent("kept");
  subscribe_kept(sub, "t", qos::at_least_once);
  sub.disconnect();
  keeper_.finish_all();
  auto& pub = bench_.connected("publisher");
  pub.publish("t", "m1", qos::at_least_once, 7);
  pub.expect_nothing();
  ASSERT_GE(keeper_.waiting(), 1u) << "the copy queued for the offline session";
  keeper_.finish_all();
  EXPECT_EQ(pub.expect<codec::puback_packet>().packet_id, 7);
}

TEST_F(EngineKeeper, ASubackWaitsForTheSubscriptionsCommit) {
  auto& sub = persistent("kept");
  keeper_.finish_all();
  codec::subscribe_packet s;
  s.packet_id = 3;
  s.subscriptions.push_back(make_subscription("t", qos::at_least_once));
  sub.send(std::move(s));
  sub.expect_nothing();
  keeper_.finish_all();
  EXPECT_EQ(sub.expect<codec::suback_packet>().packet_id, 3);
}

TEST_F(EngineKeeper, AFailedCommitIsAFailedAcknowledgement) {
  auto& sub = persistent("kept");
  subscribe_kept(sub, "t", qos::at_least_once);
  sub.disconnect();
  keeper_.finish_all();
  auto& pub = bench_.connected("publisher");
  pub.publish("t", "m1", qos::at_least_once, 9);
  keeper_.finish_all(/*committed=*/false);
  const auto ack = pub.expect<codec::puback_packet>();
  EXPECT_EQ(ack.packet_id, 9);
  EXPECT_FALSE(codec::is_success(ack.code)) << "not kept: the publisher must not count on it";
}

TEST_F(EngineKeeper, AQos2PublishToAKeptSessionLeavesOnceItsPacketIdIsCommitted) {
  auto& sub = persistent("kept");
  subscribe_kept(sub, "t", qos::exactly_once);
  auto& pub = bench_.connected("publisher");
  pub.publish("t", "m1", qos::exactly_once, 4);
  sub.expect_nothing();
  keeper_.finish_all();
  const auto got = sub.publishes();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, "m1");
  EXPECT_EQ(pub.expect<codec::pubrec_packet>().packet_id, 4);
}

// Everything a resumed session sends again waits for one sync point with the
// keeper; each of the resends leaves once it is committed, not only the last.
TEST_F(EngineKeeper, EveryResendOfAResumedKeptSessionLeavesAfterTheSyncPoint) {
  auto& sub = persistent("kept");
  subscribe_kept(sub, "t", qos::exactly_once);
  auto& pub = bench_.connected("publisher");
  for (std::uint16_t id = 1; id <= 2; ++id) {
    pub.publish("t", "m" + std::to_string(id), qos::exactly_once, id);
    keeper_.finish_all();
  }
  const auto first = sub.publishes();
  ASSERT_EQ(first.size(), 2u);
  sub.pubrec(first[0].packet_id);  // the first waits for PUBCOMP, the second for PUBREC
  keeper_.finish_all();
  sub.expect<codec::pubrel_packet>();
  sub.lose();
  keeper_.finish_all();

  auto& back = bench_.add(v5);
  auto c = back.connect_packet("kept", false);
  c.props.session_expiry_interval = 600;
  back.send(std::move(c));
  keeper_.finish_all();  // the session record: CONNACK
  EXPECT_TRUE(back.expect<codec::connack_packet>().session_present);
  back.expect_nothing();
  keeper_.finish_all();  // the sync point
  const auto again = back.received();
  ASSERT_EQ(again.size(), 2u) << "the PUBREL and the PUBLISH, both";
  const auto* rel = std::get_if<codec::pubrel_packet>(&again[0]);
  ASSERT_NE(rel, nullptr);
  EXPECT_EQ(rel->packet_id, first[0].packet_id);
  const auto* dup = std::get_if<codec::publish_packet>(&again[1]);
  ASSERT_NE(dup, nullptr);
  EXPECT_EQ(dup->packet_id, first[1].packet_id);
  EXPECT_TRUE(dup->dup);
}

TEST(KeeperWait, EveryContinuationRunsOnceWhenTheLastChangeSettles) {
  keeper_wait w;
  w.add();
  w.add();
  int calls = 0;
  bool all = true;
  for (int i = 0; i < 3; ++i) {
    w.on_done([&](bool ok) {
      ++calls;
      all = all && ok;
    });
  }
  w.finish(true);
  EXPECT_EQ(calls, 0);
  w.finish(false);
  EXPECT_EQ(calls, 3);
  EXPECT_FALSE(all) << "one change was not committed";
  w.on_done([&](bool ok) { calls += ok ? 100 : 10; });
  EXPECT_EQ(calls, 13) << "at once, with the outcome, when nothing is pending";
}

// A kept publisher's QoS 2 message is numbered: sent again (its PUBREC was
// lost with a failed node), it is routed again under its number, and a
// session that took it does not take it twice.
TEST_F(EngineKeeper, AKeptPublishersQos2ResendIsRoutedAgainAndTakenOnce) {
  auto& sub = bench_.persistent("local");
  sub.subscribe("t", qos::exactly_once);
  auto& pub = persistent("kept");
  pub.publish("t", "once", qos::exactly_once, 4);
  keeper_.finish_all();
  EXPECT_EQ(pub.expect<codec::pubrec_packet>().code, reason_code::success);
  auto first = sub.publishes();
  ASSERT_EQ(first.size(), 1u);
  sub.pubrec(first[0].packet_id);

  const auto duplicates = dropped(drop_reason::duplicate);
  auto again = make_publish("t", "once", qos::exactly_once, 4);
  again.dup = true;
  pub.publish(std::move(again));
  keeper_.finish_all();
  EXPECT_EQ(pub.expect<codec::pubrec_packet>().code, reason_code::success);
  EXPECT_EQ(dropped(drop_reason::duplicate), duplicates + 1)
      << "routed again, and the session that took it knew it";
  for (const auto& p : sub.received()) {
    EXPECT_FALSE(std::holds_alternative<codec::publish_packet>(p)) << "taken twice: " << describe(p);
  }
}

TEST_F(EngineKeeper, AFailedNumberedQos2PublishClosesTheConnectionRatherThanRefuseIt) {
  auto& sub = bench_.persistent("local");
  sub.subscribe("t", qos::exactly_once);
  auto& pub = persistent("kept");
  pub.publish("t", "m", qos::exactly_once, 9);
  keeper_.finish_all(/*committed=*/false);
  const auto got = pub.received();
  ASSERT_FALSE(got.empty());
  EXPECT_FALSE(std::holds_alternative<codec::pubrec_packet>(got.front()))
      << "a 0x97 PUBREC would end the exchange: the retry would be another message";
  EXPECT_TRUE(pub.closing()) << "closed: the client sends it again under packet id 9";
  EXPECT_TRUE(sub.publishes().empty())
      << "delivered under a number that was never kept: the resend gets another number "
         "wherever the session is served next, and is delivered again";
}

// A numbered QoS 2 message reaches no session before its number is committed
// with its packet id in the publisher's log; the client's next QoS 2 message
// waits behind it, in order.
TEST_F(EngineKeeper, ANumberedQos2MessageIsRoutedOnlyOnceItsNumberIsCommitted) {
  auto& sub = bench_.persistent("local");
  sub.subscribe("t", qos::exactly_once);
  auto& pub = persistent("kept");
  pub.publish("t", "first", qos::exactly_once, 1);
  pub.publish("t", "second", qos::exactly_once, 2);
  EXPECT_TRUE(sub.publishes().empty()) << "routed before its number was committed";
  pub.expect_nothing();
  ASSERT_TRUE(keeper_.finish_first()) << "the first message's number";
  auto got = sub.publishes();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, "first");
  keeper_.finish_all();  // the second's number once the first was settled
  keeper_.finish_all();
  EXPECT_EQ(pub.expect<codec::pubrec_packet>().packet_id, 1);
  EXPECT_EQ(pub.expect<codec::pubrec_packet>().packet_id, 2);
  got = sub.publishes();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, "second");
}

// The subscriber's copy (and with it the number it took) was not kept: the
// publisher's resend under that number must be taken again, not dropped as a
// duplicate of a copy that is nowhere (the message would be acknowledged and
// lost).
TEST_F(EngineKeeper, ANumberWhoseCopyWasNotKeptIsTakenAgainOnTheResend) {
  keeper_.commit_at_once(true);
  auto& sub = bench_.persistent("kept-subscriber");
  sub.subscribe("t", qos::exactly_once);
  sub.disconnect();
  auto& pub = bench_.persistent("kept");
  keeper_.commit_at_once(false);
  pub.publish("t", "m", qos::exactly_once, 9);
  ASSERT_TRUE(keeper_.finish_first()) << "its number is kept; routed then";
  keeper_.finish_all(/*committed=*/false);  // the subscriber's copy is not
  EXPECT_TRUE(pub.closing()) << "not kept everywhere: the client sends it again";

  const auto duplicates = dropped(drop_reason::duplicate);
  auto& again = persistent("kept");
  auto resend = make_publish("t", "m", qos::exactly_once, 9);
  resend.dup = true;
  again.publish(std::move(resend));
  keeper_.finish_all();  // the session's sync point: routed after it
  keeper_.finish_all();  // the subscriber's copy
  EXPECT_EQ(again.expect<codec::pubrec_packet>().code, reason_code::success);
  EXPECT_EQ(dropped(drop_reason::duplicate), duplicates)
      << "the subscriber dropped the resend as one it had, though its copy was never kept";
}

}  // namespace
}  // namespace ringmq::core
