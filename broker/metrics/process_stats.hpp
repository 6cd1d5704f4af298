#pragma once
// Figures about this process, read from /proc (Linux), for the standard
// process_* metrics.

#include <optional>

namespace ringmq::metrics {

struct process_stats {
  double cpu_seconds = 0;        // user + system
  double resident_bytes = 0;
  double virtual_bytes = 0;
  double open_fds = 0;
  double max_fds = 0;
  double start_time_seconds = 0;  // Unix time the process started
};

std::optional<process_stats> read_process_stats();

}  // namespace ringmq::metrics
