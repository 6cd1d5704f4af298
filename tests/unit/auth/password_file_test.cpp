// Password files: mosquitto's format with comments, blanks and both hash types,
// files written at run time by Debian's mosquitto_passwd, and errors with lines.

#include "broker/auth/password_file.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include "tests/unit/auth/temp_dir.hpp"

namespace ringmq::auth {
namespace {

using testing::run_program;
using testing::temp_dir;

constexpr const char* mosquitto_passwd = "/usr/bin/mosquitto_passwd";

bool verifies(const password_table& t, std::string_view user, std::string_view password) {
  const auto* h = t.find(user);
  return h && verify_password(*h, password);
}

TEST(PasswordFile, ReadsFilesWrittenByMosquittoPasswd) {
  ASSERT_EQ(::access(mosquitto_passwd, X_OK), 0)
      << mosquitto_passwd << " is missing: install the Debian package mosquitto";
  temp_dir dir;
  const auto file = dir.file("passwords");
  std::string out;
  // The default ($7$, 101 iterations), an explicit iteration count, and the old $6$.
  ASSERT_EQ(run_program({mosquitto_passwd, "-c", "-b", file, "alice", "alice-pw"}, out), 0) << out;
  ASSERT_EQ(run_program({mosquitto_passwd, "-b", file, "bob", "b:o$b pw"}, out), 0) << out;
  ASSERT_EQ(run_program({mosquitto_passwd, "-I", "2000", "-b", file, "carol", "carol"}, out), 0)
      << out;
  ASSERT_EQ(run_program({mosquitto_passwd, "-H", "sha512", "-b", file, "dave", "dave-pw"}, out), 0)
      << out;
  const auto text = testing::read_file(file);
  ASSERT_NE(text.find("carol:$7$2000$"), std::string::npos) << text;
  ASSERT_NE(text.find("dave:$6$"), std::string::npos) << text;

  const auto loaded = load_password_file(file);
  ASSERT_FALSE(loaded.error) << loaded.error->to_string();
  ASSERT_EQ(loaded.table->size(), 4u);
  EXPECT_TRUE(verifies(*loaded.table, "alice", "alice-pw"));
  EXPECT_TRUE(verifies(*loaded.table, "bob", "b:o$b pw"));
  EXPECT_TRUE(verifies(*loaded.table, "carol", "carol"));
  EXPECT_TRUE(verifies(*loaded.table, "dave", "dave-pw"));
  EXPECT_FALSE(verifies(*loaded.table, "alice", "bob"));
  EXPECT_FALSE(verifies(*loaded.table, "dave", "Dave-pw"));
  EXPECT_EQ(loaded.table->find("eve"), nullptr);
  EXPECT_EQ(loaded.table->find("Alice"), nullptr);  // user names are case sensitive
}

TEST(PasswordFile, SkipsCommentsAndBlankLinesAndToleratesBlanksAndCrlf) {
  const auto hash = format_password_hash(*make_password_hash("pw"));
  const auto text = "# users of the plant\n"
                    "\n"
                    "   \t\n"
                    "  # an indented comment\n"
                    "alice:" + hash + "\r\n"
                    "  bob :  " + hash + "  \n"
                    "user with spaces:" + hash;  // no newline at the end
  const auto parsed = parse_password_file(text, "pw");
  ASSERT_FALSE(parsed.error) << parsed.error->to_string();
  EXPECT_EQ(parsed.table->size(), 3u);
  EXPECT_TRUE(verifies(*parsed.table, "alice", "pw"));
  EXPECT_TRUE(verifies(*parsed.table, "bob", "pw"));
  EXPECT_TRUE(verifies(*parsed.table, "user with spaces", "pw"));
}

TEST(PasswordFile, AnEmptyFileHasNoUsers) {
  const auto parsed = parse_password_file("", "pw");
  ASSERT_FALSE(parsed.error);
  EXPECT_EQ(parsed.table->size(), 0u);
}

TEST(PasswordFile, ErrorsNameTheFileAndTheLine) {
  const auto hash = format_password_hash(*make_password_hash("pw"));
  struct bad {
    std::string text;
    int line;
    std::string_view says;
  };
  for (const auto& b : std::vector<bad>{
           {"# fine\nalice:" + hash + "\nbob\n", 3, "expected user:hash"},
           {"alice:" + hash + "\n\nalice:" + hash + "\n", 3, "listed twice"},
           {"alice:secret\n", 1, "plain-text password"},
           {"\n\n:" + hash + "\n", 3, "empty user name"},
           {"alice:$7$101$c2FsdA==$c2hvcnQ=\n", 1, "64 bytes"},
       }) {
    const auto parsed = parse_password_file(b.text, "/etc/ringmq/passwords");
    ASSERT_TRUE(parsed.error) << b.text;
    EXPECT_FALSE(parsed.table);
    EXPECT_EQ(parsed.error->line, b.line) << b.text;
    const auto message = parsed.error->to_string();
    EXPECT_TRUE(message.starts_with("/etc/ringmq/passwords:" + std::to_string(b.line) + ": "))
        << message;
    EXPECT_NE(message.find(b.says), std::string::npos) << message;
  }
}

TEST(PasswordFile, AnUnreadableFileIsAnErrorWithoutALine) {
  temp_dir dir;
  const auto loaded = load_password_file(dir.file("missing"));
  ASSERT_TRUE(loaded.error);
  EXPECT_EQ(loaded.error->line, 0);
  EXPECT_NE(loaded.error->to_string().find("No such file"), std::string::npos)
      << loaded.error->to_string();
}

TEST(PasswordFile, UserNamesThatCannotBeStoredAreNamed) {
  EXPECT_EQ(invalid_user_name("alice"), "");
  EXPECT_EQ(invalid_user_name("user with spaces"), "");
  EXPECT_NE(invalid_user_name(""), "");
  EXPECT_NE(invalid_user_name("a:b"), "");
  EXPECT_NE(invalid_user_name("#admin"), "");
  EXPECT_NE(invalid_user_name(" padded"), "");
  EXPECT_NE(invalid_user_name("line\nbreak"), "");
}

}  // namespace
}  // namespace ringmq::auth
