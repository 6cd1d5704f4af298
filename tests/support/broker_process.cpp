#include "tests/support/broker_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "broker/codec/encoder.hpp"

extern char** environ;

#ifndef RINGMQ_BINARY
#error "RINGMQ_BINARY must name the ringmq executable"
#endif

namespace ringmq::testing {
namespace {

// Without a pidfd (old kernel, seccomp) the exit is noticed by polling waitid
// between pipe reads at this interval.
constexpr int fallback_poll_ms = 20;

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

exit_status status_from(int status) {
  exit_status s;
  if (WIFEXITED(status)) s.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) s.signal = WTERMSIG(status);
  return s;
}

int remaining_ms(steady::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - steady::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 1'000'000));
}

}  // namespace

std::string exit_status::describe() const {
  if (signal != 0)
    return "ended by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
  return "exit code " + std::to_string(exit_code);
}

// ---------------------------------------------------------------------------
// background_process

background_process::background_process(std::vector<std::string> argv,
                                       std::map<std::string, std::string> set_env) {
  for (const auto& a : argv) command_ += (command_.empty() ? "" : " ") + a;
  if (argv.empty()) {
    start_error_ = "empty command line";
    return;
  }
  int out_pipe[2];
  int err_pipe[2];
  int wake_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    start_error_ = std::string("pipe2: ") + std::strerror(errno);
    return;
  }
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    start_error_ = std::string("pipe2: ") + std::strerror(errno);
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return;
  }
  if (::pipe2(wake_pipe, O_CLOEXEC) != 0) {
    start_error_ = std::string("pipe2: ") + std::strerror(errno);
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) ::close(fd);
    return;
  }

  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const std::string entry(*e);
    if (!set_env.contains(entry.substr(0, entry.find('=')))) env.push_back(entry);
  }
  for (const auto& [name, value] : set_env) env.push_back(name + "=" + value);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  // Its own process group, so that the destructor kills anything it started
  // too; default signal handling whatever the test runner's threads block.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t no_signals;
  sigemptyset(&no_signals);
  posix_spawnattr_setsigmask(&attr, &no_signals);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);

  auto c_args = c_strings(argv);
  auto c_env = c_strings(env);
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, c_args[0], &actions, &attr, c_args.data(), c_env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  // Only the child may hold the write ends, or the pipes never reach EOF.
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (rc != 0) {
    start_error_ = std::string("posix_spawnp: ") + std::strerror(rc);
    for (int fd : {out_pipe[0], err_pipe[0], wake_pipe[0], wake_pipe[1]}) ::close(fd);
    return;
  }
  pid_ = pid;
  wake_read_ = wake_pipe[0];
  wake_write_ = wake_pipe[1];
  // The raw system call: glibc 2.36's <sys/pidfd.h> lacks C linkage for C++.
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  reader_ = std::thread([this, out = out_pipe[0], err = err_pipe[0], pidfd, wake = wake_pipe[0]] {
    reader_loop(out, err, pidfd, wake);
  });
}

background_process::~background_process() {
  if (pid_ <= 0) return;
  {
    std::lock_guard lock(mutex_);
    // Once reaped, the group id may belong to someone else: only kill before.
    if (!status_) ::kill(-pid_, SIGKILL);
  }
  const char byte = 1;
  [[maybe_unused]] auto n = ::write(wake_write_, &byte, 1);
  reader_.join();
  ::close(wake_write_);
  ::close(wake_read_);
}

void background_process::reader_loop(int out_fd, int err_fd, int pidfd, int wake_fd) {
  char buffer[8192];
  bool reaped = false;
  bool stop = false;
  while (!stop && (!reaped || out_fd >= 0 || err_fd >= 0)) {
    pollfd fds[4];
    nfds_t count = 0;
    if (out_fd >= 0) fds[count++] = {out_fd, POLLIN, 0};
    if (err_fd >= 0) fds[count++] = {err_fd, POLLIN, 0};
    if (!reaped && pidfd >= 0) fds[count++] = {pidfd, POLLIN, 0};
    fds[count++] = {wake_fd, POLLIN, 0};
    const int timeout = (!reaped && pidfd < 0) ? fallback_poll_ms : -1;
    const int ready = ::poll(fds, count, timeout);
    if (ready < 0 && errno != EINTR) break;
    for (nfds_t i = 0; ready > 0 && i < count; ++i) {
      if (fds[i].revents == 0) continue;
      const int fd = fds[i].fd;
      if (fd == wake_fd) {
        stop = true;
      } else if (fd == out_fd || fd == err_fd) {
        const auto n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        std::lock_guard lock(mutex_);
        if (n > 0) {
          (fd == out_fd ? out_ : err_).append(buffer, static_cast<std::size_t>(n));
        } else {
          ::close(fd);
          (fd == out_fd ? out_fd : err_fd) = -1;
        }
        changed_.notify_all();
      }
    }
    siginfo_t info{};
    if (!reaped && ::waitid(P_PID, pid_, &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid == pid_) {
      // WNOWAIT keeps the zombie, so the group id cannot be reused before
      // whatever the program left running in its group is killed.
      // Reaped under the lock: the destructor kills the group only before.
      std::lock_guard lock(mutex_);
      ::kill(-pid_, SIGKILL);
      int status = 0;
      if (::waitpid(pid_, &status, 0) == pid_) {
        reaped = true;
        status_ = status_from(status);
        changed_.notify_all();
      }
    }
  }
  if (!reaped) {
    // Stopped by the destructor, which already killed the group.
    int status = 0;
    ::waitpid(pid_, &status, 0);
    std::lock_guard lock(mutex_);
    status_ = status_from(status);
  }
  // The wake pipe stays open until the destructor has written to it.
  for (int fd : {out_fd, err_fd, pidfd}) {
    if (fd >= 0) ::close(fd);
  }
  std::lock_guard lock(mutex_);
  drained_ = true;
  changed_.notify_all();
}

bool background_process::signal(int sig) {
  std::lock_guard lock(mutex_);
  if (pid_ <= 0 || status_) return false;
  return ::kill(pid_, sig) == 0;
}

bool background_process::wait_for(
    const std::function<bool(const std::string&, const std::string&)>& ready,
    milliseconds timeout) {
  std::unique_lock lock(mutex_);
  if (pid_ <= 0) return ready(out_, err_);
  changed_.wait_until(lock, steady::now() + timeout, [&] { return ready(out_, err_) || drained_; });
  return ready(out_, err_);
}

bool background_process::wait_for_out(std::string_view text, milliseconds timeout) {
  return wait_for([&](const std::string& out,
                      const std::string&) { return out.find(text) != std::string::npos; },
                  timeout);
}

bool background_process::wait_for_err(std::string_view text, milliseconds timeout) {
  return wait_for([&](const std::string&,
                      const std::string& err) { return err.find(text) != std::string::npos; },
                  timeout);
}

std::optional<exit_status> background_process::wait_exit(milliseconds timeout) {
  std::unique_lock lock(mutex_);
  if (pid_ <= 0) return std::nullopt;
  // Waiting for the drain as well makes out() complete once this returns.
  changed_.wait_until(lock, steady::now() + timeout, [&] { return drained_; });
  if (!drained_) return std::nullopt;
  return status_;
}

std::string background_process::out() const {
  std::lock_guard lock(mutex_);
  return out_;
}

std::string background_process::err() const {
  std::lock_guard lock(mutex_);
  return err_;
}

std::optional<exit_status> background_process::status() const {
  std::lock_guard lock(mutex_);
  return status_;
}

std::string background_process::describe() const {
  std::lock_guard lock(mutex_);
  std::ostringstream s;
  s << "command: " << command_ << "\n";
  if (pid_ <= 0) {
    s << "could not start: " << start_error_ << "\n";
    return s.str();
  }
  s << (status_ ? status_->describe() : std::string("still running")) << "\n";
  s << "--- stdout ---\n" << out_ << (out_.empty() || out_.back() == '\n' ? "" : "\n");
  s << "--- stderr ---\n" << err_ << (err_.empty() || err_.back() == '\n' ? "" : "\n");
  return s.str();
}

// ---------------------------------------------------------------------------
// broker_process

std::string ringmq_binary() { return RINGMQ_BINARY; }

std::size_t count_of(std::string_view haystack, std::string_view needle) {
  if (needle.empty()) return 0;
  std::size_t count = 0;
  for (auto at = haystack.find(needle); at != std::string_view::npos;
       at = haystack.find(needle, at + needle.size())) {
    ++count;
  }
  return count;
}

broker_process::broker_process(std::vector<std::string> overrides, milliseconds start_timeout) {
  const auto base = std::filesystem::temp_directory_path() / "ringmq-it-XXXXXX";
  std::string pattern = base.string();
  if (::mkdtemp(pattern.data()) != nullptr) data_dir_ = pattern;

  std::vector<std::string> sets{"listeners[0].bind=127.0.0.1:0", "http.bind=", "node.id=it"};
  if (!data_dir_.empty()) sets.push_back("node.data_dir=" + data_dir_);
  sets.insert(sets.end(), overrides.begin(), overrides.end());
  std::vector<std::string> argv{ringmq_binary()};
  for (auto& s : sets) {
    argv.push_back("--set");
    argv.push_back(std::move(s));
  }
  process_ = std::make_unique<background_process>(std::move(argv));
  if (!process_->started()) return;

  // "... listening: listener=mqtt:127.0.0.1:0 address=127.0.0.1:40405" comes
  // first; "started" once every listener accepts.
  process_->wait_for_err(" started: ", start_timeout);
  static const std::regex listening(R"(listening: listener=\S+ address=\S+:(\d+))");
  const auto log = process_->err();
  std::smatch m;
  if (log.find(" started: ") != std::string::npos && std::regex_search(log, m, listening)) {
    port_ = static_cast<std::uint16_t>(std::stoi(m[1].str()));
  }
}

broker_process::~broker_process() {
  if (process_ && process_->started() && !stopped_) {
    const auto status = stop();
    if (!status || !status->clean()) {
      ADD_FAILURE() << "ringmq did not shut down cleanly on SIGTERM\n" << describe();
    }
  }
  process_.reset();
  if (!data_dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(data_dir_, ignored);
  }
}

bool broker_process::wait_for_log(std::string_view text, milliseconds timeout) {
  return process_->wait_for_err(text, timeout);
}

bool broker_process::wait_for_log_count(std::string_view text, std::size_t count,
                                        milliseconds timeout) {
  return process_->wait_for(
      [&](const std::string&, const std::string& err) { return count_of(err, text) >= count; },
      timeout);
}

bool broker_process::terminate() {
  // A second SIGTERM means "exit at once" to ringmq: send only one.
  if (terminated_) return true;
  terminated_ = true;
  return process_->signal(SIGTERM);
}

std::optional<exit_status> broker_process::stop(milliseconds timeout) {
  if (stopped_) return stop_result_;
  stopped_ = true;
  terminate();
  stop_result_ = process_->wait_exit(timeout);
  return stop_result_;
}

std::uint64_t broker_process::resident_kib() const {
  std::ifstream status("/proc/" + std::to_string(process_->pid()) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

// ---------------------------------------------------------------------------
// mqtt_socket

mqtt_socket::~mqtt_socket() { close(); }

void mqtt_socket::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool mqtt_socket::connect_tcp(std::uint16_t port, const std::string& source_address) {
  close();
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    error_ = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  if (!source_address.empty()) {
    sockaddr_in local{};
    local.sin_family = AF_INET;
    if (::inet_pton(AF_INET, source_address.c_str(), &local.sin_addr) != 1 ||
        ::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
      error_ = "bind " + source_address + ": " + std::strerror(errno);
      close();
      return false;
    }
  }
  const int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, host_.c_str(), &addr.sin_addr) != 1) {
    error_ = "not an IPv4 address: " + host_;
    close();
    return false;
  }
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    error_ = "connect " + host_ + ":" + std::to_string(port) + ": " + std::strerror(errno);
    close();
    return false;
  }
  closed_ = false;
  return true;
}

void mqtt_socket::set_version(codec::protocol_version v) noexcept {
  version_ = v;
  decoder_.set_version(v);
}

bool mqtt_socket::send_bytes(std::string_view bytes) {
  while (!bytes.empty()) {
    const auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      error_ = std::string("send: ") + std::strerror(errno);
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool mqtt_socket::send(const codec::packet& p) { return send_bytes(codec::encode(p, version_)); }

mqtt_socket::read_result mqtt_socket::receive(codec::packet& into, milliseconds timeout) {
  const auto deadline = steady::now() + timeout;
  for (;;) {
    auto next = decoder_.next();
    if (!next) {
      error_ =
          std::string("undecodable bytes from the broker: ") + std::string(next.error().detail);
      return read_result::malformed;
    }
    if (*next) {
      into = std::move(**next);
      return read_result::packet;
    }
    if (closed_ || fd_ < 0) return read_result::closed;
    pollfd pfd{fd_, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, remaining_ms(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) return read_result::timeout;
    auto buffer = decoder_.prepare(16 * 1024);
    const auto n = ::recv(fd_, buffer.data(), buffer.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // A reset counts as a close: the broker may close with unread bytes queued.
      closed_ = true;
      if (n < 0) error_ = std::string("recv: ") + std::strerror(errno);
      continue;  // decode what arrived before the close
    }
    decoder_.commit(static_cast<std::size_t>(n));
  }
}

bool mqtt_socket::confirm_handled(const std::string& topic, milliseconds timeout) {
  codec::publish_packet marker;
  marker.topic = topic;
  marker.qos = codec::qos::at_least_once;
  marker.packet_id = 1;
  codec::packet p;
  if (!send(codec::packet{marker}) || receive(p, timeout) != read_result::packet) return false;
  const auto* ack = std::get_if<codec::puback_packet>(&p);
  return ack && ack->packet_id == 1 && static_cast<std::uint8_t>(ack->code) < 0x80;
}

bool mqtt_socket::wait_closed(milliseconds timeout) {
  const auto deadline = steady::now() + timeout;
  for (;;) {
    codec::packet p;
    const auto r = receive(p, milliseconds(remaining_ms(deadline)));
    if (r == read_result::packet) {
      discarded_.push_back(std::move(p));
      continue;
    }
    if (r == read_result::timeout) return false;
    if (r == read_result::malformed) {
      // Not MQTT any more: wait for the close on the raw socket.
      char buffer[4096];
      for (;;) {
        pollfd pfd{fd_, POLLIN, 0};
        const int ready = ::poll(&pfd, 1, remaining_ms(deadline));
        if (ready == 0) return false;
        if (ready < 0) continue;
        if (::recv(fd_, buffer, sizeof buffer, 0) <= 0) {
          closed_ = true;
          return true;
        }
      }
    }
    return true;
  }
}

std::optional<codec::connack_packet> mqtt_socket::handshake(const codec::connect_packet& connect,
                                                            milliseconds timeout) {
  set_version(connect.version);
  if (!send(codec::packet{connect})) return std::nullopt;
  codec::packet p;
  const auto r = receive(p, timeout);
  if (r != read_result::packet) {
    error_ = "no CONNACK: " + std::string(r == read_result::timeout ? "timeout" : "closed") +
             (error_.empty() ? "" : " (" + error_ + ")");
    return std::nullopt;
  }
  if (auto* ack = std::get_if<codec::connack_packet>(&p)) return *ack;
  error_ = "expected CONNACK, got " + std::string(codec::to_string(codec::type_of(p)));
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// steady_client

namespace {

// The pace of the steady client: one round trip, then this pause (cut short by stop()).
constexpr milliseconds steady_pause{20};

}  // namespace

steady_client::steady_client(std::uint16_t port, std::string client_id, milliseconds max_round_trip,
                             std::string source_address)
    : port_(port),
      client_id_(std::move(client_id)),
      max_round_trip_(max_round_trip),
      source_address_(std::move(source_address)) {
  thread_ = std::thread([this] { run(); });
}

steady_client::~steady_client() { stop(); }

bool steady_client::wait_running(milliseconds timeout) {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return running_ || finished_; });
  return running_;
}

bool steady_client::wait_round_trips(std::size_t count, milliseconds timeout) {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return round_trips_ >= count || finished_; });
  return round_trips_ >= count;
}

bool steady_client::wait_more_round_trips(std::size_t count, milliseconds timeout) {
  std::unique_lock lock(mutex_);
  const auto target = round_trips_ + count;
  changed_.wait_for(lock, timeout, [&] { return round_trips_ >= target || finished_; });
  return round_trips_ >= target;
}

milliseconds steady_client::slowest() const {
  std::lock_guard lock(mutex_);
  return slowest_;
}

std::size_t steady_client::round_trips() const {
  std::lock_guard lock(mutex_);
  return round_trips_;
}

std::string steady_client::stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
    changed_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mutex_);
  return failure_;
}

void steady_client::run() {
  auto fail = [this](std::string why) {
    std::lock_guard lock(mutex_);
    if (failure_.empty()) failure_ = std::move(why);
    finished_ = true;
    changed_.notify_all();
  };
  mqtt_socket s;
  if (!s.connect_tcp(port_, source_address_)) return fail("steady client: " + s.error());
  codec::connect_packet c;
  c.version = codec::protocol_version::v5;
  c.client_id = client_id_;
  c.keep_alive = 30;
  const auto ack = s.handshake(c);
  if (!ack || ack->code != codec::reason_code::success) {
    return fail("steady client: CONNECT refused or unanswered: " + s.error());
  }
  codec::subscribe_packet sub;
  sub.packet_id = 1;
  sub.subscriptions.push_back({"steady/" + client_id_, {codec::qos::at_least_once}});
  s.send(codec::packet{sub});
  codec::packet p;
  if (s.receive(p, max_round_trip_) != mqtt_socket::read_result::packet ||
      !std::holds_alternative<codec::suback_packet>(p)) {
    return fail("steady client: no SUBACK");
  }
  {
    std::lock_guard lock(mutex_);
    running_ = true;
    changed_.notify_all();
  }
  for (std::uint32_t n = 1;; ++n) {
    const auto began = steady::now();
    if (!round_trip(s, n)) return;
    const auto took = std::chrono::duration_cast<milliseconds>(steady::now() - began);
    std::unique_lock lock(mutex_);
    ++round_trips_;
    slowest_ = std::max(slowest_, took);
    changed_.notify_all();
    if (changed_.wait_for(lock, steady_pause, [&] { return stop_; })) break;
  }
  codec::disconnect_packet d;
  s.send(codec::packet{d});
  std::lock_guard lock(mutex_);
  finished_ = true;
  changed_.notify_all();
}

bool steady_client::round_trip(mqtt_socket& s, std::uint32_t n) {
  auto fail = [&](std::string why) {
    std::lock_guard lock(mutex_);
    if (failure_.empty()) {
      failure_ = "steady client, message " + std::to_string(n) + ": " + why +
                 (s.error().empty() ? "" : " (" + s.error() + ")");
    }
    finished_ = true;
    changed_.notify_all();
    return false;
  };
  codec::publish_packet pub;
  pub.topic = "steady/" + client_id_;
  pub.payload = "m" + std::to_string(n);
  pub.qos = codec::qos::at_least_once;
  pub.packet_id = static_cast<std::uint16_t>(n % 65535 + 1);
  if (!s.send(codec::packet{pub})) return fail("publish not sent");
  bool acked = false;
  bool delivered = false;
  const auto deadline = steady::now() + max_round_trip_;
  while (!acked || !delivered) {
    codec::packet p;
    const auto r = s.receive(p, milliseconds(remaining_ms(deadline)));
    if (r == mqtt_socket::read_result::timeout) {
      return fail(std::string("no ") + (acked ? "delivery" : "PUBACK") + " within " +
                  std::to_string(max_round_trip_.count()) + " ms");
    }
    if (r != mqtt_socket::read_result::packet) return fail("connection lost");
    if (auto* ack = std::get_if<codec::puback_packet>(&p)) {
      if (ack->packet_id != pub.packet_id || ack->code != codec::reason_code::success) {
        return fail("unexpected PUBACK " + std::to_string(ack->packet_id));
      }
      acked = true;
    } else if (auto* in = std::get_if<codec::publish_packet>(&p)) {
      if (in->payload != pub.payload) {
        return fail("expected payload " + pub.payload + ", got " + in->payload);
      }
      codec::puback_packet back;
      back.packet_id = in->packet_id;
      s.send(codec::packet{back});
      delivered = true;
    } else {
      return fail("unexpected " + std::string(codec::to_string(codec::type_of(p))));
    }
  }
  return true;
}

}  // namespace ringmq::testing
