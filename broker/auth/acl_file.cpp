#include "broker/auth/acl_file.hpp"

#include <algorithm>

#include "broker/codec/topic.hpp"

namespace ringmq::auth {

namespace {

using levels_view = std::vector<std::string_view>;

bool is_blank(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

// Splits off the first blank-separated word; `rest` gets the remainder, trimmed.
std::string_view first_word(std::string_view s, std::string_view& rest) noexcept {
  std::size_t end = 0;
  while (end < s.size() && !is_blank(s[end])) ++end;
  rest = trim(s.substr(end));
  return s.substr(0, end);
}

std::optional<std::uint8_t> access_of(std::string_view word) noexcept {
  if (word == "read") return acl_access::read;
  if (word == "write") return acl_access::write;
  if (word == "readwrite") return acl_access::readwrite;
  if (word == "deny") return acl_access::deny;
  return std::nullopt;
}

levels_view split(std::string_view s) {
  levels_view out;
  while (true) {
    const auto slash = s.find('/');
    out.push_back(s.substr(0, slash));
    if (slash == std::string_view::npos) return out;
    s.remove_prefix(slash + 1);
  }
}

bool starts_with_dollar(std::string_view level) noexcept {
  return !level.empty() && level.front() == '$';
}

bool is_wildcard(std::string_view level) noexcept { return level == "+" || level == "#"; }

// A value that must not be substituted into a pattern: it would add levels or wildcards.
bool dangerous(std::string_view value) noexcept {
  return value.find_first_of("+#/") != std::string_view::npos;
}

// The client as the rules see it.
struct subject {
  std::string_view client_id;
  std::optional<std::string_view> user_name;
  bool client_id_dangerous = false;
  bool user_name_dangerous = false;

  explicit subject(const core::client_identity& who) : client_id(who.client_id) {
    if (who.username) user_name = *who.username;
    client_id_dangerous = dangerous(client_id);
    user_name_dangerous = user_name && dangerous(*user_name);
  }

  // The value for a variable level; empty when there is none (no user name).
  std::string_view value(acl_level::kind k) const noexcept {
    if (k == acl_level::kind::client_id) return client_id;
    return user_name.value_or(std::string_view{});
  }
  bool is_dangerous(acl_level::kind k) const noexcept {
    return k == acl_level::kind::client_id ? client_id_dangerous : user_name_dangerous;
  }
};

// A pattern line that grants can be used only with harmless, present values.
bool grant_usable(const acl_rule& r, const subject& s) noexcept {
  if (r.uses_client_id && (s.client_id.empty() || s.client_id_dangerous)) return false;
  if (r.uses_user_name && (!s.user_name || s.user_name->empty() || s.user_name_dangerous)) {
    return false;
  }
  return true;
}

// A deny pattern line applies whenever its values exist (dangerous ones widen it).
bool denial_applies(const acl_rule& r, const subject& s) noexcept {
  if (r.uses_client_id && s.client_id.empty()) return false;
  if (r.uses_user_name && (!s.user_name || s.user_name->empty())) return false;
  return true;
}

// Does rule `r` match the topic name `topic`? In a denial, a dangerous value
// matches everything from its level on (the most it could have meant).
bool matches_topic(const acl_rule& r, std::string_view topic, const subject& s, bool denial) {
  const bool dollar = starts_with_dollar(topic);
  std::size_t pos = 0;
  bool consumed = false;  // every level of the topic has been matched
  for (std::size_t i = 0; i < r.levels.size(); ++i) {
    const auto& l = r.levels[i];
    const bool variable =
        l.what == acl_level::kind::client_id || l.what == acl_level::kind::user_name;
    if (l.what == acl_level::kind::multi || (variable && denial && s.is_dangerous(l.what))) {
      return !(i == 0 && dollar);
    }
    if (consumed) return false;
    std::string_view level;
    const auto slash = topic.find('/', pos);
    if (slash == std::string_view::npos) {
      level = topic.substr(pos);
      consumed = true;
    } else {
      level = topic.substr(pos, slash - pos);
      pos = slash + 1;
    }
    switch (l.what) {
      case acl_level::kind::literal:
        if (level != l.text) return false;
        break;
      case acl_level::kind::single:
        if (i == 0 && dollar) return false;
        break;
      case acl_level::kind::client_id:
      case acl_level::kind::user_name: {
        if (i == 0 && dollar) return false;
        if (s.is_dangerous(l.what)) return false;
        const auto value = s.value(l.what);
        if (value.empty() || level != value) return false;
        break;
      }
      case acl_level::kind::multi:
        break;
    }
  }
  return consumed;
}

// The rule as a plain filter for this client; nullopt when it cannot apply.
std::optional<levels_view> concrete(const acl_rule& r, const subject& s, bool denial) {
  levels_view out;
  out.reserve(r.levels.size());
  for (std::size_t i = 0; i < r.levels.size(); ++i) {
    const auto& l = r.levels[i];
    switch (l.what) {
      case acl_level::kind::literal: out.push_back(l.text); break;
      case acl_level::kind::single: out.push_back("+"); break;
      case acl_level::kind::multi: out.push_back("#"); break;
      case acl_level::kind::client_id:
      case acl_level::kind::user_name: {
        if (s.is_dangerous(l.what)) {
          if (!denial) return std::nullopt;
          out.push_back("#");
          return out;
        }
        const auto value = s.value(l.what);
        // A value starting with '$' never matches at the first level (as in matches_topic).
        if (value.empty() || (i == 0 && starts_with_dollar(value))) return std::nullopt;
        out.push_back(value);
        break;
      }
    }
  }
  return out;
}

// True when every topic that `inner` matches is matched by `outer`.
bool covers(const levels_view& outer, const levels_view& inner) {
  for (std::size_t i = 0;; ++i) {
    if (i < outer.size() && outer[i] == "#") {
      return !(i == 0 && !inner.empty() && starts_with_dollar(inner[0]) && !is_wildcard(inner[0]));
    }
    if (i == outer.size()) return i == inner.size();
    if (i == inner.size()) return false;
    const auto o = outer[i];
    const auto n = inner[i];
    if (n == "#") return false;
    if (o == "+") {
      if (i == 0 && starts_with_dollar(n)) return false;
      continue;
    }
    if (n == "+" || o != n) return false;
  }
}

// The filter matching exactly the topics both match; nullopt when there are none.
std::optional<levels_view> meet(const levels_view& a, const levels_view& b) {
  levels_view out;
  for (std::size_t i = 0;; ++i) {
    const bool a_multi = i < a.size() && a[i] == "#";
    const bool b_multi = i < b.size() && b[i] == "#";
    if (a_multi || b_multi) {
      const auto& other = a_multi ? b : a;
      if (i == 0 && !other.empty() && starts_with_dollar(other[0]) && !is_wildcard(other[0])) {
        return std::nullopt;
      }
      out.insert(out.end(), other.begin() + static_cast<std::ptrdiff_t>(std::min(i, other.size())),
                 other.end());
      return out;
    }
    if (i == a.size() && i == b.size()) return out;
    if (i == a.size() || i == b.size()) return std::nullopt;
    const auto x = a[i];
    const auto y = b[i];
    if (x == "+" && y == "+") {
      out.push_back("+");
    } else if (x == "+" || y == "+") {
      const auto literal = x == "+" ? y : x;
      if (i == 0 && starts_with_dollar(literal)) return std::nullopt;
      out.push_back(literal);
    } else if (x == y) {
      out.push_back(x);
    } else {
      return std::nullopt;
    }
  }
}

bool is_sys(std::string_view topic) noexcept {
  return topic == "$SYS" || topic.starts_with("$SYS/");
}

// Why `filter` is not a valid ACL filter (empty when it is).
std::string invalid_filter(std::string_view filter) {
  if (filter.empty()) return "empty topic";
  if (filter.size() > 65535) return "topic longer than 65535 bytes";
  if (filter.find('\0') != std::string_view::npos) return "topic contains NUL";
  const auto levels = split(filter);
  for (std::size_t i = 0; i < levels.size(); ++i) {
    const auto l = levels[i];
    if (l == "#" && i + 1 != levels.size()) return "'#' is not the last level";
    if (!is_wildcard(l) && l.find_first_of("+#") != std::string_view::npos) {
      return "'+' and '#' must stand alone in their level";
    }
  }
  return {};
}

acl_rule make_rule(std::string_view filter, std::uint8_t access, bool pattern, int line) {
  acl_rule r;
  r.access = access;
  r.line = line;
  for (const auto l : split(filter)) {
    acl_level level;
    if (l == "+") {
      level.what = acl_level::kind::single;
    } else if (l == "#") {
      level.what = acl_level::kind::multi;
    } else if (pattern && l == "%c") {
      level.what = acl_level::kind::client_id;
      r.uses_client_id = true;
    } else if (pattern && l == "%u") {
      level.what = acl_level::kind::user_name;
      r.uses_user_name = true;
    } else {
      level.text = std::string(l);
    }
    r.levels.push_back(std::move(level));
  }
  return r;
}

}  // namespace

struct acl_parser {
  static acl_file_result parse(std::string_view text, const std::string& file_name) {
    acl_file_result result;
    auto table = std::make_shared<acl_table>();
    acl_section* current = &table->anonymous_;
    int number = 0;
    const auto fail = [&](std::string message) {
      result.error = file_error{file_name, number, std::move(message)};
      return result;
    };
    while (!text.empty()) {
      const auto eol = text.find('\n');
      const auto line = trim(text.substr(0, eol));
      text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
      ++number;
      if (line.empty() || line.starts_with('#')) continue;
      std::string_view rest;
      const auto keyword = first_word(line, rest);
      if (keyword == "user") {
        if (rest.empty()) return fail("user line without a user name");
        current = &table->users_[std::string(rest)];
        continue;
      }
      if (keyword != "topic" && keyword != "pattern") {
        return fail("unknown keyword \"" + std::string(keyword) +
                    "\" (expected topic, pattern or user)");
      }
      if (rest.empty()) return fail(std::string(keyword) + " line without a topic");
      std::string_view filter;
      const auto word = first_word(rest, filter);
      std::uint8_t access = acl_access::readwrite;
      if (filter.empty()) {
        // "topic foo": read and write. "topic read" alone is a mistake, not a topic named "read".
        if (access_of(word)) {
          return fail(std::string(keyword) + " line with an access (" + std::string(word) +
                      ") but no topic");
        }
        filter = word;
      } else {
        const auto parsed = access_of(word);
        if (!parsed) {
          return fail("unknown access \"" + std::string(word) +
                      "\" (expected read, write, readwrite or deny)");
        }
        access = *parsed;
      }
      if (auto why = invalid_filter(filter); !why.empty()) {
        return fail("invalid topic \"" + std::string(filter) + "\": " + why);
      }
      const bool pattern = keyword == "pattern";
      auto& section = pattern ? table->patterns_ : *current;
      auto rule = make_rule(filter, access, pattern, number);
      (access == acl_access::deny ? section.denials : section.grants).push_back(std::move(rule));
      ++table->rules_;
    }
    result.table = std::move(table);
    return result;
  }
};

const acl_section* acl_table::section_of(const core::client_identity& who) const {
  if (!who.username) return &anonymous_;
  const auto it = users_.find(*who.username);
  return it == users_.end() ? nullptr : &it->second;
}

bool acl_table::topic_allowed(const core::client_identity& who, std::string_view topic,
                              std::uint8_t need) const {
  const subject s(who);
  const auto* own = section_of(who);
  if (own) {
    for (const auto& r : own->denials) {
      if (matches_topic(r, topic, s, true)) return false;
    }
  }
  for (const auto& r : patterns_.denials) {
    if (denial_applies(r, s) && matches_topic(r, topic, s, true)) return false;
  }
  if (own) {
    for (const auto& r : own->grants) {
      if ((r.access & need) && matches_topic(r, topic, s, false)) return true;
    }
  }
  for (const auto& r : patterns_.grants) {
    if ((r.access & need) && grant_usable(r, s) && matches_topic(r, topic, s, false)) return true;
  }
  return false;
}

bool acl_table::subscription_allowed(const core::client_identity& who,
                                     std::string_view filter) const {
  const auto parts = codec::parse_topic_filter(filter);
  if (!parts) return false;
  const auto wanted = split(parts->filter);
  const subject s(who);
  const auto* own = section_of(who);

  std::vector<levels_view> denials;
  if (own) {
    for (const auto& r : own->denials) {
      if (auto f = concrete(r, s, true)) denials.push_back(std::move(*f));
    }
  }
  for (const auto& r : patterns_.denials) {
    if (!denial_applies(r, s)) continue;
    if (auto f = concrete(r, s, true)) denials.push_back(std::move(*f));
  }
  const auto denied = [&](const levels_view& f) {
    for (const auto& d : denials) {
      if (covers(d, f)) return true;
    }
    return false;
  };
  if (denied(wanted)) return false;

  // Some topic of the filter must be readable: a read line overlaps it, and
  // the overlap is not wholly denied.
  const auto readable = [&](const acl_rule& r) {
    if (!(r.access & acl_access::read)) return false;
    const auto grant = concrete(r, s, false);
    if (!grant) return false;
    const auto both = meet(*grant, wanted);
    return both && !denied(*both);
  };
  if (own) {
    for (const auto& r : own->grants) {
      if (readable(r)) return true;
    }
  }
  for (const auto& r : patterns_.grants) {
    if (grant_usable(r, s) && readable(r)) return true;
  }
  return false;
}

bool acl_table::allowed(const core::client_identity& who, std::string_view topic,
                        core::access what) const {
  switch (what) {
    case core::access::publish:
      // $SYS belongs to the broker (mosquitto refuses these publishes whatever its ACL says).
      if (is_sys(topic)) return false;
      return topic_allowed(who, topic, acl_access::write);
    case core::access::receive:
      return topic_allowed(who, topic, acl_access::read);
    case core::access::subscribe:
      return subscription_allowed(who, topic);
  }
  return false;
}

acl_file_result parse_acl_file(std::string_view text, const std::string& file_name) {
  return acl_parser::parse(text, file_name);
}

acl_file_result load_acl_file(const std::string& path) {
  file_error error;
  const auto text = read_text_file(path, error);
  if (!text) return {nullptr, error};
  return parse_acl_file(*text, path);
}

}  // namespace ringmq::auth
