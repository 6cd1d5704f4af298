// Settling forwarded messages: a batch is told settled only once it and every
// batch before it are durable, failures reach the sender once, and a sender's
// restart forgets what its earlier process had pending.

#include <gtest/gtest.h>

#include "cluster/forward_settlement.hpp"

namespace ringmq::cluster {
namespace {

using seqs = std::vector<std::uint64_t>;

TEST(ForwardSettlement, NothingToTellUntilTheFirstBatchIsDurable) {
  forward_settlement s;
  std::uint64_t settled = 0;
  seqs failed;
  EXPECT_FALSE(s.take(settled, failed));
  const auto a = s.begin(3);
  EXPECT_FALSE(s.take(settled, failed)) << "begun is not settled";
  s.finish(a);
  ASSERT_TRUE(s.take(settled, failed));
  EXPECT_EQ(settled, 3u);
  EXPECT_TRUE(failed.empty());
  EXPECT_FALSE(s.take(settled, failed)) << "told once";
  EXPECT_EQ(s.settled(), 3u);
}

TEST(ForwardSettlement, ALaterBatchDurableFirstWaitsForTheEarlierOne) {
  forward_settlement s;
  const auto a = s.begin(2);
  const auto b = s.begin(5);
  s.finish(b);
  std::uint64_t settled = 0;
  seqs failed;
  EXPECT_FALSE(s.take(settled, failed)) << "message 1 or 2 may still be lost";
  EXPECT_EQ(s.pending(), 2u);
  s.finish(a);
  ASSERT_TRUE(s.take(settled, failed));
  EXPECT_EQ(settled, 5u);
  EXPECT_EQ(s.pending(), 0u);
}

TEST(ForwardSettlement, FailuresAreToldWithTheSettledPointThatCoversThem) {
  forward_settlement s;
  const auto a = s.begin(4);
  const auto b = s.begin(6);
  s.finish(b, {5});
  s.finish(a, {1, 3});
  std::uint64_t settled = 0;
  seqs failed;
  ASSERT_TRUE(s.take(settled, failed));
  EXPECT_EQ(settled, 6u);
  EXPECT_EQ(failed, (seqs{1, 3, 5}));
  EXPECT_FALSE(s.take(settled, failed));
}

TEST(ForwardSettlement, ASecondFinishOfOneBatchChangesNothing) {
  forward_settlement s;
  const auto a = s.begin(1);
  s.finish(a);
  s.finish(a, {1});
  std::uint64_t settled = 0;
  seqs failed;
  ASSERT_TRUE(s.take(settled, failed));
  EXPECT_TRUE(failed.empty()) << "the batch was settled as kept";
}

TEST(ForwardSettlement, ResetForgetsTheEarlierProcessOfTheSender) {
  forward_settlement s;
  const auto old = s.begin(100);
  s.reset();
  EXPECT_EQ(s.settled(), 0u);
  const auto fresh = s.begin(1);
  s.finish(old);
  std::uint64_t settled = 0;
  seqs failed;
  EXPECT_FALSE(s.take(settled, failed)) << "a late finish of the old process settles nothing";
  s.finish(fresh);
  ASSERT_TRUE(s.take(settled, failed));
  EXPECT_EQ(settled, 1u);
}

}  // namespace
}  // namespace ringmq::cluster
