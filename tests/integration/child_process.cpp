#include "tests/integration/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>

extern char** environ;

namespace ringmq::testing {
namespace {

using clock = std::chrono::steady_clock;

// After the child has exited, whatever it left running in its process group is
// killed; its output is read until EOF for at most this long.
constexpr std::chrono::milliseconds drain_after_exit{500};

// Without a pidfd (old kernel, seccomp) the exit is noticed by polling waitid
// between pipe reads at this interval.
constexpr int fallback_poll_ms = 20;

class fd_guard {
 public:
  explicit fd_guard(int fd = -1) noexcept : fd_(fd) {}
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  ~fd_guard() { reset(); }
  int get() const noexcept { return fd_; }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

std::vector<std::string> child_environment(const child_options& options) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const std::string entry(*e);
    const auto name = entry.substr(0, entry.find('='));
    const bool dropped =
        options.set_env.contains(name) ||
        std::find(options.unset_env.begin(), options.unset_env.end(), name) !=
            options.unset_env.end();
    if (!dropped) env.push_back(entry);
  }
  for (const auto& [name, value] : options.set_env) env.push_back(name + "=" + value);
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Reads what one poll() reported readable; closes the pipe at EOF.
void read_some(fd_guard& fd, std::string& into) {
  char buffer[4096];
  const auto n = ::read(fd.get(), buffer, sizeof buffer);
  if (n > 0) {
    into.append(buffer, static_cast<std::size_t>(n));
  } else if (n == 0 || errno != EINTR) {
    fd.reset();
  }
}

void record_status(child_result& r, int status) {
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
}

}  // namespace

std::string child_result::describe() const {
  std::ostringstream s;
  s << "command: " << command << "\n";
  if (!started) {
    s << "could not start: " << start_error << "\n";
    return s.str();
  }
  if (timed_out) {
    s << "killed: still running after the time limit\n";
  } else if (signal != 0) {
    s << "ended by signal " << signal << " (" << strsignal(signal) << ")\n";
  } else {
    s << "exit code " << exit_code << "\n";
  }
  s << "--- stdout ---\n" << out << (out.empty() || out.back() == '\n' ? "" : "\n");
  s << "--- stderr ---\n" << err << (err.empty() || err.back() == '\n' ? "" : "\n");
  return s.str();
}

child_result run_child(const std::vector<std::string>& argv, const child_options& options) {
  child_result r;
  for (const auto& a : argv) r.command += (r.command.empty() ? "" : " ") + a;
  if (argv.empty()) {
    r.start_error = "empty command line";
    return r;
  }

  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    r.start_error = std::string("pipe2: ") + std::strerror(errno);
    return r;
  }
  fd_guard out_read(out_pipe[0]);
  fd_guard out_write(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    r.start_error = std::string("pipe2: ") + std::strerror(errno);
    return r;
  }
  fd_guard err_read(err_pipe[0]);
  fd_guard err_write(err_pipe[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_write.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_write.get(), STDERR_FILENO);

  // Its own process group, so that a timeout kills anything it started too; and
  // default signal handling whatever the test runner's threads have blocked.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t no_signals;
  sigemptyset(&no_signals);
  posix_spawnattr_setsigmask(&attr, &no_signals);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);

  std::vector<std::string> args(argv);
  auto c_args = c_strings(args);
  auto env = child_environment(options);
  auto c_env = c_strings(env);

  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, c_args[0], &actions, &attr, c_args.data(), c_env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    r.start_error = std::string("posix_spawnp: ") + std::strerror(rc);
    return r;
  }
  r.started = true;
  // Only the child may hold the write ends, or the pipes never reach EOF.
  out_write.reset();
  err_write.reset();

  // The raw system call: glibc 2.36's <sys/pidfd.h> lacks C linkage for C++.
  fd_guard pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  bool exited = false;
  int status = 0;
  auto deadline = clock::now() + options.timeout;

  while (!exited || out_read.get() >= 0 || err_read.get() >= 0) {
    const auto now = clock::now();
    if (now >= deadline) break;
    pollfd fds[3];
    nfds_t count = 0;
    if (out_read.get() >= 0) fds[count++] = {out_read.get(), POLLIN, 0};
    if (err_read.get() >= 0) fds[count++] = {err_read.get(), POLLIN, 0};
    const bool watch_pid = !exited && pidfd.get() >= 0;
    if (watch_pid) fds[count++] = {pidfd.get(), POLLIN, 0};

    auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
    if (!exited && pidfd.get() < 0) wait_ms = std::min<long long>(wait_ms, fallback_poll_ms);
    const int ready = ::poll(fds, count, static_cast<int>(std::max<long long>(wait_ms, 1)));
    if (ready < 0 && errno != EINTR) break;

    for (nfds_t i = 0; ready > 0 && i < count; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == out_read.get()) read_some(out_read, r.out);
      else if (fds[i].fd == err_read.get()) read_some(err_read, r.err);
    }
    // WNOWAIT leaves the child a zombie, so its process group id cannot be reused
    // before the leftovers in the group are killed.
    siginfo_t info{};
    if (!exited && ::waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid == pid) {
      exited = true;
      ::kill(-pid, SIGKILL);
      deadline = std::min(deadline, clock::now() + drain_after_exit);
    }
  }

  if (!exited) {
    r.timed_out = true;
    ::kill(-pid, SIGKILL);
  }
  ::waitpid(pid, &status, 0);
  record_status(r, status);
  return r;
}

bool program_available(const std::string& program) {
  if (program.find('/') != std::string::npos) return ::access(program.c_str(), X_OK) == 0;
  const char* path = std::getenv("PATH");
  if (!path) return false;
  std::istringstream dirs(path);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty()) dir = ".";
    if (::access((dir + "/" + program).c_str(), X_OK) == 0) return true;
  }
  return false;
}

}  // namespace ringmq::testing
