#pragma once
// mosquitto's password file: one `user:hash` per line, the hash $6$ or $7$
// (see password_hash.hpp); lines starting with '#' and blank lines ignored;
// blanks around the user name and the hash ignored. A user listed twice, a
// line without ':' or a hash that cannot be read is an error with its line
// number (mosquitto drops such entries with a log line; refusing the file
// makes the mistake visible before it locks someone out or in).

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "broker/auth/file_error.hpp"
#include "broker/auth/password_hash.hpp"

namespace ringmq::auth {

// Lets unordered_map<std::string, ...> be searched with a string_view.
struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

class password_table {
 public:
  const password_hash* find(std::string_view user) const;
  std::size_t size() const noexcept { return users_.size(); }

 private:
  friend struct password_file_parser;
  std::unordered_map<std::string, password_hash, string_hash, std::equal_to<>> users_;
};

struct password_file_result {
  std::shared_ptr<const password_table> table;  // null on error
  std::optional<file_error> error;
};

// `file_name` is only used in error messages.
password_file_result parse_password_file(std::string_view text, const std::string& file_name);
password_file_result load_password_file(const std::string& path);

// A line of a password file taken apart: `user` is empty for comments and blank lines.
struct password_line {
  std::string_view user;
  std::string_view hash;
  bool has_separator = false;  // a ':' was found
};
password_line split_password_line(std::string_view line);

// Why `user` cannot be stored in a password file (empty when it can).
std::string invalid_user_name(std::string_view user);

}  // namespace ringmq::auth
