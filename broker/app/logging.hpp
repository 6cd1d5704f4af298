#pragma once
// The one logger: spdlog's default logger, configured once at start.

#include <string>

#include "broker/config/config.hpp"

namespace ringmq::app {

// Sets level and format (text or JSON lines) and tags every line with the node id.
// Returns false when the level name is unknown.
bool setup_logging(const config::log_config& log, const std::string& node_id);

}  // namespace ringmq::app
