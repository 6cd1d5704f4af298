#pragma once
// A problem in a password or ACL file, reported with the file and the line, so
// that an operator can fix it without guessing.

#include <optional>
#include <string>

namespace ringmq::auth {

struct file_error {
  std::string file;
  int line = 0;  // 1-based; 0 when the file as a whole is the problem (cannot be read)
  std::string message;

  // "/etc/ringmq/acl:7: unknown access \"reed\" ..." or "/etc/ringmq/acl: No such file ..."
  std::string to_string() const;
};

// The whole content of `path`, or nullopt with the reason in `error`.
std::optional<std::string> read_text_file(const std::string& path, file_error& error);

}  // namespace ringmq::auth
