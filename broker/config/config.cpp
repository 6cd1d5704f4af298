// The configuration loader. Defaults, the YAML file, RINGMQ_* environment variables and --set
// overrides all go through one schema, so a key is spelled, typed and range-checked the same way
// wherever it comes from, and every error can name the key and the place it was written.

#include "broker/config/config.hpp"

#include <fmt/format.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string_view>
#include <utility>

namespace ringmq::config {
namespace {

constexpr std::uint64_t u16_max = std::numeric_limits<std::uint16_t>::max();
constexpr std::uint64_t u32_max = std::numeric_limits<std::uint32_t>::max();
constexpr std::uint64_t u64_max = std::numeric_limits<std::uint64_t>::max();

// Where a value was written: a file line, an environment variable or --set.
struct origin {
  std::string source;
  int line = 0;  // 1-based; 0 when the source has no lines
};

// Thrown inside this file only; load() turns it into its result. Unwinding keeps the many
// validation paths short, and loading runs once at startup.
struct load_failure {
  config_error error;
};

[[noreturn]] void fail(std::string key, const origin& at, std::string message) {
  throw load_failure{config_error{std::move(key), at.source, at.line, std::move(message)}};
}

// A value on its way into the configuration, with the key path it is for.
struct slot {
  YAML::Node node;
  std::string key;
  origin at;
  bool has_lines = false;  // nodes parsed from the file carry meaningful marks
};

[[noreturn]] void fail(const slot& s, std::string message) {
  fail(s.key, s.at, std::move(message));
}

// A null node's mark points past it (often at the next line), so it borrows its key's line.
int line_of(const YAML::Node& node, bool has_lines, int fallback) {
  if (!has_lines || node.IsNull() || node.Mark().is_null()) return fallback;
  return node.Mark().line + 1;
}

std::string join_key(const std::string& parent, std::string_view name) {
  if (parent.empty()) return std::string(name);
  return fmt::format("{}.{}", parent, name);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// ---------------------------------------------------------------------------------------------
// Scalar values

std::optional<std::uint64_t> parse_uint(std::string_view s) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return value;
}

// The one scalar text of a node, or an error naming what was expected instead.
const std::string& scalar_text(const slot& s, std::string_view expected) {
  if (!s.node.IsScalar()) fail(s, fmt::format("expected {}", expected));
  return s.node.Scalar();
}

// YAML 1.2 core schema booleans only: "yes", "on" and "1" are typos more often than intent.
std::optional<bool> parse_bool(std::string_view s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

bool is_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

bool is_v6_char(char c) {
  return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') || c == ':' ||
         c == '.';
}

}  // namespace

bool split_host_port(const std::string& address, std::string& host, std::uint16_t& port) {
  std::string_view a = address;
  std::string_view h;
  std::string_view p;
  if (!a.empty() && a.front() == '[') {
    auto close = a.find(']');
    if (close == std::string_view::npos || close + 1 >= a.size() || a[close + 1] != ':') {
      return false;
    }
    h = a.substr(1, close - 1);
    p = a.substr(close + 2);
    // An optional zone ("fe80::1%eth0") after the address proper.
    auto zone = h.find('%');
    auto bare = h.substr(0, zone);
    if (bare.empty() || bare.find(':') == std::string_view::npos ||
        !std::all_of(bare.begin(), bare.end(), is_v6_char)) {
      return false;
    }
    if (zone != std::string_view::npos) {
      auto name = h.substr(zone + 1);
      if (name.empty() || !std::all_of(name.begin(), name.end(), is_host_char)) return false;
    }
  } else {
    auto colon = a.rfind(':');
    if (colon == std::string_view::npos) return false;
    h = a.substr(0, colon);
    p = a.substr(colon + 1);
    // A bare IPv6 address is ambiguous ("::1:80"), so it must be bracketed.
    if (h.empty() || !std::all_of(h.begin(), h.end(), is_host_char)) return false;
  }
  if (!all_digits(p) || p.size() > 5) return false;
  auto value = parse_uint(p);
  if (!value || *value > u16_max) return false;
  host = std::string(h);
  port = static_cast<std::uint16_t>(*value);
  return true;
}

std::string config_error::to_string() const {
  std::string out = source.empty() ? std::string("configuration") : source;
  if (line > 0) out += fmt::format(":{}", line);
  if (!key.empty()) out += fmt::format(": {}", key);
  out += fmt::format(": {}", message);
  return out;
}

namespace {

// ---------------------------------------------------------------------------------------------
// The schema: one field per key, each knowing how to check and store a value.

// How text from the environment or --set becomes a node before the field sees it.
enum class shape {
  text,       // strings: taken verbatim (unless quoted), so "#" or ":" need no escaping
  scalar,     // numbers, booleans, names
  strings,    // a list of strings: "a,b" or a YAML flow sequence "[a, b]"
  structure,  // maps and lists of maps: YAML flow syntax
};

struct field {
  std::string_view name;
  shape form;
  std::function<void(const slot&)> assign;
};

const field* find_field(const std::vector<field>& fields, std::string_view name) {
  for (const auto& f : fields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

// A string check returns why the value is unacceptable, or nothing.
using check = std::function<std::optional<std::string>(const std::string&)>;

field string_field(std::string_view name, std::string& out, check valid = {}) {
  return {name, shape::text, [&out, valid](const slot& s) {
            // "admin_token:" with no value is an empty string, not an error.
            std::string value = s.node.IsNull() ? std::string() : scalar_text(s, "a string");
            if (valid) {
              if (auto why = valid(value)) fail(s, *why);
            }
            out = std::move(value);
          }};
}

template <class T>
field uint_field(std::string_view name, T& out, std::uint64_t min, std::uint64_t max) {
  return {name, shape::scalar, [&out, min, max](const slot& s) {
            auto expected = fmt::format("an integer from {} to {}", min, max);
            if (s.node.IsNull()) fail(s, fmt::format("expected {}", expected));
            auto value = parse_uint(scalar_text(s, expected));
            if (!value || *value < min || *value > max) {
              fail(s, fmt::format("expected {}", expected));
            }
            out = static_cast<T>(*value);
          }};
}

field bool_field(std::string_view name, bool& out) {
  return {name, shape::scalar, [&out](const slot& s) {
            if (s.node.IsNull()) fail(s, "expected true or false");
            auto value = parse_bool(scalar_text(s, "true or false"));
            if (!value) fail(s, "expected true or false");
            out = *value;
          }};
}

// Null leaves the value unset, so a derived default can still apply.
field optional_bool_field(std::string_view name, std::optional<bool>& out) {
  return {name, shape::scalar, [&out](const slot& s) {
            if (s.node.IsNull()) {
              out.reset();
              return;
            }
            auto value = parse_bool(scalar_text(s, "true or false"));
            if (!value) fail(s, "expected true or false");
            out = *value;
          }};
}

template <class T>
using choices = std::vector<std::pair<std::string_view, T>>;

template <class T>
std::string describe(const choices<T>& options) {
  std::string out = "one of ";
  for (std::size_t i = 0; i < options.size(); ++i) {
    if (i > 0) out += ", ";
    out += options[i].first;
  }
  return out;
}

template <class T>
field choice_field(std::string_view name, T& out, choices<T> options) {
  return {name, shape::scalar, [&out, options = std::move(options)](const slot& s) {
            if (s.node.IsNull()) fail(s, "expected " + describe(options));
            const auto& text = scalar_text(s, describe(options));
            for (const auto& [spelling, value] : options) {
              if (text == spelling) {
                out = value;
                return;
              }
            }
            fail(s, "expected " + describe(options));
          }};
}

field address_list_field(std::string_view name, std::vector<std::string>& out, check valid) {
  return {name, shape::strings, [&out, valid](const slot& s) {
            std::vector<std::string> values;
            if (s.node.IsNull()) {
              out.clear();
              return;
            }
            if (!s.node.IsSequence()) fail(s, "expected a list of host:port addresses");
            std::size_t i = 0;
            for (const auto& item : s.node) {
              slot element{item,
                           fmt::format("{}[{}]", s.key, i),
                           {s.at.source, line_of(item, s.has_lines, s.at.line)},
                           s.has_lines};
              if (!item.IsScalar()) fail(element, "expected a host:port address");
              if (auto why = valid(item.Scalar())) fail(element, *why);
              values.push_back(item.Scalar());
              ++i;
            }
            out = std::move(values);
          }};
}

// Checks -----------------------------------------------------------------------------------

check address(bool allow_empty, bool allow_port_zero) {
  return [=](const std::string& value) -> std::optional<std::string> {
    if (value.empty()) {
      if (allow_empty) return std::nullopt;
      return "expected host:port, got an empty string";
    }
    std::string host;
    std::uint16_t port = 0;
    if (!split_host_port(value, host, port)) {
      return fmt::format(
          "expected host:port (or [ipv6]:port) with a port from 0 to 65535, got \"{}\"", value);
    }
    if (port == 0 && !allow_port_zero) {
      return fmt::format("needs a port from 1 to 65535, got \"{}\"", value);
    }
    return std::nullopt;
  };
}

std::optional<std::string> non_empty(const std::string& value) {
  if (value.empty()) return "must not be empty";
  return std::nullopt;
}

// Node ids travel in cluster messages, metric labels and log lines: keep them plain.
std::optional<std::string> node_id(const std::string& value) {
  if (value.empty()) return std::nullopt;  // the host name
  if (value.size() > 255) return "must be at most 255 characters";
  if (!std::all_of(value.begin(), value.end(), is_host_char)) {
    return "may contain only letters, digits, '.', '-' and '_'";
  }
  return std::nullopt;
}

std::optional<std::string> url_path(const std::string& value) {
  if (value.empty() || value.front() != '/') {
    return fmt::format("must start with '/', got \"{}\"", value);
  }
  return std::nullopt;
}

const choices<listener_type>& listener_types() {
  static const choices<listener_type> types{{"mqtt", listener_type::mqtt},
                                            {"mqtts", listener_type::mqtts},
                                            {"ws", listener_type::ws},
                                            {"wss", listener_type::wss}};
  return types;
}

std::string_view type_name(listener_type type) {
  for (const auto& [name, value] : listener_types()) {
    if (value == type) return name;
  }
  return "mqtt";
}

std::string host_name() {
  char buffer[HOST_NAME_MAX + 1] = {};
  if (gethostname(buffer, sizeof buffer - 1) != 0 || buffer[0] == '\0') return "ringmq";
  return buffer;
}

// A key path from the environment or --set: names, and list indexes as digit strings.
using key_path = std::vector<std::string>;

std::string key_string(const key_path& path) {
  std::string out;
  for (const auto& segment : path) {
    if (all_digits(segment) && !out.empty()) {
      out += fmt::format("[{}]", segment);
    } else {
      out = join_key(out, segment);
    }
  }
  return out;
}

// Turns the text of an environment variable or --set value into a node for a field of `form`.
YAML::Node parse_text(const std::string& text, shape form, const std::string& key,
                      const origin& at) {
  auto load_yaml = [&](std::string_view source) {
    try {
      return YAML::Load(std::string(source));
    } catch (const YAML::Exception& e) {
      fail(key, at, fmt::format("invalid YAML value: {}", e.msg));
    }
  };
  auto stripped = trim(text);
  bool quoted = !stripped.empty() && (stripped.front() == '"' || stripped.front() == '\'');
  switch (form) {
    case shape::text: {
      if (quoted) {
        auto node = load_yaml(stripped);
        if (!node.IsScalar()) fail(key, at, "invalid quoted value");
        return node;
      }
      return YAML::Node(text);
    }
    case shape::scalar:
      // YAML proper, so an empty value or "~" is null and unsets an optional key.
      return load_yaml(stripped);
    case shape::strings: {
      if (!stripped.empty() && stripped.front() == '[') return load_yaml(stripped);
      YAML::Node list(YAML::NodeType::Sequence);
      std::string_view rest = stripped;
      while (!rest.empty()) {
        auto comma = rest.find(',');
        auto item = trim(rest.substr(0, comma));
        if (!item.empty()) list.push_back(std::string(item));
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
      return list;
    }
    case shape::structure:
      return load_yaml(stripped);
  }
  return YAML::Node();
}

// ---------------------------------------------------------------------------------------------

class loader {
 public:
  explicit loader(config& cfg) : cfg_(cfg) {}

  void apply_file(const std::string& path) {
    // Reading a directory yields no bytes, which would pass for an empty file: all defaults.
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) fail("", {path, 0}, "is a directory, not a file");
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("", {path, 0}, fmt::format("cannot open the file: {}", std::strerror(errno)));
    std::ostringstream content;
    content << in.rdbuf();
    if (in.bad()) fail("", {path, 0}, "cannot read the file");
    YAML::Node root;
    try {
      root = YAML::Load(content.str());
    } catch (const YAML::Exception& e) {
      fail("", {path, e.mark.is_null() ? 0 : e.mark.line + 1},
           fmt::format("invalid YAML: {}", e.msg));
    }
    if (root.IsNull()) return;  // an empty file, or only comments: all defaults
    slot s{root, "", {path, line_of(root, true, 1)}, true};
    if (!root.IsMap()) {
      fail(s, "expected a map of sections (node, listeners, mqtt, ...) at the top");
    }
    assign_map(root_fields(), s);
  }

  void apply_environment(const std::vector<std::string>& environment) {
    struct entry {
      key_path path;
      std::string value;
      origin at;
    };
    std::vector<entry> entries;
    constexpr std::string_view prefix = "RINGMQ_";
    for (const auto& variable : environment) {
      auto equals = variable.find('=');
      if (equals == std::string::npos) continue;
      std::string_view name = std::string_view(variable).substr(0, equals);
      if (!name.starts_with(prefix)) continue;
      key_path path;
      std::string_view rest = name.substr(prefix.size());
      while (true) {
        auto separator = rest.find("__");
        std::string segment(rest.substr(0, separator));
        std::transform(segment.begin(), segment.end(), segment.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        path.push_back(std::move(segment));
        if (separator == std::string_view::npos) break;
        rest.remove_prefix(separator + 2);
      }
      entries.push_back(
          {std::move(path), variable.substr(equals + 1), {fmt::format("environment {}", name), 0}});
    }
    // Whole sections and lists first, then single keys inside them, so RINGMQ_LISTENERS and
    // RINGMQ_LISTENERS__0__BIND combine the same way whatever order the environment lists them in.
    std::stable_sort(entries.begin(), entries.end(),
                     [](const entry& a, const entry& b) { return a.path.size() < b.path.size(); });
    for (const auto& e : entries) apply_text(e.path, e.value, e.at);
  }

  void apply_overrides(const std::vector<std::string>& overrides) {
    for (const auto& item : overrides) {
      origin at{"--set", 0};
      auto equals = item.find('=');
      if (equals == std::string::npos) fail(item, at, "expected key.path=value");
      auto text = item.substr(0, equals);
      auto path = parse_key_path(text);
      if (!path) {
        fail(text, at, "malformed key path (expected e.g. mqtt.max_inflight or listeners[0].bind)");
      }
      apply_text(*path, item.substr(equals + 1), at);
    }
  }

  // Checks that span several keys, and defaults derived from other keys.
  void finish() {
    if (cfg_.node.id.empty()) cfg_.node.id = host_name();
    if (cfg_.listeners.empty()) {
      fail("listeners", origin_of({"listeners"}), "at least one listener is required");
    }

    // Which key uses each fixed address: two servers cannot bind the same one.
    struct address_user {
      std::string key;
      std::string owner;  // the listener a bind belongs to, for its origin when bind is a default
    };
    std::map<std::pair<std::string, std::uint16_t>, address_user> bound;
    auto claim = [&](const std::string& address, address_user claimant) {
      std::string host;
      std::uint16_t port = 0;
      if (address.empty() || !split_host_port(address, host, port) || port == 0) return;
      auto [it, inserted] = bound.emplace(std::pair{host, port}, claimant);
      if (inserted) return;
      // Blame the later key unless only the earlier one was written down somewhere.
      auto blamed = claimant;
      auto other = it->second;
      if (!origins_.contains(claimant.key) && origins_.contains(other.key)) {
        std::swap(blamed, other);
      }
      fail(blamed.key, origin_of({blamed.key, blamed.owner}),
           fmt::format("{} is already used by {}", address, other.key));
    };
    for (std::size_t i = 0; i < cfg_.listeners.size(); ++i) {
      check_listener(i);
      claim(cfg_.listeners[i].bind, {fmt::format("listeners[{}].bind", i), listener_key(i)});
    }
    claim(cfg_.http.bind, {"http.bind", "http"});
    claim(cfg_.cluster.bind, {"cluster.bind", "cluster"});

    // Explicit names must be unique: they label metrics and logs.
    for (std::size_t i = 0; i < cfg_.listeners.size(); ++i) {
      auto key = fmt::format("listeners[{}].name", i);
      if (!origins_.contains(key)) continue;
      for (std::size_t j = 0; j < cfg_.listeners.size(); ++j) {
        if (j != i && cfg_.listeners[j].name == cfg_.listeners[i].name) {
          // Point at the later of the two listeners: the earlier one was there first.
          auto blamed = std::max(i, j);
          auto blamed_key = fmt::format("listeners[{}].name", blamed);
          fail(blamed_key, origin_of({blamed_key, listener_key(blamed)}),
               fmt::format("\"{}\" is also the name of listeners[{}]", cfg_.listeners[i].name,
                           std::min(i, j)));
        }
      }
    }

    // Peers without a cluster address would be silently ignored: the node would run alone.
    const auto& cluster = cfg_.cluster;
    if (cluster.bind.empty()) {
      for (auto [key, set] : {std::pair{"cluster.seeds", !cluster.seeds.empty()},
                              std::pair{"cluster.dns", !cluster.dns.empty()},
                              std::pair{"cluster.advertise", !cluster.advertise.empty()}}) {
        if (set) fail(key, origin_of({key}), "needs cluster.bind (without it the node runs alone)");
      }
    }
    // Liveness needs heartbeats to come more often than a peer is suspected,
    // and suspicion before death.
    if (cluster.suspect_timeout_ms <= cluster.heartbeat_interval_ms) {
      fail("cluster.suspect_timeout_ms", origin_of({"cluster.suspect_timeout_ms"}),
           fmt::format("must be above cluster.heartbeat_interval_ms ({})",
                       cluster.heartbeat_interval_ms));
    }
    if (cluster.dead_member_timeout_ms != 0 &&
        cluster.dead_member_timeout_ms <= cluster.dead_timeout_ms) {
      fail("cluster.dead_member_timeout_ms", origin_of({"cluster.dead_member_timeout_ms"}),
           "must be 0 (never) or above cluster.dead_timeout_ms");
    }
    if (cluster.dead_timeout_ms <= cluster.suspect_timeout_ms) {
      fail("cluster.dead_timeout_ms", origin_of({"cluster.dead_timeout_ms"}),
           fmt::format("must be above cluster.suspect_timeout_ms ({})",
                       cluster.suspect_timeout_ms));
    }
    {
      const bool cert = !cluster.tls_cert_file.empty(), key = !cluster.tls_key_file.empty(),
                 ca = !cluster.tls_ca_file.empty();
      if ((cert || key || ca) && !(cert && key && ca)) {
        // Blame a key that was written down, and name the one missing.
        const char* given = cert ? "cluster.tls_cert_file"
                            : key ? "cluster.tls_key_file"
                                  : "cluster.tls_ca_file";
        const char* missing = !cert ? "cluster.tls_cert_file"
                              : !key ? "cluster.tls_key_file"
                                     : "cluster.tls_ca_file";
        fail(given, origin_of({given}),
             fmt::format("needs {} too: mutual TLS between nodes takes the certificate, key and "
                         "cluster CA together",
                         missing));
      }
    }
    if (!cluster.advertise.empty()) {
      std::string host;
      std::uint16_t port = 0;
      split_host_port(cluster.advertise, host, port);
      if (host == "0.0.0.0" || host == "::") {
        fail("cluster.advertise", origin_of({"cluster.advertise"}),
             "must be an address peers can reach, not a wildcard");
      }
    }
  }

 private:
  // ----- navigation for the environment and --set

  static std::optional<key_path> parse_key_path(std::string_view text) {
    key_path path;
    std::string_view rest = text;
    while (true) {
      auto dot = rest.find('.');
      auto part = rest.substr(0, dot);
      auto bracket = part.find('[');
      auto name = part.substr(0, bracket);
      if (name.empty()) return std::nullopt;
      path.emplace_back(name);
      while (bracket != std::string_view::npos) {
        auto close = part.find(']', bracket);
        if (close == std::string_view::npos) return std::nullopt;
        auto index = part.substr(bracket + 1, close - bracket - 1);
        if (!all_digits(index)) return std::nullopt;
        path.emplace_back(index);
        part.remove_prefix(close + 1);
        if (part.empty()) break;
        if (part.front() != '[') return std::nullopt;
        bracket = 0;
      }
      if (dot == std::string_view::npos) break;
      rest.remove_prefix(dot + 1);
    }
    return path;
  }

  void apply_text(const key_path& path, const std::string& text, const origin& at) {
    auto key = key_string(path);
    auto unknown = [&]() { fail(key, at, "unknown key"); };
    auto set = [&](const field& f) {
      store(f, slot{parse_text(text, f.form, key, at), key, at, false});
    };
    if (path.empty() || path.front().empty()) unknown();
    const auto& section = path.front();

    if (section == "listeners") {
      if (path.size() == 1) {
        store(*find_field(root_fields(), "listeners"),
              slot{parse_text(text, shape::structure, key, at), key, at, false});
        return;
      }
      if (!all_digits(path[1])) unknown();
      auto count = cfg_.listeners.size();
      auto index = parse_uint(path[1]);
      // Index == count appends, so a listener can be added without restating the others.
      if (!index || *index > count) {
        fail(key, at,
             fmt::format("no such listener: there are {} (index {} adds one)", count, count));
      }
      auto i = static_cast<std::size_t>(*index);
      if (i == count) {
        cfg_.listeners.emplace_back();
        origins_[listener_key(i)] = at;
      }
      if (path.size() == 2) {
        replace_listener(i, slot{parse_text(text, shape::structure, key, at), key, at, false});
        return;
      }
      if (path.size() > 3) unknown();
      auto fields = listener_fields(i);
      auto f = find_field(fields, path[2]);
      if (!f) unknown();
      set(*f);
      return;
    }

    auto fields = section_fields(section);
    if (!fields) unknown();
    if (path.size() == 1) {
      auto sections = root_fields();
      store(*find_field(sections, section),
            slot{parse_text(text, shape::structure, key, at), key, at, false});
      return;
    }
    if (path.size() > 2) unknown();
    auto f = find_field(*fields, path[1]);
    if (!f) unknown();
    set(*f);
  }

  // ----- the schema

  std::vector<field> root_fields() {
    std::vector<field> fields;
    for (std::string_view name : {"node", "http", "auth", "mqtt", "storage", "cluster", "log"}) {
      fields.push_back({name, shape::structure,
                        [this, name](const slot& s) { assign_map(*section_fields(name), s); }});
    }
    fields.push_back(
        {"listeners", shape::structure, [this](const slot& s) { assign_listeners(s); }});
    return fields;
  }

  std::optional<std::vector<field>> section_fields(std::string_view section) {
    if (section == "node") {
      auto& c = cfg_.node;
      return std::vector<field>{
          string_field("id", c.id, node_id),
          string_field("data_dir", c.data_dir, non_empty),
          uint_field("workers", c.workers, 0, 1024),
          uint_field("shutdown_timeout_ms", c.shutdown_timeout_ms, 100, 3'600'000),
      };
    }
    if (section == "http") {
      auto& c = cfg_.http;
      return std::vector<field>{
          string_field("bind", c.bind, address(true, true)),
          string_field("admin_token", c.admin_token),
          bool_field("protect_reads", c.protect_reads),
      };
    }
    if (section == "auth") {
      auto& c = cfg_.auth;
      return std::vector<field>{
          optional_bool_field("allow_anonymous", c.allow_anonymous),
          string_field("password_file", c.password_file),
          string_field("acl_file", c.acl_file),
      };
    }
    if (section == "mqtt") {
      auto& c = cfg_.mqtt;
      return std::vector<field>{
          uint_field("max_packet_size", c.max_packet_size, 1, 268'435'455),
          uint_field("max_inflight", c.max_inflight, 1, u16_max),
          uint_field("max_queued_messages", c.max_queued_messages, 1, u32_max),
          uint_field("max_keepalive", c.max_keepalive, 1, u16_max),
          uint_field("max_session_expiry", c.max_session_expiry, 0, u32_max),
          bool_field("allow_zero_length_clientid", c.allow_zero_length_clientid),
          uint_field("max_connections", c.max_connections, 0, u32_max),
          uint_field("max_subscriptions_per_client", c.max_subscriptions_per_client, 0, u32_max),
          uint_field("max_topic_alias", c.max_topic_alias, 0, u16_max),
          uint_field("connect_timeout_ms", c.connect_timeout_ms, 1, 3'600'000),
          // MQTT requires servers to accept client ids of 1 to 23 bytes.
          uint_field("max_client_id_length", c.max_client_id_length, 23, u16_max),
          uint_field("max_outbound_bytes", c.max_outbound_bytes, 1, u32_max),
          bool_field("retain_available", c.retain_available),
          uint_field("sys_interval_s", c.sys_interval_s, 0, 86'400),
      };
    }
    if (section == "storage") {
      auto& c = cfg_.storage;
      return std::vector<field>{
          choice_field<durability>("durability", c.durability,
                                   {{"sync", durability::sync},
                                    {"batch", durability::batch},
                                    {"none", durability::none}}),
          uint_field("max_store_bytes", c.max_store_bytes, 0, u64_max),
      };
    }
    if (section == "cluster") {
      auto& c = cfg_.cluster;
      return std::vector<field>{
          string_field("name", c.name, node_id),
          string_field("bind", c.bind, address(true, true)),
          string_field("advertise", c.advertise, address(true, false)),
          address_list_field("seeds", c.seeds, address(false, false)),
          string_field("dns", c.dns, address(true, false)),
          uint_field("dns_interval_ms", c.dns_interval_ms, 100, 3'600'000),
          uint_field("replication_factor", c.replication_factor, 1, u32_max),
          bool_field("replicate_sessions", c.replicate_sessions),
          uint_field("write_quorum", c.write_quorum, 0, u32_max),
          uint_field("vnodes", c.vnodes, 1, 4096),
          uint_field("heartbeat_interval_ms", c.heartbeat_interval_ms, 10, 60'000),
          uint_field("suspect_timeout_ms", c.suspect_timeout_ms, 20, 600'000),
          uint_field("dead_timeout_ms", c.dead_timeout_ms, 30, 3'600'000),
          uint_field("dead_member_timeout_ms", c.dead_member_timeout_ms, 0, u32_max),
          string_field("server_reference", c.server_reference),
          uint_field("leave_disconnect_rate", c.leave_disconnect_rate, 1, 1'000'000),
          uint_field("digest_interval_ms", c.digest_interval_ms, 100, 3'600'000),
          uint_field("route_sync_timeout_ms", c.route_sync_timeout_ms, 1, 600'000),
          uint_field("claim_timeout_ms", c.claim_timeout_ms, 1, 600'000),
          uint_field("peer_queue_bytes", c.peer_queue_bytes, 1 << 20, u64_max),
          uint_field("tombstone_ttl_s", c.tombstone_ttl_s, 1, u32_max),
          string_field("tls_cert_file", c.tls_cert_file),
          string_field("tls_key_file", c.tls_key_file),
          string_field("tls_ca_file", c.tls_ca_file),
          string_field("tls_server_name", c.tls_server_name),
      };
    }
    if (section == "log") {
      auto& c = cfg_.log;
      return std::vector<field>{
          choice_field<std::string>("level", c.level,
                                    {{"trace", "trace"},
                                     {"debug", "debug"},
                                     {"info", "info"},
                                     {"warn", "warn"},
                                     {"error", "error"}}),
          choice_field<log_format>("format", c.format,
                                   {{"text", log_format::text}, {"json", log_format::json}}),
      };
    }
    return std::nullopt;
  }

  std::vector<field> listener_fields(std::size_t i) {
    auto& l = cfg_.listeners[i];
    return {
        choice_field<listener_type>("type", l.type, listener_types()),
        string_field("bind", l.bind, address(false, true)),
        string_field("name", l.name, non_empty),
        string_field("cert_file", l.cert_file),
        string_field("key_file", l.key_file),
        string_field("ca_file", l.ca_file),
        bool_field("require_client_cert", l.require_client_cert),
        bool_field("use_identity_as_username", l.use_identity_as_username),
        string_field("path", l.path, url_path),
        uint_field("max_connections", l.max_connections, 0, u32_max),
    };
  }

  static std::string listener_key(std::size_t i) { return fmt::format("listeners[{}]", i); }

  // ----- assignment

  void store(const field& f, const slot& s) {
    f.assign(s);
    origins_[s.key] = s.at;
  }

  // Sets the keys present in a map and leaves the others as they are.
  void assign_map(const std::vector<field>& fields, const slot& s) {
    if (s.node.IsNull()) return;  // "mqtt:" with nothing under it
    if (!s.node.IsMap()) fail(s, "expected a map");
    std::set<std::string> seen;
    for (const auto& entry : s.node) {
      origin key_at{s.at.source, line_of(entry.first, s.has_lines, s.at.line)};
      if (!entry.first.IsScalar()) fail(s.key, key_at, "expected a key name");
      const auto& name = entry.first.Scalar();
      auto key = join_key(s.key, name);
      // yaml-cpp keeps both copies of a repeated key; which one wins would be an accident.
      if (!seen.insert(name).second) fail(key, key_at, "duplicate key");
      auto f = find_field(fields, name);
      if (!f) fail(key, key_at, "unknown key");
      store(*f, slot{entry.second,
                     key,
                     {s.at.source, line_of(entry.second, s.has_lines, key_at.line)},
                     s.has_lines});
    }
  }

  // A list of listeners replaces the default one and any earlier list.
  void assign_listeners(const slot& s) {
    if (!s.node.IsNull() && !s.node.IsSequence()) fail(s, "expected a list of listeners");
    cfg_.listeners.clear();
    forget("listeners[");
    if (s.node.IsNull()) return;
    std::size_t i = 0;
    for (const auto& item : s.node) {
      auto key = listener_key(i);
      origin at{s.at.source, line_of(item, s.has_lines, s.at.line)};
      cfg_.listeners.emplace_back();
      origins_[key] = at;
      slot element{item, key, at, s.has_lines};
      if (!item.IsMap()) fail(element, "expected a map (type, bind, ...)");
      assign_map(listener_fields(i), element);
      ++i;
    }
  }

  void replace_listener(std::size_t i, const slot& s) {
    if (!s.node.IsMap()) fail(s, "expected a map (type, bind, ...)");
    cfg_.listeners[i] = listener_config{};
    forget(listener_key(i) + ".");
    origins_[listener_key(i)] = s.at;
    assign_map(listener_fields(i), s);
  }

  void forget(const std::string& prefix) {
    std::erase_if(origins_, [&](const auto& entry) { return entry.first.starts_with(prefix); });
  }

  // Where the first of `keys` that was set came from.
  origin origin_of(std::initializer_list<std::string> keys) const {
    for (const auto& key : keys) {
      auto it = origins_.find(key);
      if (it != origins_.end()) return it->second;
    }
    return {"defaults", 0};
  }

  void check_listener(std::size_t i) {
    auto& l = cfg_.listeners[i];
    auto base = listener_key(i);
    auto type = fmt::format("{} listeners", type_name(l.type));
    bool tls = l.type == listener_type::mqtts || l.type == listener_type::wss;
    bool ws = l.type == listener_type::ws || l.type == listener_type::wss;
    auto key = [&](std::string_view name) { return fmt::format("{}.{}", base, name); };
    // A missing key has no line of its own: point at the type that asks for it, else the listener.
    auto required = [&](std::string_view name, std::string why) {
      fail(key(name), origin_of({key("type"), base}), std::move(why));
    };

    if (tls) {
      if (l.cert_file.empty()) required("cert_file", fmt::format("required for {}", type));
      if (l.key_file.empty()) required("key_file", fmt::format("required for {}", type));
      if (l.require_client_cert && l.ca_file.empty()) {
        fail(key("ca_file"), origin_of({key("require_client_cert"), base}),
             "required when require_client_cert is true (client certificates are checked against "
             "it)");
      }
      if (l.use_identity_as_username && !l.require_client_cert) {
        fail(key("use_identity_as_username"), origin_of({key("use_identity_as_username"), base}),
             "needs require_client_cert: true (there is no identity without a client certificate)");
      }
    } else {
      // TLS settings on a plain listener mean the operator believes traffic is encrypted.
      for (auto [name, set] :
           {std::pair{"cert_file", !l.cert_file.empty()},
            std::pair{"key_file", !l.key_file.empty()}, std::pair{"ca_file", !l.ca_file.empty()},
            std::pair{"require_client_cert", l.require_client_cert},
            std::pair{"use_identity_as_username", l.use_identity_as_username}}) {
        if (set) {
          fail(key(name), origin_of({key(name), base}),
               fmt::format("only for mqtts and wss listeners, not {}", type_name(l.type)));
        }
      }
    }
    if (!ws && origins_.contains(key("path"))) {
      fail(key("path"), origin_of({key("path")}),
           fmt::format("only for ws and wss listeners, not {}", type_name(l.type)));
    }
    if (l.name.empty()) l.name = fmt::format("{}:{}", type_name(l.type), l.bind);
  }

  config& cfg_;
  // Where each key that was set came from, for checks that run after every source is read.
  std::map<std::string, origin> origins_;
};

}  // namespace

load_result load(const load_options& options) {
  load_result result;
  try {
    config cfg;
    cfg.listeners.emplace_back();  // the default; any listeners list replaces it
    loader builder(cfg);
    if (!options.file.empty()) builder.apply_file(options.file);
    builder.apply_environment(options.environment);
    builder.apply_overrides(options.set);
    builder.finish();
    result.value = std::move(cfg);
  } catch (const load_failure& failure) {
    result.error = failure.error;
  } catch (const std::exception& e) {
    // yaml-cpp may still throw while walking a node; report it rather than crash at startup.
    result.error = config_error{"", options.file, 0, e.what()};
  }
  return result;
}

}  // namespace ringmq::config
