#include "tests/bench/stub_broker.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "broker/codec/decoder.hpp"
#include "broker/codec/encoder.hpp"

namespace ringmq::testing {
namespace {

using namespace ringmq::codec;

[[noreturn]] void fail(const char* what) {
  throw std::runtime_error(std::string("stub_broker: ") + what + ": " + std::strerror(errno));
}

// "prefix/+" matches exactly one level below the prefix; everything else only itself.
bool matches(std::string_view filter, std::string_view topic) {
  if (filter == topic) return true;
  if (!filter.ends_with("/+")) return false;
  const auto prefix = filter.substr(0, filter.size() - 1);  // keeps the '/'
  return topic.starts_with(prefix) &&
         topic.substr(prefix.size()).find('/') == std::string_view::npos;
}

struct route {
  std::string filter;
  codec::qos max_qos = qos::at_most_once;
};

// Where one of our outgoing QoS 1/2 PUBLISHes stands.
enum class outbound_state { awaiting_puback, awaiting_pubrec, awaiting_pubcomp };

struct connection {
  explicit connection(int socket) : fd(socket) {}
  ~connection() { ::close(fd); }
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  int fd;
  int listener = 0;  // which port accepted it
  std::string client_id;
  bool persistent = false;  // clean start 0: its session outlives it
  stream_decoder decoder;
  protocol_version version = protocol_version::v3_1_1;
  bool connected = false;
  bool dead = false;  // closed at the end of the current poll round
  std::vector<route> routes;
  std::string out;  // encoded but not yet written: sockets are non-blocking
  std::uint16_t last_id = 0;
  std::unordered_map<std::uint16_t, outbound_state> outbound;
  // Persistent sessions only: QoS 1/2 messages not yet acknowledged (PUBACK or
  // PUBREC), in delivery order, kept by the session when the connection closes.
  std::vector<std::pair<std::uint16_t, publish_packet>> unacknowledged;
  void acknowledged(std::uint16_t id) {
    std::erase_if(unacknowledged, [id](const auto& m) { return m.first == id; });
  }
  std::unordered_set<std::uint16_t> inbound_qos2;  // PUBREC sent, PUBREL not yet received
};

// A persistent session while no connection has it.
struct offline_session {
  std::vector<route> routes;
  std::vector<publish_packet> queue;  // QoS 1/2 messages, each at its delivery QoS
};

}  // namespace

struct stub_broker::impl {
  stub_options options;
  std::vector<int> listen_fds;  // -1 once killed
  int stop_fd = -1;  // eventfd: wakes the poll() when the stub stops
  std::vector<std::uint16_t> ports;
  std::unique_ptr<std::atomic<std::uint64_t>[]> accepted;
  std::thread thread;

  std::atomic<std::uint64_t> routed{0};
  std::atomic<std::uint64_t> forwarded{0};
  std::atomic<std::uint64_t> errors{0};
  std::atomic<bool> fault_applied{false};
  std::atomic<std::uint64_t> resumed{0};
  mutable std::mutex error_mutex;
  std::string first_error;

  // Touched by the background thread only.
  std::vector<std::unique_ptr<connection>> connections;
  std::unordered_map<std::string, offline_session> offline;

  void run();
  void kill_first_listener();
  void accept_all(int listener);
  void read(connection& c);
  void flush(connection& c);
  void send(connection& c, const packet& p);
  void protocol_error(connection& c, const std::string& what);
  void route_publish(const publish_packet& p);
  void deliver(connection& to, const publish_packet& p, codec::qos q);

  void handle(connection& c, packet&& p);
  void on(connection& c, const connect_packet& p);
  void on(connection& c, const publish_packet& p);
  void on(connection& c, const puback_packet& p);
  void on(connection& c, const pubrec_packet& p);
  void on(connection& c, const pubrel_packet& p);
  void on(connection& c, const pubcomp_packet& p);
  void on(connection& c, const subscribe_packet& p);
  void on(connection& c, const unsubscribe_packet& p);
  void on(connection& c, const pingreq_packet&) { send(c, pingresp_packet{}); }
  void on(connection& c, const disconnect_packet&) { c.dead = true; }
  template <class Other>
  void on(connection& c, const Other&) {
    protocol_error(c, "unexpected packet from a client");
  }
};

void stub_broker::impl::run() {
  std::vector<pollfd> fds;
  const std::size_t listeners = listen_fds.size();
  // With a kill file to watch, poll() wakes up every 10 ms to look for it.
  const int timeout_ms = options.kill_file.empty() ? -1 : 10;
  for (;;) {
    if (!options.kill_file.empty() && listen_fds[0] >= 0 &&
        std::filesystem::exists(options.kill_file)) {
      kill_first_listener();
    }
    fds.clear();
    fds.push_back({stop_fd, POLLIN, 0});
    // A closed listener (fd -1) is ignored by poll().
    for (int fd : listen_fds) fds.push_back({fd, POLLIN, 0});
    for (auto& c : connections) {
      const short events = POLLIN | (c->out.empty() ? 0 : POLLOUT);
      fds.push_back({c->fd, events, 0});
    }
    if (::poll(fds.data(), fds.size(), timeout_ms) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents != 0) return;
    // Only the connections that were polled: accept_all() appends after them.
    const std::size_t polled = fds.size() - 1 - listeners;
    for (std::size_t i = 0; i < polled; ++i) {
      auto& c = *connections[i];
      const auto revents = fds[i + 1 + listeners].revents;
      if (!c.dead && (revents & (POLLIN | POLLHUP | POLLERR))) read(c);
      if (!c.dead && (revents & POLLOUT)) flush(c);
    }
    for (std::size_t l = 0; l < listeners; ++l) {
      if (fds[1 + l].revents & POLLIN) accept_all(static_cast<int>(l));
    }
    // A persistent session outlives its connection, with its routes and what
    // it had not acknowledged.
    for (auto& c : connections) {
      if (!c->dead || !c->connected || !c->persistent) continue;
      auto& session = offline[c->client_id];
      session.routes = c->routes;
      for (auto& m : c->unacknowledged) session.queue.push_back(std::move(m.second));
    }
    std::erase_if(connections, [](const auto& c) { return c->dead; });
  }
}

void stub_broker::impl::kill_first_listener() {
  ::close(listen_fds[0]);
  listen_fds[0] = -1;
  for (auto& c : connections) {
    if (c->listener == 0) c->dead = true;
  }
}

void stub_broker::impl::accept_all(int listener) {
  for (;;) {
    const int fd =
        ::accept4(listen_fds[listener], nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN: no more waiting; anything else: the client is gone
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    connections.push_back(std::make_unique<connection>(fd));
    connections.back()->listener = listener;
    accepted[listener].fetch_add(1);
  }
}

void stub_broker::impl::read(connection& c) {
  auto buffer = c.decoder.prepare(64 * 1024);
  const auto n = ::recv(c.fd, buffer.data(), buffer.size(), 0);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    c.dead = true;
    return;
  }
  c.decoder.commit(static_cast<std::size_t>(n));
  while (!c.dead) {
    auto next = c.decoder.next();
    if (!next) {
      protocol_error(c, "undecodable bytes: " + std::string(next.error().detail));
      return;
    }
    if (!*next) return;
    handle(c, std::move(**next));
  }
}

void stub_broker::impl::flush(connection& c) {
  std::size_t written = 0;
  while (written < c.out.size()) {
    const auto n = ::send(c.fd, c.out.data() + written, c.out.size() - written, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;  // the rest goes out when poll() says POLLOUT
    if (n <= 0) {
      c.dead = true;
      break;
    }
    written += static_cast<std::size_t>(n);
  }
  c.out.erase(0, written);
}

void stub_broker::impl::send(connection& c, const packet& p) {
  encode(p, c.version, c.out);
  flush(c);
}

void stub_broker::impl::protocol_error(connection& c, const std::string& what) {
  errors.fetch_add(1);
  {
    std::lock_guard lock(error_mutex);
    if (first_error.empty()) first_error = what;
  }
  c.dead = true;
}

void stub_broker::impl::handle(connection& c, packet&& p) {
  const bool is_connect = std::holds_alternative<connect_packet>(p);
  if (c.connected == is_connect) {
    protocol_error(c, is_connect ? "second CONNECT" : "a packet before CONNECT");
    return;
  }
  std::visit([&](const auto& packet) { on(c, packet); }, p);
}

void stub_broker::impl::on(connection& c, const connect_packet& p) {
  c.connected = true;
  c.version = p.version;
  c.client_id = p.client_id;
  c.persistent = !p.clean_start;
  const auto it = offline.find(p.client_id);
  if (it == offline.end() || p.clean_start) {
    if (it != offline.end()) offline.erase(it);
    send(c, connack_packet{});
    return;
  }
  auto session = std::move(it->second);
  offline.erase(it);
  c.routes = std::move(session.routes);
  send(c, connack_packet{.session_present = true});
  const auto nth = resumed.fetch_add(1) + 1;
  if (options.fault == stub_fault::lose_queue_of_one && nth == options.fault_at) {
    fault_applied = true;
    return;
  }
  for (const auto& m : session.queue) deliver(c, m, m.qos);
}

void stub_broker::impl::on(connection& c, const publish_packet& p) {
  switch (p.qos) {
    case qos::at_most_once:
      route_publish(p);
      break;
    case qos::at_least_once:
      route_publish(p);
      send(c, puback_packet{.packet_id = p.packet_id});
      break;
    case qos::exactly_once:
      // A retransmission before PUBREL is the same message: routed once only.
      if (c.inbound_qos2.insert(p.packet_id).second) route_publish(p);
      send(c, pubrec_packet{.packet_id = p.packet_id});
      break;
  }
}

void stub_broker::impl::on(connection& c, const pubrel_packet& p) {
  if (c.inbound_qos2.erase(p.packet_id) == 0) {
    protocol_error(c, "PUBREL for packet id " + std::to_string(p.packet_id) + " not received");
    return;
  }
  send(c, pubcomp_packet{.packet_id = p.packet_id});
}

void stub_broker::impl::on(connection& c, const puback_packet& p) {
  const auto it = c.outbound.find(p.packet_id);
  if (it == c.outbound.end() || it->second != outbound_state::awaiting_puback) {
    protocol_error(c, "PUBACK for packet id " + std::to_string(p.packet_id) + " not sent at QoS 1");
    return;
  }
  c.outbound.erase(it);
  c.acknowledged(p.packet_id);
}

void stub_broker::impl::on(connection& c, const pubrec_packet& p) {
  const auto it = c.outbound.find(p.packet_id);
  if (it == c.outbound.end() || it->second != outbound_state::awaiting_pubrec) {
    protocol_error(c, "PUBREC for packet id " + std::to_string(p.packet_id) + " not sent at QoS 2");
    return;
  }
  it->second = outbound_state::awaiting_pubcomp;
  c.acknowledged(p.packet_id);
  send(c, pubrel_packet{.packet_id = p.packet_id});
}

void stub_broker::impl::on(connection& c, const pubcomp_packet& p) {
  const auto it = c.outbound.find(p.packet_id);
  if (it == c.outbound.end() || it->second != outbound_state::awaiting_pubcomp) {
    protocol_error(c, "PUBCOMP for packet id " + std::to_string(p.packet_id) + " not released");
    return;
  }
  c.outbound.erase(it);
}

void stub_broker::impl::on(connection& c, const subscribe_packet& p) {
  suback_packet ack{.packet_id = p.packet_id};
  for (const auto& s : p.subscriptions) {
    auto same = std::find_if(c.routes.begin(), c.routes.end(),
                             [&](const route& r) { return r.filter == s.filter; });
    if (same == c.routes.end()) same = c.routes.insert(c.routes.end(), route{s.filter});
    same->max_qos = s.options.max_qos;
    // The granted QoS codes 0, 1, 2 are the QoS values themselves.
    ack.codes.push_back(static_cast<reason_code>(s.options.max_qos));
  }
  send(c, ack);
}

void stub_broker::impl::on(connection& c, const unsubscribe_packet& p) {
  unsuback_packet ack{.packet_id = p.packet_id};
  for (const auto& f : p.filters) {
    std::erase_if(c.routes, [&](const route& r) { return r.filter == f; });
    if (is_v5(c.version)) ack.codes.push_back(reason_code::success);
  }
  send(c, ack);
}

namespace {

// The highest QoS of the routes matching `topic`, if any matches.
std::optional<codec::qos> best_match(const std::vector<route>& routes, std::string_view topic) {
  std::optional<codec::qos> best;
  for (const auto& r : routes) {
    if (matches(r.filter, topic) && (!best || r.max_qos > *best)) best = r.max_qos;
  }
  return best;
}

}  // namespace

void stub_broker::impl::route_publish(const publish_packet& p) {
  std::vector<std::pair<connection*, codec::qos>> targets;
  for (auto& c : connections) {
    if (c->dead || !c->connected) continue;
    // Delivered at the lower of the two QoS, as a broker must.
    if (auto best = best_match(c->routes, p.topic)) targets.emplace_back(c.get(), std::min(*best, p.qos));
  }
  std::vector<std::pair<offline_session*, codec::qos>> queues;
  for (auto& [id, session] : offline) {
    auto best = best_match(session.routes, p.topic);
    if (best && std::min(*best, p.qos) != qos::at_most_once) {
      queues.emplace_back(&session, std::min(*best, p.qos));
    }
  }
  if (targets.empty() && queues.empty()) return;
  int copies = 1;
  if (routed.fetch_add(1) + 1 == options.fault_at) {
    if (options.fault == stub_fault::drop_one) {
      fault_applied = true;
      return;
    }
    if (options.fault == stub_fault::duplicate_one) {
      fault_applied = true;
      copies = 2;
    }
  }
  for (auto [to, q] : targets) {
    for (int i = 0; i < copies; ++i) deliver(*to, p, q);
  }
  for (auto [session, q] : queues) {
    for (int i = 0; i < copies; ++i) {
      session->queue.push_back(p);
      session->queue.back().qos = q;
    }
  }
}

void stub_broker::impl::deliver(connection& to, const publish_packet& p, codec::qos q) {
  publish_view v;
  v.topic = p.topic;
  v.payload = p.payload;
  v.qos = q;
  if (q != qos::at_most_once) {
    // Our own packet ids, one per PUBLISH: a duplicate is a second message, not a resend.
    int tries = 0;
    do {
      if (++to.last_id == 0) to.last_id = 1;
      if (++tries > 65535) {
        protocol_error(to, "65535 unacknowledged messages: the client stopped acknowledging");
        return;
      }
    } while (to.outbound.contains(to.last_id));
    v.packet_id = to.last_id;
    to.outbound.emplace(to.last_id, q == qos::at_least_once ? outbound_state::awaiting_puback
                                                             : outbound_state::awaiting_pubrec);
    if (to.persistent) {
      to.unacknowledged.emplace_back(to.last_id, p);
      to.unacknowledged.back().second.qos = q;
    }
  }
  encode(v, to.version, to.out);
  forwarded.fetch_add(1);
  flush(to);
}

stub_broker::stub_broker(stub_options options) : impl_(std::make_unique<impl>()) {
  auto& s = *impl_;
  s.options = options;
  const int listeners = std::max(1, options.listeners);
  s.accepted = std::make_unique<std::atomic<std::uint64_t>[]>(listeners);
  for (int i = 0; i < listeners; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) fail("socket");
    s.listen_fds.push_back(fd);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) fail("bind");
    if (::listen(fd, 1024) != 0) fail("listen");
    socklen_t length = sizeof address;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      fail("getsockname");
    }
    s.ports.push_back(ntohs(address.sin_port));
  }
  s.stop_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s.stop_fd < 0) fail("eventfd");
  s.thread = std::thread([&s] { s.run(); });
}

stub_broker::~stub_broker() {
  auto& s = *impl_;
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(s.stop_fd, &one, sizeof one);
  if (s.thread.joinable()) s.thread.join();
  s.connections.clear();
  for (int fd : s.listen_fds) {
    if (fd >= 0) ::close(fd);
  }
  ::close(s.stop_fd);
}

std::uint16_t stub_broker::port(int i) const noexcept { return impl_->ports[i]; }
std::uint64_t stub_broker::accepted(int i) const noexcept { return impl_->accepted[i].load(); }
std::uint64_t stub_broker::resumed() const noexcept { return impl_->resumed.load(); }
std::uint64_t stub_broker::routed() const noexcept { return impl_->routed.load(); }
std::uint64_t stub_broker::forwarded() const noexcept { return impl_->forwarded.load(); }
bool stub_broker::fault_applied() const noexcept { return impl_->fault_applied.load(); }
std::uint64_t stub_broker::protocol_errors() const noexcept { return impl_->errors.load(); }

std::string stub_broker::first_protocol_error() const {
  std::lock_guard lock(impl_->error_mutex);
  return impl_->first_error;
}

}  // namespace ringmq::testing
