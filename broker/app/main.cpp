// ringmq: the broker's command line.
//   ringmq -c FILE [--set key.path=value ...]
//   ringmq --version
//   ringmq passwd [-c] [-b] [-D] FILE USER [PASSWORD]
//   ringmq ctl [--url URL] [--token T] [--json] clients|client ID|kick ID|sessions|...

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string_view>

#include "broker/app/check_config.hpp"
#include "broker/app/ctl_command.hpp"
#include "broker/app/logging.hpp"
#include "broker/app/node.hpp"
#include "broker/auth/passwd_command.hpp"
#include "broker/config/config.hpp"
#include "broker/version.hpp"

extern char** environ;

namespace {

constexpr int exit_bad_config = 2;
constexpr int exit_fatal = 1;

std::vector<std::string> environment() {
  std::vector<std::string> out;
  for (char** e = environ; *e; ++e) out.emplace_back(*e);
  return out;
}

// Every connection is a file descriptor: use all the process may have.
void raise_open_files_limit() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
}

}  // namespace

int main(int argc, char** argv) {
  // `ringmq passwd ...` edits a password file; it has its own arguments.
  if (argc > 1 && std::string_view(argv[1]) == "passwd") {
    return ringmq::auth::passwd_main(argc - 1, argv + 1);
  }
  // `ringmq ctl ...` talks to a running node's admin API; it has its own arguments.
  if (argc > 1 && std::string_view(argv[1]) == "ctl") {
    return ringmq::app::ctl_main(argc - 1, argv + 1);
  }
  CLI::App cli{"ringmq: a clustered MQTT broker", "ringmq"};
  std::string config_file;
  std::vector<std::string> sets;
  bool show_version = false;
  bool check_only = false;
  cli.add_option("-c,--config", config_file, "YAML configuration file");
  cli.add_option("--set", sets, "override one key: --set mqtt.max_inflight=50 (repeatable)");
  cli.add_flag("--version", show_version, "print the version and exit");
  cli.add_flag("--check-config", check_only,
               "check the configuration (keys, values, the files it names) and exit: 0 when "
               "it is good, 2 with the problems otherwise; nothing is started");
  cli.footer("Password files: ringmq passwd [-c] [-b] [-D] FILE USER [PASSWORD] (ringmq passwd -h)");
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e) == 0 ? 0 : exit_bad_config;
  }
  if (show_version) {
    std::cout << "ringmq " << ringmq::version << " (" << ringmq::git_revision << ")\n";
    return 0;
  }

  ringmq::config::load_options options;
  options.file = config_file;
  options.set = sets;
  options.environment = environment();
  auto loaded = ringmq::config::load(options);
  if (loaded.error) {
    std::cerr << "ringmq: bad configuration: " << loaded.error->to_string() << "\n";
    return exit_bad_config;
  }
  const auto& cfg = *loaded.value;
  if (check_only) {
    const auto problems = ringmq::app::check_config(cfg);
    for (const auto& p : problems) std::cerr << "ringmq: bad configuration: " << p << "\n";
    if (!problems.empty()) return exit_bad_config;
    std::cout << ringmq::app::describe_config(cfg) << "\n";
    return 0;
  }
  if (!ringmq::app::setup_logging(cfg.log, cfg.node.id)) {
    std::cerr << "ringmq: bad configuration: log.level: unknown level " << cfg.log.level << "\n";
    return exit_bad_config;
  }
  raise_open_files_limit();
  try {
    ringmq::app::node node(cfg);
    node.start();
    return node.run();
  } catch (const ringmq::app::configuration_error& e) {
    std::cerr << "ringmq: bad configuration: " << e.what() << "\n";
    return exit_bad_config;
  } catch (const std::exception& e) {
    spdlog::critical("fatal: {}", e.what());
    return exit_fatal;
  }
}
