#pragma once
// Runs a real client program (mosquitto_pub, a Python script, ...) as a child
// process with a hard time limit, collecting its output for assertion messages.
// The wait is event-driven (a pidfd and the output pipes), never a sleep, and a
// child that overruns its limit is killed, so a hung client cannot hang a test.

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace ringmq::testing {

struct child_options {
  std::chrono::milliseconds timeout{10'000};
  // Variables set (or replaced) in the child's environment.
  std::map<std::string, std::string> set_env;
  // Variables removed from the child's environment.
  std::vector<std::string> unset_env;
};

struct child_result {
  std::string command;  // the argv joined by spaces, for messages
  bool started = false;
  std::string start_error;  // why the program could not be started
  bool timed_out = false;   // killed after the time limit
  int exit_code = -1;       // valid when the child exited by itself
  int signal = 0;           // the signal that ended it, if any
  std::string out;
  std::string err;

  bool succeeded() const noexcept { return started && !timed_out && signal == 0 && exit_code == 0; }
  // A readable account of the run: command, how it ended, stdout and stderr.
  std::string describe() const;
};

// Starts argv[0] (looked up in PATH unless it contains a '/') and waits for it.
child_result run_child(const std::vector<std::string>& argv, const child_options& options = {});

// True when `program` is an executable file, or one found in PATH.
bool program_available(const std::string& program);

}  // namespace ringmq::testing
