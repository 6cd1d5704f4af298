// The window of numbered QoS 2 messages a session took from one publisher:
// the same number and packet id again is a resend, refused; anything else
// is taken, and what it remembers survives its encoding.

#include "broker/core/dedup_window.hpp"

#include <gtest/gtest.h>

namespace ringmq::core {
namespace {

TEST(DedupWindow, TheSameNumberAndPacketIdIsTakenOnce) {
  dedup_window w;
  EXPECT_TRUE(w.admit(1, 10));
  EXPECT_TRUE(w.admit(2, 11));
  EXPECT_FALSE(w.admit(1, 10)) << "a resend of an older one";
  EXPECT_FALSE(w.admit(2, 11)) << "a resend of the latest";
  EXPECT_EQ(w.top(), 2u);
}

TEST(DedupWindow, NumbersMayArriveOutOfOrderWithinTheSpan) {
  dedup_window w;
  EXPECT_TRUE(w.admit(5, 1));
  EXPECT_TRUE(w.admit(3, 2)) << "below the top, not taken yet";
  EXPECT_FALSE(w.admit(3, 2));
  EXPECT_TRUE(w.admit(4, 3));
  EXPECT_TRUE(w.admit(100, 4)) << "a jump clears what fell out of the span";
  EXPECT_TRUE(w.admit(99, 5));
  EXPECT_FALSE(w.admit(99, 5));
}

TEST(DedupWindow, AnotherPacketIdUnderATakenNumberIsAnotherMessage) {
  // A node that died before the number was written gave it again to a
  // message the client sent first: taken (at worst a duplicate, never lost).
  dedup_window w;
  EXPECT_TRUE(w.admit(7, 1));
  EXPECT_TRUE(w.admit(7, 2));
  EXPECT_FALSE(w.admit(7, 2));
}

TEST(DedupWindow, FurtherBackThanTheSpanIsTaken) {
  dedup_window w;
  EXPECT_TRUE(w.admit(1, 1));
  EXPECT_TRUE(w.admit(1 + dedup_window::span, 2));
  EXPECT_TRUE(w.admit(1, 1)) << "forgotten: taken rather than lost";
  EXPECT_TRUE(w.admit(2, 1)) << "the oldest number still in the span";
  EXPECT_FALSE(w.admit(2, 1));
}

// A number whose copy was not kept (its write failed) is taken back: its
// resend must be taken, or the message would be acknowledged and nowhere.
TEST(DedupWindow, AForgottenNumberIsTakenAgainAndOnlyWithItsOwnPacketId) {
  dedup_window w;
  EXPECT_TRUE(w.admit(5, 50));
  EXPECT_TRUE(w.admit(6, 60));
  w.forget(5, 51);  // another packet id: not this number's take
  EXPECT_FALSE(w.admit(5, 50));
  w.forget(5, 50);
  EXPECT_TRUE(w.admit(5, 50)) << "taken back, so taken again";
  EXPECT_FALSE(w.admit(5, 50));
  EXPECT_FALSE(w.admit(6, 60)) << "the others stay taken";
  w.forget(6, 60);
  EXPECT_TRUE(w.admit(6, 60)) << "the top number too";
  w.forget(100, 1);  // beyond the top: nothing to take back
  EXPECT_EQ(w.top(), 6u);
  EXPECT_TRUE(w.admit(6 + dedup_window::span, 7));
  w.forget(6, 60);  // older than the span: nothing either
  EXPECT_TRUE(w.admit(6, 60)) << "further back than the span is always taken";
}

TEST(DedupWindow, EncodingKeepsEverythingItRemembers) {
  dedup_window w;
  for (std::uint64_t n = 1; n <= 70; n += 3) EXPECT_TRUE(w.admit(n, static_cast<std::uint16_t>(n + 1000)));
  dedup_window back;
  ASSERT_TRUE(back.decode(w.top(), w.encode_ids()));
  EXPECT_EQ(back.top(), w.top());
  for (std::uint64_t n = 1; n <= 70; n += 3) {
    EXPECT_EQ(back.admit(n, static_cast<std::uint16_t>(n + 1000)),
              w.top() - n >= dedup_window::span)
        << n;
  }
  dedup_window bad;
  EXPECT_FALSE(bad.decode(5, "short"));
  EXPECT_EQ(bad.top(), 0u);
}

}  // namespace
}  // namespace ringmq::core
