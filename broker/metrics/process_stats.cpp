#include "broker/metrics/process_stats.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace ringmq::metrics {

namespace {

// Seconds since the epoch at which the machine booted (from /proc/stat's btime).
double boot_time() {
  std::ifstream in("/proc/stat");
  std::string key;
  while (in >> key) {
    if (key == "btime") {
      double v = 0;
      in >> v;
      return v;
    }
    std::string rest;
    std::getline(in, rest);
  }
  return 0;
}

}  // namespace

std::optional<process_stats> read_process_stats() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  // The command name (field 2) may contain spaces: fields are counted after ')'.
  const auto close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(line.substr(close + 2));
  std::string f;
  double utime = 0, stime = 0, starttime = 0, vsize = 0, rss_pages = 0;
  for (int i = 3; fields >> f; ++i) {
    if (i == 14) utime = std::stod(f);
    if (i == 15) stime = std::stod(f);
    if (i == 22) starttime = std::stod(f);
    if (i == 23) vsize = std::stod(f);
    if (i == 24) {
      rss_pages = std::stod(f);
      break;
    }
  }
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  process_stats s;
  s.cpu_seconds = (utime + stime) / ticks;
  s.resident_bytes = rss_pages * page;
  s.virtual_bytes = vsize;
  s.start_time_seconds = boot_time() + starttime / ticks;
  std::error_code ec;
  std::size_t fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++fds;
  }
  s.open_fds = static_cast<double>(fds);
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) == 0) s.max_fds = static_cast<double>(r.rlim_cur);
  return s;
}

}  // namespace ringmq::metrics
