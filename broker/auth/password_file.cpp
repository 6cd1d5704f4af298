#include "broker/auth/password_file.hpp"

namespace ringmq::auth {

namespace {

bool is_blank(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

struct password_file_parser {
  static password_file_result parse(std::string_view text, const std::string& file_name) {
    password_file_result r;
    auto table = std::make_shared<password_table>();
    int number = 0;
    while (!text.empty()) {
      const auto eol = text.find('\n');
      const auto line = text.substr(0, eol);
      text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
      ++number;
      const auto parts = split_password_line(line);
      if (parts.user.empty() && !parts.has_separator) {
        if (!trim(line).empty() && !trim(line).starts_with('#')) {
          r.error = file_error{file_name, number, "expected user:hash"};
          return r;
        }
        continue;
      }
      if (parts.user.empty()) {
        r.error = file_error{file_name, number, "empty user name"};
        return r;
      }
      auto parsed = parse_password_hash(parts.hash);
      if (!parsed.value) {
        r.error = file_error{file_name, number,
                             "user \"" + std::string(parts.user) + "\": " + parsed.error};
        return r;
      }
      const auto [it, added] =
          table->users_.emplace(std::string(parts.user), std::move(*parsed.value));
      if (!added) {
        r.error = file_error{file_name, number,
                             "user \"" + std::string(parts.user) + "\" is listed twice"};
        return r;
      }
    }
    r.table = std::move(table);
    return r;
  }
};

const password_hash* password_table::find(std::string_view user) const {
  const auto it = users_.find(user);
  return it == users_.end() ? nullptr : &it->second;
}

password_line split_password_line(std::string_view line) {
  password_line out;
  const auto content = trim(line);
  if (content.empty() || content.starts_with('#')) return out;
  const auto colon = content.find(':');
  if (colon == std::string_view::npos) return out;
  out.has_separator = true;
  out.user = trim(content.substr(0, colon));
  out.hash = trim(content.substr(colon + 1));
  return out;
}

password_file_result parse_password_file(std::string_view text, const std::string& file_name) {
  return password_file_parser::parse(text, file_name);
}

password_file_result load_password_file(const std::string& path) {
  file_error error;
  const auto text = read_text_file(path, error);
  if (!text) return {nullptr, error};
  return parse_password_file(*text, path);
}

std::string invalid_user_name(std::string_view user) {
  if (user.empty()) return "the user name is empty";
  if (user.find(':') != std::string_view::npos) return "the user name contains ':'";
  for (const char c : user) {
    if (c == '\n' || c == '\r' || c == '\0') return "the user name contains a line break or NUL";
  }
  if (trim(user) != user) return "the user name starts or ends with a blank";
  if (user.starts_with('#')) return "the user name starts with '#' (the line would be a comment)";
  if (user.size() > 65535) return "the user name is longer than 65535 bytes";
  return {};
}

}  // namespace ringmq::auth
