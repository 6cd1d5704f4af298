#include "tests/support/durability_support.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <regex>

namespace ringmq::testing::durability {

namespace {

int remaining_ms(steady::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - steady::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 1'000'000));
}

std::uint16_t port_after(const std::string& log, const std::regex& pattern) {
  std::smatch m;
  if (!std::regex_search(log, m, pattern)) return 0;
  return static_cast<std::uint16_t>(std::stoi(m[1].str()));
}

// Adds a line to `into` for the first few of many (failure messages stay readable).
void note(std::string& into, std::size_t& noted, const std::string& what) {
  constexpr std::size_t limit = 12;
  if (noted++ < limit) into += "  " + what + "\n";
}

}  // namespace

// ---------------------------------------------------------------------------
// scratch_dir

scratch_dir::scratch_dir(std::string_view tag) {
  std::string pattern =
      (std::filesystem::temp_directory_path() / (std::string(tag) + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
}

scratch_dir::~scratch_dir() {
  if (path_.empty()) return;
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

// ---------------------------------------------------------------------------
// node_process

node_process::node_process(std::string data_dir, std::vector<std::string> overrides,
                           milliseconds start_timeout) {
  std::vector<std::string> sets{"listeners[0].bind=127.0.0.1:0", "http.bind=",
                                "node.id=durability", "node.data_dir=" + data_dir};
  // Later --set values of the same key win, so the test's overrides come last.
  sets.insert(sets.end(), overrides.begin(), overrides.end());
  std::vector<std::string> argv{ringmq_binary()};
  for (auto& s : sets) {
    argv.push_back("--set");
    argv.push_back(std::move(s));
  }
  spawned_at_ = steady::now();
  process_ = std::make_unique<background_process>(std::move(argv));
  if (!process_->started()) return;
  // Returns early when the process exits (a store it refuses to open).
  process_->wait_for_err(" started: ", start_timeout);
  const auto log = process_->err();
  if (log.find(" started: ") == std::string::npos) return;
  static const std::regex listening(R"(listening: listener=\S+ address=\S+:(\d+))");
  static const std::regex http(R"(http listening: address=\S+:(\d+))");
  port_ = port_after(log, listening);
  http_port_ = port_after(log, http);
}

node_process::~node_process() = default;  // background_process kills what still runs

void node_process::kill() {
  process_->signal(SIGKILL);
  process_->wait_exit(milliseconds(10'000));
}

std::optional<exit_status> node_process::stop(milliseconds timeout) {
  // A second SIGTERM makes ringmq exit at once: send one only.
  if (!signalled_) {
    signalled_ = true;
    process_->signal(SIGTERM);
  }
  return process_->wait_exit(timeout);
}

std::string node_process::log_tail(std::size_t lines) const {
  const auto log = process_->err();
  std::size_t at = log.size();
  for (std::size_t n = 0; n <= lines && at > 0; ++n) {
    const auto nl = log.rfind('\n', at - 1);
    if (nl == std::string::npos) {
      at = 0;
      break;
    }
    at = nl;
  }
  return log.substr(at);
}

// ---------------------------------------------------------------------------
// payloads

std::string numbered_payload(std::string_view name, std::uint32_t n) {
  return std::string(name) + ":" + std::to_string(n);
}

std::optional<std::uint32_t> number_of(std::string_view payload, std::string_view name) {
  if (payload.size() <= name.size() + 1 || !payload.starts_with(name) ||
      payload[name.size()] != ':') {
    return std::nullopt;
  }
  std::uint32_t n = 0;
  const auto digits = payload.substr(name.size() + 1);
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
  return n;
}

codec::connect_packet persistent_connect(std::string client_id, codec::protocol_version v,
                                         std::uint32_t session_expiry) {
  codec::connect_packet c;
  c.version = v;
  c.client_id = std::move(client_id);
  c.keep_alive = 120;
  c.clean_start = false;
  if (codec::is_v5(v)) c.props.session_expiry_interval = session_expiry;
  return c;
}

codec::connect_packet clean_connect(std::string client_id, codec::protocol_version v) {
  codec::connect_packet c;
  c.version = v;
  c.client_id = std::move(client_id);
  c.keep_alive = 120;
  c.clean_start = true;
  return c;
}

// ---------------------------------------------------------------------------
// stream_publisher

stream_publisher::stream_publisher(std::uint16_t port, stream_options options)
    : options_(std::move(options)), states_(options_.count + 1, ack_state::none) {
  thread_ = std::thread([this, port] { run(port, false); });
}

stream_publisher::~stream_publisher() { join(); }

bool stream_publisher::wait_accepted(std::size_t n, milliseconds timeout) {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return accepted_.load() >= n || finished_; });
  return accepted_.load() >= n;
}

void stream_publisher::join() {
  if (thread_.joinable()) thread_.join();
}

void stream_publisher::resume(std::uint16_t port) {
  join();
  {
    std::lock_guard lock(mutex_);
    finished_ = false;
    error_.clear();
  }
  thread_ = std::thread([this, port] { run(port, true); });
}

std::size_t stream_publisher::count(ack_state s) const {
  return static_cast<std::size_t>(std::count(states_.begin() + 1, states_.end(), s));
}

codec::publish_packet stream_publisher::message(std::uint32_t n, std::uint16_t packet_id) const {
  codec::publish_packet p;
  p.qos = options_.qos;
  p.packet_id = packet_id;
  p.retain = options_.retained;
  p.topic = options_.retained ? options_.topic + "/" + std::to_string(n) : options_.topic;
  p.payload = numbered_payload(options_.name, n);
  return p;
}

void stream_publisher::run(std::uint16_t port, bool resuming) {
  auto finish = [this](std::string why) {
    std::lock_guard lock(mutex_);
    error_ = std::move(why);
    finished_ = true;
    changed_.notify_all();
  };
  mqtt_socket s;
  if (!s.connect_tcp(port)) return finish("connect: " + s.error());
  const auto connect =
      options_.session_expiry
          ? persistent_connect(options_.client_id, options_.version, options_.session_expiry)
          : clean_connect(options_.client_id, options_.version);
  const auto ack = s.handshake(connect);
  if (!ack || ack->code != codec::reason_code::success) {
    return finish("CONNECT refused or unanswered: " + s.error());
  }
  if (resuming) {
    session_present_ = ack->session_present;
    // [MQTT-4.4.0-1]: unacknowledged PUBLISH packets again (DUP set), PUBREL
    // for those the broker has received, with their packet ids, in order.
    for (auto& [id, o] : outstanding_) {
      o.resent = true;
      bool sent = false;
      if (o.released) {
        codec::pubrel_packet rel;
        rel.packet_id = id;
        sent = s.send(codec::packet{rel});
      } else {
        auto p = message(o.number, id);
        p.dup = true;
        sent = s.send(codec::packet{std::move(p)});
      }
      if (!sent) return finish("send: " + s.error());
    }
  }
  const auto deadline = steady::now() + options_.time_limit;
  auto set_state = [&](std::uint32_t n, ack_state st) {
    states_[n] = st;
    if (st == ack_state::accepted) {
      accepted_.fetch_add(1);
      std::lock_guard lock(mutex_);
      changed_.notify_all();
    }
  };
  for (;;) {
    while (outstanding_.size() < options_.window && next_ <= options_.count) {
      do {
        if (++last_id_ == 0) last_id_ = 1;
      } while (outstanding_.contains(last_id_));
      if (!s.send(codec::packet{message(next_, last_id_)})) return finish("send: " + s.error());
      outstanding_.emplace(last_id_, outstanding{next_++, false, false});
    }
    if (outstanding_.empty()) break;
    codec::packet p;
    const auto r = s.receive(p, milliseconds(remaining_ms(deadline)));
    if (r == mqtt_socket::read_result::timeout) return finish("no acknowledgement in time");
    if (r != mqtt_socket::read_result::packet) return finish("connection lost: " + s.error());
    if (auto* a = std::get_if<codec::puback_packet>(&p)) {
      auto it = outstanding_.find(a->packet_id);
      if (it == outstanding_.end()) return finish("PUBACK for an unknown packet id");
      set_state(it->second.number,
                codec::is_success(a->code) ? ack_state::accepted : ack_state::refused);
      outstanding_.erase(it);
    } else if (auto* rec = std::get_if<codec::pubrec_packet>(&p)) {
      auto it = outstanding_.find(rec->packet_id);
      if (it == outstanding_.end()) return finish("PUBREC for an unknown packet id");
      if (!codec::is_success(rec->code)) {
        set_state(it->second.number, ack_state::refused);
        outstanding_.erase(it);
        continue;
      }
      if (states_[it->second.number] == ack_state::none) {
        set_state(it->second.number, ack_state::accepted);
      }
      it->second.released = true;
      codec::pubrel_packet rel;
      rel.packet_id = rec->packet_id;
      if (!s.send(codec::packet{rel})) return finish("send: " + s.error());
    } else if (auto* comp = std::get_if<codec::pubcomp_packet>(&p)) {
      auto it = outstanding_.find(comp->packet_id);
      if (it == outstanding_.end()) return finish("PUBCOMP for an unknown packet id");
      // A PUBREL sent again after reconnecting may find the exchange already
      // completed before the connection was lost: "not found" is an answer then.
      const bool known_end =
          it->second.resent && comp->code == codec::reason_code::packet_identifier_not_found;
      if (!codec::is_success(comp->code) && !known_end) {
        return finish("PUBCOMP with reason code " +
                      std::to_string(static_cast<int>(comp->code)) + " for " +
                      numbered_payload(options_.name, it->second.number));
      }
      states_[it->second.number] = ack_state::completed;
      outstanding_.erase(it);
    } else if (std::holds_alternative<codec::disconnect_packet>(p)) {
      return finish("DISCONNECT from the broker");
    }
  }
  s.send(codec::packet{codec::disconnect_packet{}});
  finish("");
}

std::optional<codec::reason_code> publish_one(mqtt_socket& s, const codec::publish_packet& p,
                                              milliseconds timeout) {
  if (!s.send(codec::packet{p})) return std::nullopt;
  const auto deadline = steady::now() + timeout;
  std::optional<codec::reason_code> code;
  for (;;) {
    codec::packet in;
    if (s.receive(in, milliseconds(remaining_ms(deadline))) != mqtt_socket::read_result::packet) {
      return std::nullopt;
    }
    if (auto* a = std::get_if<codec::puback_packet>(&in); a && a->packet_id == p.packet_id) {
      return a->code;
    }
    if (auto* rec = std::get_if<codec::pubrec_packet>(&in); rec && rec->packet_id == p.packet_id) {
      if (!codec::is_success(rec->code)) return rec->code;
      code = rec->code;
      codec::pubrel_packet rel;
      rel.packet_id = p.packet_id;
      if (!s.send(codec::packet{rel})) return std::nullopt;
    }
    if (auto* c = std::get_if<codec::pubcomp_packet>(&in); c && c->packet_id == p.packet_id) {
      return code;
    }
  }
}

// ---------------------------------------------------------------------------
// recording_subscriber

recording_subscriber::recording_subscriber(codec::connect_packet connect)
    : connect_(std::move(connect)) {}

std::optional<codec::connack_packet> recording_subscriber::connect(std::uint16_t port) {
  // A new socket: the old one's decoder may hold a partial packet.
  socket_ = std::make_unique<mqtt_socket>();
  if (!socket_->connect_tcp(port)) {
    error_ = socket_->error();
    return std::nullopt;
  }
  auto ack = socket_->handshake(connect_);
  if (!ack) error_ = socket_->error();
  return ack;
}

bool recording_subscriber::subscribe(
    const std::vector<std::pair<std::string, codec::qos>>& filters) {
  codec::subscribe_packet sub;
  sub.packet_id = next_packet_id_++;
  for (const auto& [filter, qos] : filters) {
    codec::subscription s;
    s.filter = filter;
    s.options.max_qos = qos;
    sub.subscriptions.push_back(std::move(s));
  }
  if (!socket_->send(codec::packet{sub})) {
    error_ = "SUBSCRIBE not sent: " + socket_->error();
    return false;
  }
  const auto deadline = steady::now() + milliseconds(10'000);
  for (;;) {
    codec::packet p;
    if (socket_->receive(p, milliseconds(remaining_ms(deadline))) !=
        mqtt_socket::read_result::packet) {
      error_ = "no SUBACK: " + socket_->error();
      return false;
    }
    if (auto* ack = std::get_if<codec::suback_packet>(&p)) {
      if (ack->codes.size() != filters.size()) {
        error_ = "SUBACK with the wrong number of codes";
        return false;
      }
      for (std::size_t i = 0; i < filters.size(); ++i) {
        if (ack->codes[i] != static_cast<codec::reason_code>(filters[i].second)) {
          error_ = "SUBACK refused " + filters[i].first;
          return false;
        }
      }
      return true;
    }
    handle(p);
  }
}

bool recording_subscriber::handle(codec::packet& p) {
  if (auto* pub = std::get_if<codec::publish_packet>(&p)) {
    delivery d{pub->topic, pub->payload, pub->qos, pub->dup, pub->retain, false};
    switch (pub->qos) {
      case codec::qos::at_most_once:
        deliveries_.push_back(std::move(d));
        break;
      case codec::qos::at_least_once: {
        deliveries_.push_back(std::move(d));
        codec::puback_packet ack;
        ack.packet_id = pub->packet_id;
        socket_->send(codec::packet{ack});
        break;
      }
      case codec::qos::exactly_once: {
        // [MQTT-4.3.3-9]: until PUBREL, a PUBLISH with this packet id is the
        // same message again: acknowledged, not delivered a second time.
        if (awaiting_pubrel_.contains(pub->packet_id)) {
          ++resent_qos2_;
        } else {
          awaiting_pubrel_.emplace(pub->packet_id, deliveries_.size());
          deliveries_.push_back(std::move(d));
        }
        codec::pubrec_packet rec;
        rec.packet_id = pub->packet_id;
        socket_->send(codec::packet{rec});
        break;
      }
    }
    return true;
  }
  if (auto* rel = std::get_if<codec::pubrel_packet>(&p)) {
    codec::pubcomp_packet comp;
    comp.packet_id = rel->packet_id;
    auto it = awaiting_pubrel_.find(rel->packet_id);
    if (it != awaiting_pubrel_.end()) {
      deliveries_[it->second].completed = true;
      awaiting_pubrel_.erase(it);
    } else if (codec::is_v5(connect_.version)) {
      comp.code = codec::reason_code::packet_identifier_not_found;
    }
    socket_->send(codec::packet{comp});
    return true;
  }
  return true;
}

recording_subscriber::pump_result recording_subscriber::pump(const std::function<bool()>& done,
                                                             milliseconds timeout) {
  const auto deadline = steady::now() + timeout;
  for (;;) {
    if (done()) return pump_result::done;
    codec::packet p;
    switch (socket_->receive(p, milliseconds(remaining_ms(deadline)))) {
      case mqtt_socket::read_result::packet:
        handle(p);
        if (hook_) hook_(p);
        break;
      case mqtt_socket::read_result::timeout:
        return done() ? pump_result::done : pump_result::timeout;
      case mqtt_socket::read_result::closed:
        return done() ? pump_result::done : pump_result::closed;
      case mqtt_socket::read_result::malformed:
        error_ = socket_->error();
        return pump_result::error;
    }
  }
}

recording_subscriber::pump_result recording_subscriber::pump_until_payload(
    std::string_view payload, milliseconds timeout) {
  std::size_t checked = 0;
  return pump(
      [&] {
        for (; checked < deliveries_.size(); ++checked) {
          if (deliveries_[checked].payload == payload) return true;
        }
        return false;
      },
      timeout);
}

void recording_subscriber::disconnect() {
  if (!socket_) return;
  socket_->send(codec::packet{codec::disconnect_packet{}});
  socket_->close();
}

void recording_subscriber::drop() {
  if (socket_) socket_->close();
}

// ---------------------------------------------------------------------------
// checks

stream_check check_stream(const std::vector<delivery>& got, std::string_view name,
                          const std::vector<ack_state>& acked, bool exactly_once) {
  stream_check c;
  // 0: not seen; 1: seen; 2: seen and its QoS 2 exchange completed (PUBCOMP sent).
  std::vector<std::uint8_t> seen(acked.size(), 0);
  std::uint32_t highest = 0;
  std::size_t noted_dup = 0;
  std::size_t noted_order = 0;
  std::string dups;
  std::string order;
  for (const auto& d : got) {
    const auto n = number_of(d.payload, name);
    if (!n) continue;
    if (*n == 0 || *n >= seen.size()) {
      c.problems += "  a message that was never published: " + d.payload + "\n";
      continue;
    }
    if (seen[*n]) {
      ++c.duplicates;
      note(dups, noted_dup,
           d.payload + (d.dup ? " (DUP set)" : " (DUP not set)") +
               (seen[*n] == 2 ? ", after the subscriber had sent PUBCOMP for it" : ""));
    } else {
      ++c.delivered;
      seen[*n] = d.completed ? 2 : 1;
      if (*n < highest) {
        note(order, noted_order,
             d.payload + " arrived after " + numbered_payload(name, highest));
      }
      highest = std::max(highest, *n);
    }
  }
  std::size_t noted_missing = 0;
  std::string missing;
  for (std::size_t n = 1; n < acked.size(); ++n) {
    if ((acked[n] == ack_state::accepted || acked[n] == ack_state::completed) && !seen[n]) {
      ++c.missing;
      note(missing, noted_missing, numbered_payload(name, static_cast<std::uint32_t>(n)));
    }
  }
  if (c.missing) {
    c.problems += std::to_string(c.missing) + " acknowledged messages of " + std::string(name) +
                  " never arrived, e.g.\n" + missing;
  }
  if (noted_order) {
    c.problems += std::to_string(noted_order) + " messages of " + std::string(name) +
                  " out of order, e.g.\n" + order;
  }
  if (exactly_once && c.duplicates) {
    c.problems += std::to_string(c.duplicates) + " messages of " + std::string(name) +
                  " delivered twice at QoS 2, e.g.\n" + dups;
  }
  return c;
}

int http_get_status(std::uint16_t port, std::string_view path, milliseconds timeout) {
  const auto deadline = steady::now() + timeout;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int status = 0;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request = "GET " + std::string(path) +
                                " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      std::string answer;
      char buffer[1024];
      while (answer.find("\r\n") == std::string::npos) {
        pollfd pfd{fd, POLLIN, 0};
        if (::poll(&pfd, 1, remaining_ms(deadline)) <= 0) break;
        const auto n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0) break;
        answer.append(buffer, static_cast<std::size_t>(n));
      }
      // "HTTP/1.1 200 OK"
      static const std::regex status_line(R"(^HTTP/1\.[01] (\d{3}))");
      std::smatch m;
      if (std::regex_search(answer, m, status_line)) status = std::stoi(m[1].str());
    }
  }
  ::close(fd);
  return status;
}

}  // namespace ringmq::testing::durability
