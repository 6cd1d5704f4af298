#pragma once
// `ringmq ctl`: looks at and steers a running node through its admin HTTP API
// (/api/v1, see broker/app/admin_api.hpp).
//
//   ringmq ctl [--url http://127.0.0.1:8080] [--token T] [--json] COMMAND
//     clients [--like TEXT] [--username NAME]   connected clients
//     client ID                                  one client and its subscriptions
//     kick ID                                    disconnects a client (needs the token)
//     sessions [--like TEXT] [--username NAME]   sessions, connected or not
//     subscriptions [--client ID]                subscriptions
//     retained [FILTER]                          retained messages (default filter #)
//   Lists take --page N and --limit N (default 1 and 100).
//
// Tables by default, the API's JSON as it came with --json. The token can also
// come from RINGMQ_HTTP__ADMIN_TOKEN, the variable the broker reads it from, so
// that it does not show in the process list.
// Exit codes: 0 done; 1 the node is unreachable or refused the request (4xx,
// 5xx); 2 bad command line.

#include <iosfwd>
#include <string>
#include <vector>

namespace ringmq::app {

// argv as main() gets it, argv[0] being "ctl". Returns the exit code.
int ctl_main(int argc, char** argv);

// The same with the arguments after "ctl", the token from the environment
// (empty when unset), and the output streams given.
int run_ctl(const std::vector<std::string>& args, const std::string& env_token,
            std::ostream& out, std::ostream& err);

}  // namespace ringmq::app
