// The retained index on its own: store, replace, clear, and matching filters
// with '+', '#' and '$' topics.

#include <gtest/gtest.h>

#include <set>

#include "broker/core/retained_index.hpp"

namespace ringmq::core {
namespace {

message_ptr retained(std::string topic, std::string payload = "p") {
  auto m = std::make_shared<message>();
  m->topic = std::move(topic);
  m->payload = std::move(payload);
  m->retain = true;
  return m;
}

std::set<std::string> match(const retained_index& index, std::string_view filter) {
  std::set<std::string> topics;
  for (const auto& m : index.match(filter)) {
    EXPECT_TRUE(topics.insert(m->topic).second) << "twice: " << m->topic;
  }
  return topics;
}

// The index is not movable (it owns its lock): tests fill one in place.
void fill_sample(retained_index& index) {
  for (const auto* t : {"a", "a/b", "a/b/c", "a/c", "b/b", "/lead", "a//b", "$SYS/x", "$SYS/x/y",
                        "$other"}) {
    index.set(retained(t));
  }
}

TEST(RetainedIndex, StoresReplacesAndClears) {
  retained_index index;
  index.set(retained("a/b", "one"));
  EXPECT_EQ(index.size(), 1u);
  EXPECT_EQ(index.get("a/b")->payload, "one");
  index.set(retained("a/b", "two"));
  EXPECT_EQ(index.size(), 1u);
  EXPECT_EQ(index.get("a/b")->payload, "two");
  EXPECT_FALSE(index.get("a"));
  index.set(retained("a/b", ""));  // an empty payload clears
  EXPECT_EQ(index.size(), 0u);
  EXPECT_FALSE(index.get("a/b"));
  index.set(retained("never", ""));  // clearing nothing is fine
  EXPECT_EQ(index.size(), 0u);
}

TEST(RetainedIndex, EraseKeepsParentsAndChildren) {
  retained_index index;
  index.set(retained("a"));
  index.set(retained("a/b/c"));
  EXPECT_FALSE(index.erase("a/b"));  // a node on the way, with no message
  EXPECT_FALSE(index.erase("x/y"));
  EXPECT_TRUE(index.erase("a"));
  EXPECT_TRUE(index.get("a/b/c"));
  EXPECT_FALSE(index.erase("a"));
  index.set(retained("a"));
  EXPECT_TRUE(index.erase("a/b/c"));  // its emptied nodes are pruned, "a" stays
  EXPECT_TRUE(index.get("a"));
  EXPECT_EQ(match(index, "#"), std::set<std::string>{"a"});
  EXPECT_TRUE(index.erase("a"));
  EXPECT_EQ(index.size(), 0u);
  EXPECT_TRUE(index.match("#").empty());
  // The pruned branch can grow again.
  index.set(retained("a/b/c"));
  EXPECT_EQ(match(index, "a/+/c"), std::set<std::string>{"a/b/c"});
}

TEST(RetainedIndex, ExactFilter) {
  retained_index index;
  fill_sample(index);
  EXPECT_EQ(match(index, "a/b"), std::set<std::string>{"a/b"});
  EXPECT_EQ(match(index, "a//b"), std::set<std::string>{"a//b"});
  EXPECT_EQ(match(index, "/lead"), std::set<std::string>{"/lead"});
  EXPECT_TRUE(match(index, "a/b/c/d").empty());
  EXPECT_TRUE(match(index, "A/b").empty());
}

TEST(RetainedIndex, SingleLevelWildcard) {
  retained_index index;
  fill_sample(index);
  EXPECT_EQ(match(index, "a/+"), (std::set<std::string>{"a/b", "a/c"}));
  EXPECT_EQ(match(index, "+/b"), (std::set<std::string>{"a/b", "b/b"}));
  EXPECT_EQ(match(index, "+"), std::set<std::string>{"a"});
  EXPECT_EQ(match(index, "+/+/+"), (std::set<std::string>{"a/b/c", "a//b"}));
  EXPECT_EQ(match(index, "a/+/b"), std::set<std::string>{"a//b"});  // '+' matches an empty level
  EXPECT_EQ(match(index, "+/lead"), std::set<std::string>{"/lead"});
}

TEST(RetainedIndex, MultiLevelWildcard) {
  retained_index index;
  fill_sample(index);
  EXPECT_EQ(match(index, "a/#"), (std::set<std::string>{"a", "a/b", "a/b/c", "a/c", "a//b"}));
  EXPECT_EQ(match(index, "a/b/#"), (std::set<std::string>{"a/b", "a/b/c"}));
  EXPECT_EQ(match(index, "+/b/#"), (std::set<std::string>{"a/b", "a/b/c", "b/b"}));
  EXPECT_EQ(match(index, "#"),
            (std::set<std::string>{"a", "a/b", "a/b/c", "a/c", "b/b", "/lead", "a//b"}));
}

TEST(RetainedIndex, DollarTopicsOnlyForAnExplicitFirstLevel) {
  // [MQTT-4.7.2-1].
  retained_index index;
  fill_sample(index);
  for (const auto* filter : {"#", "+", "+/x", "+/+", "+/#"}) {
    for (const auto& t : match(index, filter)) EXPECT_NE(t.front(), '$') << filter;
  }
  EXPECT_EQ(match(index, "$SYS/#"), (std::set<std::string>{"$SYS/x", "$SYS/x/y"}));
  EXPECT_EQ(match(index, "$SYS/+"), std::set<std::string>{"$SYS/x"});
  EXPECT_EQ(match(index, "$other"), std::set<std::string>{"$other"});
}

TEST(RetainedIndex, ForEachVisitsEveryMessage) {
  retained_index index;
  fill_sample(index);
  std::set<std::string> seen;
  index.for_each([&](const message_ptr& m) { seen.insert(m->topic); });
  EXPECT_EQ(seen.size(), index.size());
  EXPECT_EQ(seen.size(), 10u);
}

}  // namespace
}  // namespace ringmq::core
