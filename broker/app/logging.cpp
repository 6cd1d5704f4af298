#include "broker/app/logging.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace ringmq::app {

bool setup_logging(const config::log_config& log, const std::string& node_id) {
  const auto level = spdlog::level::from_str(log.level);
  if (level == spdlog::level::off && log.level != "off") return false;
  auto logger = spdlog::stderr_logger_mt("ringmq");
  spdlog::set_default_logger(logger);
  spdlog::set_level(level);
  if (log.format == config::log_format::json) {
    // One JSON object per line; the message itself is escaped by the caller's format.
    spdlog::set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","node":")" + node_id +
                            R"(","thread":"%t","msg":"%v"})",
                        spdlog::pattern_time_type::utc);
  } else {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %-5l " + node_id + " %v",
                        spdlog::pattern_time_type::utc);
  }
  spdlog::flush_on(spdlog::level::info);
  return true;
}

}  // namespace ringmq::app
