#include "broker/app/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "broker/net/worker_pool.hpp"

namespace ringmq::app {

namespace {

void append_json_string(std::string_view s, spdlog::memory_buf_t& out) {
  out.push_back('"');
  for (const char c : s) {
    switch (c) {
      case '"': out.append(std::string_view("\\\"")); break;
      case '\\': out.append(std::string_view("\\\\")); break;
      case '\n': out.append(std::string_view("\\n")); break;
      case '\r': out.append(std::string_view("\\r")); break;
      case '\t': out.append(std::string_view("\\t")); break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char esc[8];
          std::snprintf(esc, sizeof esc, "\\u%04x", c);
          out.append(std::string_view(esc));
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

void append_field(std::string_view key, std::string_view value, spdlog::memory_buf_t& out) {
  out.push_back(',');
  append_json_string(key, out);
  out.push_back(':');
  append_json_string(value, out);
}

bool key_char(char c) { return (c >= 'a' && c <= 'z') || c == '_' || (c >= '0' && c <= '9'); }

// Where the next " key=" starts in `s` at or after `from` (npos when none).
std::size_t next_key(std::string_view s, std::size_t from) {
  for (std::size_t i = from; i < s.size(); ++i) {
    if (s[i] != ' ') continue;
    std::size_t j = i + 1;
    while (j < s.size() && key_char(s[j])) ++j;
    if (j > i + 1 && j < s.size() && s[j] == '=') return i;
  }
  return std::string_view::npos;
}

// One JSON object per line. Log messages are written as "what happened:
// key=value key=value ..."; each pair becomes a field of its own (client_id,
// peer, listener, reason_code, ...), so log pipelines need no parsing.
class json_formatter final : public spdlog::formatter {
 public:
  explicit json_formatter(std::string node) : node_(std::move(node)) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto tp = msg.time;
    const auto secs = std::chrono::system_clock::to_time_t(tp);
    const auto micros =
        std::chrono::duration_cast<std::chrono::microseconds>(tp.time_since_epoch()).count() %
        1'000'000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char ts[64];  // room for any year the compiler can imagine
    std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<long long>(micros));
    dest.push_back('{');
    append_json_string("ts", dest);
    dest.push_back(':');
    append_json_string(ts, dest);
    const auto level = spdlog::level::to_string_view(msg.level);
    append_field("level", std::string_view(level.data(), level.size()), dest);
    append_field("node", node_, dest);
    const int worker = net::worker_pool::current();
    if (worker >= 0) append_field("worker", std::to_string(worker), dest);

    const std::string_view text(msg.payload.data(), msg.payload.size());
    const auto colon = text.find(": ");
    const bool has_fields = colon != std::string_view::npos &&
                            next_key(" " + std::string(text.substr(colon + 2)), 0) == 0;
    if (!has_fields) {
      append_field("msg", text, dest);
    } else {
      append_field("msg", text.substr(0, colon), dest);
      const auto rest = text.substr(colon + 1);  // starts with ' '
      std::size_t at = next_key(rest, 0);
      while (at != std::string_view::npos) {
        const auto eq = rest.find('=', at);
        const auto key = rest.substr(at + 1, eq - at - 1);
        const auto end = next_key(rest, eq + 1);
        const auto value = rest.substr(eq + 1, end == std::string_view::npos ? end : end - eq - 1);
        append_field(key, value, dest);
        at = end;
      }
    }
    dest.push_back('}');
    dest.push_back('\n');
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<json_formatter>(node_);
  }

 private:
  std::string node_;
};

// Text lines: control characters in a message (a client id or topic with a
// newline or a terminal escape) are written as \xNN, so that a client can
// neither split a log line nor forge one. (JSON lines escape them anyway.)
bool needs_escape(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7F;
}

class escaping_formatter final : public spdlog::formatter {
 public:
  explicit escaping_formatter(std::unique_ptr<spdlog::formatter> inner) : inner_(std::move(inner)) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    if (std::none_of(payload.begin(), payload.end(), needs_escape)) {
      inner_->format(msg, dest);
      return;
    }
    std::string escaped;
    escaped.reserve(payload.size() + 16);
    for (const char c : payload) {
      if (needs_escape(c)) {
        char esc[8];
        std::snprintf(esc, sizeof esc, "\\x%02X", static_cast<unsigned char>(c));
        escaped += esc;
      } else {
        escaped.push_back(c);
      }
    }
    auto copy = msg;
    copy.payload = spdlog::string_view_t(escaped.data(), escaped.size());
    inner_->format(copy, dest);
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<escaping_formatter>(inner_->clone());
  }

 private:
  std::unique_ptr<spdlog::formatter> inner_;
};

}  // namespace

bool setup_logging(const config::log_config& log, const std::string& node_id) {
  const auto level = spdlog::level::from_str(log.level);
  if (level == spdlog::level::off && log.level != "off") return false;
  auto logger = spdlog::stderr_logger_mt("ringmq");
  spdlog::set_default_logger(logger);
  spdlog::set_level(level);
  if (log.format == config::log_format::json) {
    spdlog::set_formatter(std::make_unique<json_formatter>(node_id));
  } else {
    spdlog::set_formatter(std::make_unique<escaping_formatter>(std::make_unique<spdlog::pattern_formatter>(
        "%Y-%m-%dT%H:%M:%S.%eZ %-5l " + node_id + " %v", spdlog::pattern_time_type::utc)));
  }
  spdlog::flush_on(spdlog::level::info);
  return true;
}

}  // namespace ringmq::app
