// A session's changes and snapshots as log entries: they round-trip, apply
// the way the store does, and bytes from a peer that touch another session's
// records (or are not a change at all) are refused.

#include "cluster/replication/session_change.hpp"

#include <gtest/gtest.h>

#include "storage/keys.hpp"

namespace ringmq::cluster::replication {
namespace {

using storage::column;
using storage::write_batch;

std::string key_of(std::string_view client, std::string_view rest = {}) {
  std::string k;
  storage::keys::append_string(k, client);
  k.append(rest);
  return k;
}

TEST(SessionChange, AChangeRoundTripsAndAppliesLikeTheStore) {
  write_batch b;
  b.put(column::sessions, key_of("dev-1"), "record");
  b.put(column::queue, key_of("dev-1", "\x01"), "m1");
  b.put(column::queue, key_of("dev-1", "\x02"), "m2");
  b.erase(column::queue, key_of("dev-1", "\x01"));
  write_batch decoded;
  ASSERT_TRUE(decode_change(encode_change(b), "dev-1", decoded));
  ASSERT_EQ(decoded.size(), 4u);
  session_records r;
  apply_change(decoded, r);
  EXPECT_EQ(r.size(), 2u);
  EXPECT_EQ(r.at({column::queue, key_of("dev-1", "\x02")}), "m2");

  write_batch end;
  end.erase_prefix(column::queue, key_of("dev-1"));
  apply_change(end, r);
  EXPECT_EQ(r.size(), 1u) << "the prefix erase leaves the other columns";
}

TEST(SessionChange, AChangeOnAnotherSessionsRecordsIsRefused) {
  write_batch b;
  b.put(column::sessions, key_of("dev-1"), "ok");
  b.put(column::queue, key_of("dev-2", "\x01"), "not this session's");
  write_batch out;
  EXPECT_FALSE(decode_change(encode_change(b), "dev-1", out));
  write_batch retained;
  retained.put(column::retained, "a/b", "not a session column");
  EXPECT_FALSE(decode_change(encode_change(retained), "a/b", out));
  // A client id that is a prefix of another's is a different session.
  write_batch longer;
  longer.put(column::sessions, key_of("dev-10"), "x");
  EXPECT_FALSE(decode_change(encode_change(longer), "dev-1", out));
}

TEST(SessionChange, GarbageIsNotAChangeOrASnapshot) {
  write_batch out;
  session_records records;
  EXPECT_FALSE(decode_change("\xff\xff\xff", "dev-1", out));
  EXPECT_FALSE(decode_snapshot("\xff\xff\xff", "dev-1", records));
}

TEST(SessionChange, ASnapshotRoundTripsAndReplacesTheSessionsRecords) {
  session_records r;
  r[{column::sessions, key_of("dev-1")}] = "s";
  r[{column::subscriptions, key_of("dev-1", "a/#")}] = "sub";
  session_records back;
  ASSERT_TRUE(decode_snapshot(encode_snapshot(r), "dev-1", back));
  EXPECT_EQ(back, r);

  const auto b = replace_batch("dev-1", r);
  std::size_t erases = 0, puts = 0;
  for (const auto& op : b.operations()) {
    if (op.what == write_batch::operation::kind::erase_prefix) {
      ++erases;
      EXPECT_EQ(op.key, key_of("dev-1"));
    } else {
      ++puts;
    }
  }
  EXPECT_EQ(erases, 7u) << "every session column (sessions, subscriptions, queue, inflight, inbound_qos2, wills, dedup)";
  EXPECT_EQ(puts, 2u);
}

TEST(SessionChange, SessionOfReadsTheClientComponent) {
  EXPECT_EQ(session_of(column::inflight, key_of("c", "12345678")), "c");
  EXPECT_FALSE(session_of(column::retained, key_of("c")));
  EXPECT_FALSE(session_of(column::queue, std::string("\x00", 1)));
}

}  // namespace
}  // namespace ringmq::cluster::replication
