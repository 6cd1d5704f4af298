// The replicated logs' messages survive the trip between nodes unchanged.
#include "cluster/replication/log_wire.hpp"

#include <gtest/gtest.h>

namespace ringmq::cluster::replication {
namespace {

std::vector<entry> two_entries() {
  return {{7, {3, 11}, std::string("a\0b", 3)}, {8, {3, 11}, "c"}};
}

TEST(LogWire, EveryKindOfMessageRoundTrips) {
  std::vector<addressed> batch;
  batch.push_back({"c1", prepare{{4, 9}}, {9, 10, 11}, 2});
  batch.push_back({"c2", promise{{4, 9}, true, {4, 9}, {3, 11}, 6, "snap", two_entries()}, {}, 0});
  accept install;
  install.gen = {5, 10};
  install.install = true;
  install.base_seq = 6;
  install.snapshot = "snapshot bytes";
  install.entries = two_entries();
  install.commit = 7;
  batch.push_back({"c3", install, {9, 10}, 1});
  accept append;
  append.gen = {5, 10};
  append.prev = 8;
  append.entries = {{9, {5, 10}, "d"}};
  append.commit = 8;
  batch.push_back({"", append, {}, 0});
  batch.push_back({"c4", accepted{{5, 10}, false, {6, 2}, 12, true, 8}, {}, 0});
  batch.push_back({"c5", handover{{7, 11}}, {}, 0});
  batch.push_back({"c6", handover_request{}, {}, 0});

  std::vector<addressed> back;
  ASSERT_TRUE(decode_batch(encode_batch(batch), back));
  ASSERT_EQ(back.size(), batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    EXPECT_EQ(back[i].client, batch[i].client) << i;
    EXPECT_EQ(back[i].replicas, batch[i].replicas) << i;
    EXPECT_EQ(back[i].write_quorum, batch[i].write_quorum) << i;
    ASSERT_EQ(back[i].msg.index(), batch[i].msg.index()) << i;
  }
  EXPECT_EQ(std::get<prepare>(back[0].msg).gen, (ballot{4, 9}));
  const auto& p = std::get<promise>(back[1].msg);
  EXPECT_TRUE(p.ok);
  EXPECT_EQ(p.log_gen, (ballot{3, 11}));
  EXPECT_EQ(p.base_seq, 6u);
  EXPECT_EQ(p.snapshot, "snap");
  EXPECT_EQ(p.entries, two_entries());
  const auto& i = std::get<accept>(back[2].msg);
  EXPECT_TRUE(i.install);
  EXPECT_EQ(i.base_seq, 6u);
  EXPECT_EQ(i.snapshot, "snapshot bytes");
  EXPECT_EQ(i.entries, two_entries());
  EXPECT_EQ(i.commit, 7u);
  const auto& a = std::get<accept>(back[3].msg);
  EXPECT_FALSE(a.install);
  EXPECT_EQ(a.prev, 8u);
  EXPECT_EQ(a.entries, append.entries);
  const auto& r = std::get<accepted>(back[4].msg);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.promised, (ballot{6, 2}));
  EXPECT_EQ(r.last, 12u);
  EXPECT_TRUE(r.needs_install);
  EXPECT_EQ(r.known_commit, 8u);
  EXPECT_EQ(std::get<handover>(back[5].msg).gen, (ballot{7, 11}));
  EXPECT_TRUE(std::holds_alternative<handover_request>(back[6].msg));
}

TEST(LogWire, GarbageAndMessagesWithoutAKindAreRefused) {
  std::vector<addressed> out;
  EXPECT_FALSE(decode_batch("\xff\xff\xff", out));
  // A message naming a session but carrying nothing: a peer of another version.
  const std::string empty_message = "\x0a\x04\x0a\x02" "c1";
  EXPECT_FALSE(decode_batch(empty_message, out));
  EXPECT_TRUE(decode_batch("", out));
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace ringmq::cluster::replication
