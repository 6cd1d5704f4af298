#include "tests/integration/capture_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "broker/codec/encoder.hpp"

namespace ringmq::testing {
namespace {

using namespace ringmq::codec;

void send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const auto n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    // The client may already be gone; what it missed is not this server's concern.
    if (n <= 0) return;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

[[noreturn]] void fail(const char* what) {
  throw std::runtime_error(std::string("capture_server: ") + what + ": " + std::strerror(errno));
}

// What one connection has seen so far, to decide the answers.
struct session_state {
  bool subscribed = false;
  bool pinged = false;
  bool published = false;
  bool disconnected = false;
  std::string topic;  // where the one PUBLISH goes
  codec::qos granted = qos::at_most_once;
  std::vector<std::uint32_t> subscription_identifiers;
};

class responder {
 public:
  responder(int fd, const capture_options& options, captured_connection& conn)
      : fd_(fd), options_(options), conn_(conn) {}

  void on_packet(const packet& p, protocol_version version) {
    version_ = version;
    std::visit([this](const auto& packet) { handle(packet); }, p);
    maybe_publish();
  }

  bool disconnected() const noexcept { return state_.disconnected; }

 private:
  void send(const packet& p) {
    const auto bytes = encode(p, version_);
    conn_.server_bytes += bytes;
    conn_.server_packets.push_back(bytes);
    send_all(fd_, bytes);
  }

  void handle(const connect_packet& p) {
    conn_.version = p.version;
    connack_packet ack;
    if (is_v5(p.version)) {
      // Announce Topic Alias support, so clients asked to use aliases may do so.
      ack.props.topic_alias_maximum = 10;
      if (p.client_id.empty()) ack.props.assigned_client_identifier = "ringmq-capture";
    }
    send(ack);
  }
  void handle(const publish_packet& p) {
    if (p.qos == qos::at_least_once) send(puback_packet{.packet_id = p.packet_id});
    if (p.qos == qos::exactly_once) send(pubrec_packet{.packet_id = p.packet_id});
  }
  void handle(const pubrel_packet& p) { send(pubcomp_packet{.packet_id = p.packet_id}); }
  // The client's PUBREC for the server's QoS 2 PUBLISH.
  void handle(const pubrec_packet& p) { send(pubrel_packet{.packet_id = p.packet_id}); }
  void handle(const subscribe_packet& p) {
    suback_packet ack{.packet_id = p.packet_id};
    for (const auto& s : p.subscriptions) {
      ack.codes.push_back(static_cast<reason_code>(s.options.max_qos));
    }
    if (!state_.subscribed && !p.subscriptions.empty()) {
      state_.subscribed = true;
      state_.topic = capture_server::topic_for_filter(p.subscriptions.front().filter);
      state_.granted = p.subscriptions.front().options.max_qos;
      state_.subscription_identifiers = p.props.subscription_identifiers;
    }
    send(ack);
  }
  void handle(const unsubscribe_packet& p) {
    unsuback_packet ack{.packet_id = p.packet_id};
    if (is_v5(version_)) ack.codes.assign(p.filters.size(), reason_code::success);
    send(ack);
  }
  void handle(const pingreq_packet&) {
    state_.pinged = true;
    send(pingresp_packet{});
  }
  void handle(const disconnect_packet&) { state_.disconnected = true; }
  // Acknowledgements of the server's own PUBLISH, and packets only servers send.
  template <class Other>
  void handle(const Other&) {}

  void maybe_publish() {
    if (state_.published || !state_.subscribed || state_.disconnected) return;
    if (options_.trigger == publish_trigger::never) return;
    if (options_.trigger == publish_trigger::after_pingreq && !state_.pinged) return;
    publish_packet p;
    p.topic = state_.topic;
    p.payload = options_.payload;
    p.qos = state_.granted;
    if (p.qos != qos::at_most_once) p.packet_id = 1;
    // A 5.0 subscriber is told which of its subscriptions matched.
    if (is_v5(version_)) p.props.subscription_identifiers = state_.subscription_identifiers;
    state_.published = true;
    send(p);
  }

  int fd_;
  const capture_options& options_;
  captured_connection& conn_;
  protocol_version version_ = protocol_version::v3_1_1;
  session_state state_;
};

}  // namespace

capture_server::capture_server(capture_options options) : options_(std::move(options)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) fail("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;  // ephemeral: tests may run in parallel
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) fail("bind");
  if (::listen(listen_fd_, 16) != 0) fail("listen");
  socklen_t length = sizeof addr;
  if (::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
    fail("getsockname");
  }
  port_ = ntohs(addr.sin_port);
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) fail("eventfd");
  acceptor_ = std::thread([this] { accept_loop(); });
}

capture_server::~capture_server() {
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(stop_fd_, &one, sizeof one);
  acceptor_.join();
  // The acceptor has stopped, so nothing adds workers any more.
  for (auto& w : workers_) w.join();
  ::close(listen_fd_);
  ::close(stop_fd_);
}

void capture_server::accept_loop() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::lock_guard lock(mutex_);
    workers_.emplace_back([this, fd] { serve(fd); });
  }
}

void capture_server::serve(int fd) {
  captured_connection conn;
  stream_decoder decoder;
  responder answer(fd, options_, conn);
  // The received bytes not yet attributed to a packet: the decoder consumes
  // its own copy, this one gives each decoded packet its exact wire bytes.
  std::string pending;
  bool open = true;
  bool write_shut = false;

  while (open) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    const int ready = ::poll(fds, 2, static_cast<int>(options_.idle_timeout.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) conn.timed_out = true;
    if (ready <= 0 || fds[1].revents != 0) break;

    auto space = decoder.prepare(4096);
    const auto n = ::recv(fd, space.data(), space.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the client closed the connection (or reset it)
    const auto got = static_cast<std::size_t>(n);
    decoder.commit(got);
    pending.append(space.data(), got);
    conn.client_bytes.append(space.data(), got);

    while (open) {
      auto next = decoder.next();
      captured_packet captured;
      captured.version = decoder.version();
      if (!next) {
        // The failing packet is at the front of `pending` when its header was readable.
        captured.error = next.error();
        auto header = parse_fixed_header(pending);
        const bool whole = header && *header && (*header)->packet_size() <= pending.size();
        captured.raw = whole ? pending.substr(0, (*header)->packet_size()) : pending;
        conn.packets.push_back(std::move(captured));
        open = false;
        break;
      }
      if (!*next) break;
      const auto size = (**parse_fixed_header(pending)).packet_size();
      captured.raw = pending.substr(0, size);
      pending.erase(0, size);
      answer.on_packet(**next, captured.version);
      captured.decoded = std::move(**next);
      conn.packets.push_back(std::move(captured));
    }
    // After DISCONNECT the server closes its side; reading on until the client's
    // EOF still catches anything a client sends after it (which it must not).
    if (answer.disconnected() && !write_shut) {
      ::shutdown(fd, SHUT_WR);
      write_shut = true;
    }
  }
  ::close(fd);

  std::lock_guard lock(mutex_);
  connections_.push_back(std::move(conn));
  ended_.notify_all();
}

bool capture_server::wait_for_connections(std::size_t count, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return ended_.wait_for(lock, timeout, [&] { return connections_.size() >= count; });
}

std::vector<captured_connection> capture_server::connections() const {
  std::lock_guard lock(mutex_);
  return connections_;
}

std::string capture_server::topic_for_filter(std::string_view filter) {
  // A shared subscription "$share/<group>/<filter>" receives on <filter>'s topics.
  if (filter.starts_with("$share/")) {
    const auto slash = filter.find('/', 7);
    filter = slash == std::string_view::npos ? std::string_view{} : filter.substr(slash + 1);
  }
  std::string topic;
  std::size_t start = 0;
  while (true) {
    const auto end = filter.find('/', start);
    const auto level = filter.substr(start, end == std::string_view::npos ? end : end - start);
    topic += (level == "+" || level == "#") ? std::string_view("x") : level;
    if (end == std::string_view::npos) break;
    topic += '/';
    start = end + 1;
  }
  return topic;
}

std::string hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 3);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const auto b = static_cast<std::uint8_t>(bytes[i]);
    if (i != 0) out += ' ';
    out += digits[b >> 4];
    out += digits[b & 0x0F];
  }
  return out;
}

}  // namespace ringmq::testing
