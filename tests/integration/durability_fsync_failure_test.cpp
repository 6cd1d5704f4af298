// A failed fsync: strace attaches to the running broker and makes every
// fdatasync/fsync fail with EIO (syscall fault injection). After a failed
// fsync the page cache can no longer be trusted to reach the disk, so the
// broker must not acknowledge the write, must not go on as if nothing
// happened (a node that stays "ready" while every durable write fails), and
// must stop with a clear log line; started again on the same data directory,
// it delivers every message it acknowledged before.

#include <gtest/gtest.h>

#include "tests/support/durability_support.hpp"

namespace ringmq::testing::durability {
namespace {

using codec::protocol_version;
using codec::qos;
using codec::reason_code;

codec::publish_packet numbered(std::uint32_t n) {
  codec::publish_packet p;
  p.topic = "fsync/t";
  p.payload = numbered_payload("fsync", n);
  p.qos = qos::at_least_once;
  p.packet_id = static_cast<std::uint16_t>(n);
  return p;
}

TEST(DurabilityFsyncFailure, TheNodeStopsWithoutAcknowledgingAndLosesNothingItAcknowledged) {
  // strace is one of ./dev's packages: without it this test fails, it is not skipped.
  ASSERT_EQ(std::system("strace -V >/dev/null 2>&1"), 0) << "strace is needed (./dev setup)";
  scratch_dir dir;
  ASSERT_FALSE(dir.path().empty());
  const auto data = dir / "data";
  const std::vector<std::string> settings{"storage.durability=sync"};
  constexpr std::uint32_t before = 50;
  std::vector<ack_state> states(1, ack_state::none);

  recording_subscriber offline(persistent_connect("fsync-offline", protocol_version::v5, 3600));
  {
    node_process node(data, settings);
    ASSERT_TRUE(node.ready()) << node.describe();
    ASSERT_TRUE(offline.connect(node.port())) << offline.error();
    ASSERT_TRUE(offline.subscribe({{"fsync/#", qos::at_least_once}})) << offline.error();
    offline.disconnect();

    mqtt_socket publisher;
    ASSERT_TRUE(publisher.connect_tcp(node.port())) << publisher.error();
    ASSERT_TRUE(publisher.handshake(clean_connect("fsync-pub", protocol_version::v5)))
        << publisher.error();
    for (std::uint32_t n = 1; n <= before; ++n) {
      const auto code = publish_one(publisher, numbered(n));
      ASSERT_TRUE(code && *code == reason_code::success) << node.log_tail();
      states.push_back(ack_state::accepted);
    }

    // Every thread of the broker traced before the next write ("Process N
    // attached with M threads" comes once all are).
    const auto pid = node.process().pid();
    background_process tracer({"strace", "-f", "-p", std::to_string(pid), "-o", "/dev/null",
                               "-e", "trace=fsync,fdatasync", "-e", "inject=fsync:error=EIO",
                               "-e", "inject=fdatasync:error=EIO"});
    ASSERT_TRUE(tracer.started()) << tracer.start_error();
    ASSERT_TRUE(tracer.wait_for_err(" attached", milliseconds(10'000))) << tracer.describe();

    const auto code = publish_one(publisher, numbered(before + 1), milliseconds(10'000));
    EXPECT_FALSE(code && is_success(*code)) << "a message whose fsync failed was acknowledged";
    states.push_back(ack_state::none);
    const auto status = node.wait_exit(milliseconds(15'000));
    ASSERT_TRUE(status) << "the broker went on after a failed fsync\n" << node.log_tail();
    EXPECT_EQ(status->signal, 0) << status->describe();
    EXPECT_EQ(status->exit_code, 1) << status->describe();
    EXPECT_NE(node.log().find("store failed:"), std::string::npos) << node.log_tail();
  }

  // Started again: everything acknowledged before the failure is there.
  node_process node(data, settings);
  ASSERT_TRUE(node.ready()) << node.describe();
  const auto ack = offline.connect(node.port());
  ASSERT_TRUE(ack) << offline.error();
  EXPECT_TRUE(ack->session_present);
  auto received_all = [&] { return check_stream(offline.deliveries(), "fsync", states, false).missing == 0; };
  ASSERT_EQ(offline.pump(received_all, milliseconds(15'000)), recording_subscriber::pump_result::done)
      << check_stream(offline.deliveries(), "fsync", states, false).problems << "\n"
      << node.log_tail();
  offline.disconnect();
}

}  // namespace
}  // namespace ringmq::testing::durability
