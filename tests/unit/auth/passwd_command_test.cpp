// `ringmq passwd`: creating, updating and deleting entries, keeping the other
// lines, mode 0600, passwords from standard input, and the errors.

#include "broker/auth/passwd_command.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <sstream>

#include "broker/auth/password_file.hpp"
#include "tests/unit/auth/temp_dir.hpp"

namespace ringmq::auth {
namespace {

using testing::read_file;
using testing::temp_dir;
using testing::write_file;

struct outcome {
  int code;
  std::string errors;
};

outcome passwd(std::vector<std::string> args, const std::string& input = "") {
  args.insert(args.begin(), "passwd");
  std::istringstream in(input);
  std::ostringstream err;
  const int code = run_passwd(args, in, false, err);
  return {code, err.str()};
}

bool verifies(const std::string& file, std::string_view user, std::string_view password) {
  const auto loaded = load_password_file(file);
  if (loaded.error) return false;
  const auto* h = loaded.table->find(user);
  return h && verify_password(*h, password);
}

std::size_t users_in(const std::string& file) {
  const auto loaded = load_password_file(file);
  return loaded.error ? 0 : loaded.table->size();
}

TEST(Passwd, CreatesAFileReadableByItsOwnerOnly) {
  temp_dir dir;
  const auto file = dir.file("pw");
  const auto r = passwd({"-c", "-b", file, "alice", "secret"});
  ASSERT_EQ(r.code, 0) << r.errors;
  EXPECT_TRUE(verifies(file, "alice", "secret"));
  EXPECT_TRUE(read_file(file).starts_with("alice:$7$101$")) << read_file(file);
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(Passwd, AddsUpdatesAndDeletesKeepingEveryOtherLine) {
  temp_dir dir;
  const auto file = dir.file("pw");
  ASSERT_EQ(passwd({"-c", "-b", file, "alice", "one"}).code, 0);
  // An operator's comments and blank lines survive edits.
  write_file(file, "# plant users\n\n" + read_file(file) + "# end\n");
  ASSERT_EQ(passwd({"-b", file, "bob", "two"}).code, 0);
  ASSERT_EQ(passwd({"-b", file, "alice", "three"}).code, 0);
  EXPECT_EQ(users_in(file), 2u);
  EXPECT_TRUE(verifies(file, "alice", "three"));
  EXPECT_FALSE(verifies(file, "alice", "one"));
  EXPECT_TRUE(verifies(file, "bob", "two"));
  auto text = read_file(file);
  EXPECT_TRUE(text.starts_with("# plant users\n\nalice:$7$")) << text;  // updated in place
  EXPECT_NE(text.find("# end\nbob:$7$"), std::string::npos) << text;     // added at the end

  ASSERT_EQ(passwd({"-D", file, "alice"}).code, 0);
  EXPECT_EQ(users_in(file), 1u);
  text = read_file(file);
  EXPECT_TRUE(text.starts_with("# plant users\n\n# end\nbob:$7$")) << text;
}

TEST(Passwd, CreateOverwritesAnExistingFile) {
  temp_dir dir;
  const auto file = dir.file("pw");
  ASSERT_EQ(passwd({"-c", "-b", file, "alice", "one"}).code, 0);
  ASSERT_EQ(passwd({"-c", "-b", file, "bob", "two"}).code, 0);
  EXPECT_EQ(users_in(file), 1u);
  EXPECT_TRUE(verifies(file, "bob", "two"));
}

TEST(Passwd, KeepsEntriesWrittenByMosquittoPasswd) {
  temp_dir dir;
  const auto file = dir.file("pw");
  std::string out;
  ASSERT_EQ(testing::run_program(
                {"/usr/bin/mosquitto_passwd", "-H", "sha512", "-c", "-b", file, "old", "pw6"}, out),
            0)
      << out;
  const auto before = read_file(file);
  ASSERT_EQ(passwd({"-b", file, "new", "pw7"}).code, 0);
  EXPECT_TRUE(read_file(file).starts_with(before)) << read_file(file);
  EXPECT_TRUE(verifies(file, "old", "pw6"));
  EXPECT_TRUE(verifies(file, "new", "pw7"));
}

TEST(Passwd, ReadsOneLineFromStandardInputWithoutB) {
  temp_dir dir;
  const auto file = dir.file("pw");
  ASSERT_EQ(passwd({"-c", file, "alice"}, "from stdin\r\nignored\n").code, 0);
  EXPECT_TRUE(verifies(file, "alice", "from stdin"));
  const auto r = passwd({file, "bob"}, "");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.errors.find("no password"), std::string::npos) << r.errors;
}

TEST(Passwd, DropsDuplicateLinesOfTheUserItUpdates) {
  temp_dir dir;
  const auto file = dir.file("pw");
  const auto hash = format_password_hash(*make_password_hash("x"));
  write_file(file, "alice:" + hash + "\nbob:" + hash + "\nalice:" + hash + "\n");
  ASSERT_EQ(passwd({"-b", file, "alice", "fixed"}).code, 0);
  EXPECT_EQ(users_in(file), 2u);  // the file is valid again
  EXPECT_TRUE(verifies(file, "alice", "fixed"));
}

TEST(Passwd, ExplainsWhatIsWrong) {
  temp_dir dir;
  const auto file = dir.file("pw");
  struct bad {
    std::vector<std::string> args;
    std::string_view says;
  };
  for (const auto& b : std::vector<bad>{
           {{"-b", file, "alice", "pw"}, "does not exist (-c creates it)"},
           {{"-c", "-D", file, "alice"}, "cannot be used together"},
           {{"-c", file, "alice", "pw"}, "needs -b"},
           {{"-b", file, "alice"}, "usage"},
           {{"-c", "-b", file, "a:b", "pw"}, "contains ':'"},
           {{"-c", "-b", file, "#a", "pw"}, "starts with '#'"},
           {{"-c", "-b", file, "alice", ""}, "empty"},
           {{"-x", file, "alice"}, "unknown option -x"},
           {{"-c", "-b", dir.file("no/such/dir/pw"), "alice", "pw"}, "temporary file"},
       }) {
    const auto r = passwd(b.args);
    EXPECT_EQ(r.code, 1) << b.args[0];
    EXPECT_NE(r.errors.find(b.says), std::string::npos) << r.errors;
  }
  ASSERT_EQ(passwd({"-c", "-b", file, "alice", "pw"}).code, 0);
  const auto r = passwd({"-D", file, "bob"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.errors.find("\"bob\" is not in"), std::string::npos) << r.errors;
}

TEST(Passwd, EditsTheTargetOfASymlinkAndKeepsTheLink) {
  temp_dir dir;
  const auto real = dir.file("real");
  const auto link = dir.file("link");
  ASSERT_EQ(passwd({"-c", "-b", real, "alice", "pw"}).code, 0);
  std::filesystem::create_symlink(real, link);
  ASSERT_EQ(passwd({"-b", link, "bob", "pw"}).code, 0);
  EXPECT_TRUE(std::filesystem::is_symlink(link));
  EXPECT_EQ(users_in(real), 2u);
}

}  // namespace
}  // namespace ringmq::auth
