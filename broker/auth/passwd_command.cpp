#include "broker/auth/passwd_command.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "broker/auth/file_error.hpp"
#include "broker/auth/password_file.hpp"
#include "broker/auth/password_hash.hpp"

namespace ringmq::auth {

namespace {

constexpr const char* usage =
    "usage: ringmq passwd [-c] [-b] FILE USER [PASSWORD]\n"
    "       ringmq passwd -D FILE USER\n"
    "  -c  create FILE (an existing FILE is overwritten)\n"
    "  -b  take PASSWORD from the command line (else it is asked for on the terminal,\n"
    "      or read as one line from standard input when that is not a terminal)\n"
    "  -D  delete USER from FILE\n";

std::string errno_text() { return std::strerror(errno); }

// Writes `content` to `path` through a temporary file in the same directory,
// so that a reader (the broker on SIGHUP) sees the old file or the new one.
std::string replace_file(const std::string& path, const std::string& content) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path target = path;
  if (fs::is_symlink(target, ec)) {
    // Edit the file the link points to, and keep the link.
    const auto resolved = fs::canonical(target, ec);
    if (!ec) target = resolved;
  }
  struct stat old {};
  const bool existed = ::stat(target.c_str(), &old) == 0;
  auto directory = target.parent_path();
  if (directory.empty()) directory = ".";
  std::string temp = (directory / ("." + target.filename().string() + ".XXXXXX")).string();
  const int fd = ::mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) {
    return "cannot create a temporary file in " + directory.string() + ": " + errno_text();
  }
  const auto fail = [&](std::string message) {
    ::close(fd);
    ::unlink(temp.c_str());
    return message;
  };
  if (::fchmod(fd, S_IRUSR | S_IWUSR) != 0) return fail("cannot set mode 0600: " + errno_text());
  if (existed) {
    // The broker may run as the file's owner: keep it (only root can give it away).
    if (::fchown(fd, old.st_uid, old.st_gid) != 0 && errno != EPERM) {
      return fail("cannot keep the owner of " + path + ": " + errno_text());
    }
  }
  std::size_t written = 0;
  while (written < content.size()) {
    const auto n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("cannot write " + temp + ": " + errno_text());
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("cannot write " + temp + ": " + errno_text());
  if (::close(fd) != 0) {
    ::unlink(temp.c_str());
    return "cannot write " + temp + ": " + errno_text();
  }
  if (::rename(temp.c_str(), target.c_str()) != 0) {
    const auto why = errno_text();
    ::unlink(temp.c_str());
    return "cannot replace " + target.string() + ": " + why;
  }
  const int dir = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return {};
}

// The terminal settings to put back if Ctrl-C interrupts a password prompt:
// otherwise the shell is left without echo.
termios saved_terminal{};

void restore_terminal_and_exit(int signal) {
  ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_terminal);
  ::signal(signal, SIG_DFL);
  ::raise(signal);
}

// Reads a line without echo when standard input is a terminal.
std::optional<std::string> read_hidden(const char* prompt, std::istream& input,
                                       std::ostream& errors) {
  errors << prompt << std::flush;
  const bool terminal = ::tcgetattr(STDIN_FILENO, &saved_terminal) == 0;
  using handler = void (*)(int);
  handler old_int = SIG_DFL;
  handler old_term = SIG_DFL;
  if (terminal) {
    old_int = ::signal(SIGINT, restore_terminal_and_exit);
    old_term = ::signal(SIGTERM, restore_terminal_and_exit);
    termios quiet = saved_terminal;
    quiet.c_lflag &= static_cast<tcflag_t>(~ECHO);
    quiet.c_lflag |= ECHONL;
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  std::string line;
  const bool got = static_cast<bool>(std::getline(input, line));
  if (terminal) {
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_terminal);
    ::signal(SIGINT, old_int);
    ::signal(SIGTERM, old_term);
  }
  if (!got) return std::nullopt;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

std::optional<std::string> read_password(std::istream& input, bool terminal,
                                         std::ostream& errors) {
  if (!terminal) {
    std::string line;
    if (!std::getline(input, line)) {
      errors << "ringmq passwd: no password on standard input\n";
      return std::nullopt;
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
  }
  auto first = read_hidden("Password: ", input, errors);
  if (!first) {
    errors << "ringmq passwd: no password entered\n";
    return std::nullopt;
  }
  auto second = read_hidden("Reenter password: ", input, errors);
  if (!second || *first != *second) {
    errors << "ringmq passwd: the passwords do not match\n";
    return std::nullopt;
  }
  return first;
}

}  // namespace

std::string update_password_file(const std::string& path, bool create, std::string_view user,
                                 const std::optional<std::string>& password) {
  std::string old;
  if (!create) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec) && !ec) return path + " does not exist (-c creates it)";
    file_error error;
    auto text = read_text_file(path, error);
    if (!text) return error.to_string();
    old = std::move(*text);
  }
  std::string entry;
  if (password) {
    const auto hash = make_password_hash(*password);
    if (!hash) return "cannot hash the password: no random salt from the system";
    entry = std::string(user) + ":" + format_password_hash(*hash);
  }

  // Every other line stays as it was; the user's first line is replaced in
  // place, any later line of the same user (a file ringmq refuses) dropped.
  std::string out;
  bool found = false;
  std::string_view rest = old;
  while (!rest.empty()) {
    const auto eol = rest.find('\n');
    const auto line = rest.substr(0, eol);
    rest.remove_prefix(eol == std::string_view::npos ? rest.size() : eol + 1);
    if (split_password_line(line).user == user) {
      if (!found && password) {
        out += entry;
        out += '\n';
      }
      found = true;
      continue;
    }
    out += line;
    out += '\n';
  }
  if (!password && !found) return "user \"" + std::string(user) + "\" is not in " + path;
  if (password && !found) {
    out += entry;
    out += '\n';
  }
  return replace_file(path, out);
}

int run_passwd(const std::vector<std::string>& args, std::istream& input, bool input_is_terminal,
               std::ostream& errors) {
  bool create = false;
  bool batch = false;
  bool remove = false;
  std::vector<std::string> positional;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const auto& a = args[i];
    if (positional.empty() && a.size() > 1 && a[0] == '-') {
      if (a == "-h" || a == "--help") {
        std::cout << usage;
        return 0;
      }
      // Single letters, together or apart ("-cb" or "-c -b").
      for (std::size_t k = 1; k < a.size(); ++k) {
        switch (a[k]) {
          case 'c': create = true; break;
          case 'b': batch = true; break;
          case 'D': remove = true; break;
          default:
            errors << "ringmq passwd: unknown option -" << a[k] << "\n" << usage;
            return 1;
        }
      }
      continue;
    }
    positional.push_back(a);
  }
  if (create && remove) {
    errors << "ringmq passwd: -c and -D cannot be used together\n" << usage;
    return 1;
  }
  const std::size_t wanted = batch ? 3 : 2;
  if (positional.size() != wanted || (batch && remove)) {
    if (!batch && positional.size() == 3) {
      errors << "ringmq passwd: a password on the command line needs -b\n";
    }
    errors << usage;
    return 1;
  }
  const auto& file = positional[0];
  const auto& user = positional[1];
  if (const auto why = invalid_user_name(user); !why.empty()) {
    errors << "ringmq passwd: " << why << "\n";
    return 1;
  }

  std::optional<std::string> password;
  if (!remove) {
    password = batch ? std::optional<std::string>(positional[2])
                     : read_password(input, input_is_terminal, errors);
    if (!password) return 1;
    if (password->empty()) {
      errors << "ringmq passwd: the password is empty\n";
      return 1;
    }
    if (password->find_first_of("\r\n") != std::string::npos) {
      errors << "ringmq passwd: the password contains a line break\n";
      return 1;
    }
  }
  const auto error = update_password_file(file, create, user, password);
  if (!error.empty()) {
    errors << "ringmq passwd: " << error << "\n";
    return 1;
  }
  return 0;
}

int passwd_main(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  return run_passwd(args, std::cin, ::isatty(STDIN_FILENO) == 1, std::cerr);
}

}  // namespace ringmq::auth
