#pragma once
// `ringmq --check-config`: what a node would refuse at start, found without
// starting one (no listener bound, no store opened). A container image or a
// Helm chart checks the configuration it renders this way.

#include <string>
#include <vector>

#include "broker/config/config.hpp"

namespace ringmq::app {

// The problems of a configuration that loaded (its keys and values are
// valid): the files it names -- password and ACL files parsed, TLS
// certificates and keys loaded -- as the node reads them at start.
// Empty: none.
std::vector<std::string> check_config(const config::config& cfg);

// One line about a configuration without problems, for the operator.
std::string describe_config(const config::config& cfg);

}  // namespace ringmq::app
