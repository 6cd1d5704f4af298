#pragma once
// `ringmq passwd [-c] [-b] [-D] FILE USER [PASSWORD]`: creates, updates and
// deletes entries of a password file, like mosquitto_passwd, writing $7$
// (PBKDF2-SHA512, 101 iterations, 12-byte salt) hashes that mosquitto reads too.
//   -c  create the file (overwriting one that exists)
//   -b  the password is the last argument (else: asked twice on a terminal,
//       or one line read from standard input when it is not a terminal)
//   -D  delete USER
// Other lines (users, comments) are kept as they are. The file is replaced
// atomically (temporary file, fsync, rename) with mode 0600.

#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ringmq::auth {

// argv as main() gets it, argv[0] being "passwd". Returns the exit code (0 or 1).
int passwd_main(int argc, char** argv);

// The same with the streams given: `input_is_terminal` asks twice without echo.
int run_passwd(const std::vector<std::string>& args, std::istream& input, bool input_is_terminal,
               std::ostream& errors);

// Sets (password given) or deletes (nullopt) `user` in the password file at
// `path`, creating it when `create`. Returns an error message, empty on success.
std::string update_password_file(const std::string& path, bool create, std::string_view user,
                                 const std::optional<std::string>& password);

}  // namespace ringmq::auth
