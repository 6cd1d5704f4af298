// A full disk: the data directory is on a 16 MiB tmpfs the test mounts (it
// runs as root) and fills with a file until ENOSPC. Then new QoS 1/2
// publishes are refused (MQTT 5: PUBACK / PUBREC 0x97 Quota exceeded; 3.1.1
// has no code for it: the connection is closed), the broker logs an error
// naming the store, messages stored before the disk filled are still
// delivered to a subscriber that reconnects, and once the file is removed the
// broker takes QoS 1 publishes again by itself. Finally the broker is killed
// and started again: a subscriber that stayed offline through all of it gets
// every message that was ever acknowledged.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "tests/support/durability_support.hpp"

namespace ringmq::testing::durability {
namespace {

using codec::protocol_version;
using codec::qos;
using codec::reason_code;

// A tmpfs mounted for the length of a test, unmounted (lazily if still busy)
// at the end whatever happened.
class tmpfs_mount {
 public:
  tmpfs_mount(std::string path, std::string size) : path_(std::move(path)) {
    std::filesystem::create_directories(path_);
    const auto options = "size=" + size + ",mode=0755";
    if (::mount("tmpfs", path_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0) {
      error_ = std::string("mount -t tmpfs: ") + std::strerror(errno);
      return;
    }
    mounted_ = true;
  }
  tmpfs_mount(const tmpfs_mount&) = delete;
  tmpfs_mount& operator=(const tmpfs_mount&) = delete;
  ~tmpfs_mount() {
    if (mounted_ && ::umount2(path_.c_str(), 0) != 0) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const noexcept { return mounted_; }
  const std::string& error() const noexcept { return error_; }
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
  bool mounted_ = false;
  std::string error_;
};

// Writes `path` until the filesystem is full; the bytes written, or -1 when
// it failed for another reason than ENOSPC.
long long fill_up(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  long long total = 0;
  const std::string chunk(64 * 1024, 'x');
  // Big chunks first, then single bytes: nothing is left, not even part of a page.
  for (std::size_t size : {chunk.size(), std::size_t{512}, std::size_t{1}}) {
    for (;;) {
      const auto n = ::write(fd, chunk.data(), size);
      if (n > 0) {
        total += n;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno != ENOSPC) {
        ::close(fd);
        return -1;
      }
      break;
    }
  }
  ::close(fd);
  return total;
}

codec::publish_packet numbered(qos q, std::uint32_t n, std::uint16_t packet_id) {
  codec::publish_packet p;
  p.topic = "full/t";
  p.payload = numbered_payload("full", n);
  p.qos = q;
  p.packet_id = packet_id;
  return p;
}

TEST(DurabilityDiskFull, RefusesNewWorkKeepsDeliveringAndRecoversWhenSpaceReturns) {
  scratch_dir dir;
  ASSERT_FALSE(dir.path().empty());
  tmpfs_mount disk(dir / "disk", "16m");
  if (!disk.mounted()) {
    GTEST_SKIP() << "cannot mount a tmpfs (" << disk.error()
                 << "): the test needs root or CAP_SYS_ADMIN";
  }
  const auto data = disk.path() + "/data";
  const auto filler = disk.path() + "/filler";
  const std::vector<std::string> settings{"storage.durability=sync",
                                          "mqtt.max_queued_messages=100000"};

  // What every message got: states[n] for "full:<n>".
  std::vector<ack_state> states(1, ack_state::none);
  auto record = [&](std::uint32_t n, std::optional<reason_code> code) {
    if (states.size() <= n) states.resize(n + 1, ack_state::none);
    if (code) states[n] = is_success(*code) ? ack_state::accepted : ack_state::refused;
  };
  std::uint32_t next = 1;
  std::uint16_t packet_id = 0;
  auto next_id = [&] {
    if (++packet_id == 0) packet_id = 1;
    return packet_id;
  };

  recording_subscriber online(persistent_connect("full-online", protocol_version::v5, 3600));
  recording_subscriber offline(persistent_connect("full-offline", protocol_version::v3_1_1));
  auto received_all = [&](const recording_subscriber& sub) {
    return [&] {
      return check_stream(sub.deliveries(), "full", states, false).missing == 0;
    };
  };

  {
    node_process node(data, settings);
    ASSERT_TRUE(node.ready()) << node.describe();
    for (auto* sub : {&online, &offline}) {
      ASSERT_TRUE(sub->connect(node.port())) << sub->error();
      ASSERT_TRUE(sub->subscribe({{"full/#", qos::at_least_once}})) << sub->error();
      sub->disconnect();
    }
    mqtt_socket publisher;
    ASSERT_TRUE(publisher.connect_tcp(node.port())) << publisher.error();
    ASSERT_TRUE(publisher.handshake(clean_connect("full-pub", protocol_version::v5)))
        << publisher.error();
    // Stored before the disk fills.
    for (int i = 0; i < 100; ++i, ++next) {
      const auto code = publish_one(publisher, numbered(qos::at_least_once, next, next_id()));
      record(next, code);
      ASSERT_TRUE(code && *code == reason_code::success) << node.log_tail();
    }

    const auto filled = fill_up(filler);
    ASSERT_GT(filled, 0) << "could not fill " << filler;

    // The first writes may still fit in a page the store already has; then
    // one fails, and from then on every new QoS 1/2 publish is refused.
    std::optional<reason_code> refusal;
    for (int i = 0; i < 5'000 && !refusal; ++i, ++next) {
      const auto code = publish_one(publisher, numbered(qos::at_least_once, next, next_id()));
      ASSERT_TRUE(code) << "no PUBACK: " << publisher.error() << "\n" << node.log_tail();
      record(next, code);
      if (!is_success(*code)) refusal = code;
    }
    ASSERT_TRUE(refusal) << "the broker accepted 5000 messages on a full disk\n"
                         << node.log_tail();
    EXPECT_EQ(*refusal, reason_code::quota_exceeded);
    EXPECT_TRUE(node.wait_for_log("store not writable")) << node.log_tail();
    EXPECT_NE(node.log().find("disk full"), std::string::npos);

    // QoS 2 from MQTT 5: PUBREC 0x97.
    {
      const auto code = publish_one(publisher, numbered(qos::exactly_once, next, next_id()));
      record(next++, code);
      ASSERT_TRUE(code) << publisher.error();
      EXPECT_EQ(*code, reason_code::quota_exceeded);
    }
    // 3.1.1 cannot be told: the connection is closed, and the client will send again.
    {
      mqtt_socket old;
      ASSERT_TRUE(old.connect_tcp(node.port())) << old.error();
      ASSERT_TRUE(old.handshake(clean_connect("full-pub-311", protocol_version::v3_1_1)))
          << old.error();
      const auto code = publish_one(old, numbered(qos::at_least_once, next++, 1));
      EXPECT_FALSE(code) << "a 3.1.1 publish was acknowledged on a full disk";
      EXPECT_TRUE(old.wait_closed(milliseconds(5'000))) << node.log_tail();
    }

    // What was stored before is still delivered, to a subscriber that comes back now.
    {
      const auto ack = online.connect(node.port());
      ASSERT_TRUE(ack) << online.error();
      EXPECT_TRUE(ack->session_present);
      ASSERT_EQ(online.pump(received_all(online), milliseconds(15'000)),
                recording_subscriber::pump_result::done)
          << check_stream(online.deliveries(), "full", states, false).problems << "\n"
          << node.log_tail();
      online.disconnect();
    }

    // Space returns: the broker notices by itself and takes publishes again.
    ASSERT_EQ(::unlink(filler.c_str()), 0) << std::strerror(errno);
    ASSERT_TRUE(node.wait_for_log("store writable again", milliseconds(15'000)))
        << node.log_tail();
    for (int i = 0; i < 100; ++i, ++next) {
      const auto code = publish_one(publisher, numbered(qos::at_least_once, next, next_id()));
      record(next, code);
      ASSERT_TRUE(code && *code == reason_code::success)
          << (code ? "refused" : "no PUBACK") << " after the disk had room again\n"
          << node.log_tail();
    }
    {
      const auto ack = online.connect(node.port());
      ASSERT_TRUE(ack) << online.error();
      ASSERT_EQ(online.pump(received_all(online), milliseconds(15'000)),
                recording_subscriber::pump_result::done)
          << check_stream(online.deliveries(), "full", states, false).problems << "\n"
          << node.log_tail();
      online.disconnect();
    }
    node.kill();
  }

  // Nothing acknowledged was lost on the way: after SIGKILL and a restart the
  // subscriber that stayed offline gets all of it, in order.
  node_process node(data, settings);
  ASSERT_TRUE(node.ready()) << node.describe();
  const auto ack = offline.connect(node.port());
  ASSERT_TRUE(ack) << offline.error();
  EXPECT_TRUE(ack->session_present);
  ASSERT_EQ(offline.pump(received_all(offline), milliseconds(15'000)),
            recording_subscriber::pump_result::done)
      << check_stream(offline.deliveries(), "full", states, false).problems << "\n"
      << node.log_tail();
  const auto check = check_stream(offline.deliveries(), "full", states, false);
  EXPECT_EQ(check.problems, "");
  offline.disconnect();
  const auto status = node.stop();
  ASSERT_TRUE(status) << node.log_tail();
  EXPECT_TRUE(status->clean()) << node.log_tail();
  std::size_t accepted = 0;
  std::size_t refused = 0;
  for (auto s : states) {
    accepted += s == ack_state::accepted ? 1 : 0;
    refused += s == ack_state::refused ? 1 : 0;
  }
  std::cout << "[ disk     ] accepted " << accepted << ", refused " << refused
            << "; delivered to the offline subscriber after the restart: " << check.delivered
            << " (+" << check.duplicates << " again)\n";
}

}  // namespace
}  // namespace ringmq::testing::durability
