// Password hashes in mosquitto's format: base64, $6$ and $7$ parsing, verification
// against hashes Debian's mosquitto_passwd 2.0.11 wrote, and the hashes ringmq writes.

#include "broker/auth/password_hash.hpp"

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace ringmq::auth {
namespace {

// Written by `mosquitto_passwd -H sha512 -b FILE carol pw` and
// `mosquitto_passwd -I 1000 -b FILE dave pw` (Debian 12, mosquitto 2.0.11).
constexpr std::string_view carol_sha512 =
    "$6$swFEOATagZxa8qSb$"
    "Y4jKrkwxjVs0A3hWGIPIP/8EiO999u1c7oW3+5gPW72BqxRgjpe3jFt3WCapRK03Xu3Vr7M0KuxWdeP9n+ZBeQ==";
constexpr std::string_view dave_pbkdf2 =
    "$7$1000$wimp5TFB9Ijzi+UL$"
    "BwqxrdgUiFnlZmrngVnEZ0Tpw/8dE1rFUdb5Qu41wx/w2MfAN2wLknFbqVrt5fWHjmznVvDfKRkZhSaSlcy98Q==";
// `mosquitto_passwd -c -b FILE alice secret`: the default, 101 iterations.
constexpr std::string_view alice_pbkdf2 =
    "$7$101$RS9LinzJGmEvAZwb$"
    "zVUE73hR6nxfftCCKjK18YsWt2bGgxh3IuDH79EAedrCiO149d8qPZwbbcZ8nwYSdam51mbBqlFpUDsWjhbwFw==";

TEST(Base64, EncodesTheRfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
}

TEST(Base64, DecodesWhatItEncodesWithOrWithoutPadding) {
  std::string bytes;
  for (int n = 0; n < 70; ++n) {
    const auto text = base64_encode(bytes);
    ASSERT_EQ(base64_decode(text), bytes) << text;
    auto unpadded = text;
    while (!unpadded.empty() && unpadded.back() == '=') unpadded.pop_back();
    ASSERT_EQ(base64_decode(unpadded), bytes) << unpadded;
    bytes += static_cast<char>(n * 37 + 250);
  }
}

TEST(Base64, RefusesWhatIsNotBase64) {
  EXPECT_FALSE(base64_decode("Zm9v!"));
  EXPECT_FALSE(base64_decode("Z"));
  EXPECT_FALSE(base64_decode("Zm9vY"));
  EXPECT_FALSE(base64_decode("Zg="));  // padding that does not complete a quantum
  EXPECT_FALSE(base64_decode("Z=g="));
  EXPECT_FALSE(base64_decode("Zm 9v"));
}

TEST(PasswordHash, VerifiesSha512HashesMosquittoWrote) {
  const auto parsed = parse_password_hash(carol_sha512);
  ASSERT_TRUE(parsed.value) << parsed.error;
  EXPECT_EQ(parsed.value->kind, hash_kind::sha512);
  EXPECT_EQ(parsed.value->salt.size(), salt_bytes);
  EXPECT_EQ(parsed.value->digest.size(), digest_bytes);
  EXPECT_TRUE(verify_password(*parsed.value, "pw"));
  EXPECT_FALSE(verify_password(*parsed.value, "pW"));
  EXPECT_FALSE(verify_password(*parsed.value, ""));
  EXPECT_FALSE(verify_password(*parsed.value, "pw "));
}

TEST(PasswordHash, VerifiesPbkdf2HashesMosquittoWrote) {
  for (const auto& [text, password, iterations] :
       {std::tuple{dave_pbkdf2, "pw", 1000u}, std::tuple{alice_pbkdf2, "secret", 101u}}) {
    const auto parsed = parse_password_hash(text);
    ASSERT_TRUE(parsed.value) << parsed.error;
    EXPECT_EQ(parsed.value->kind, hash_kind::pbkdf2_sha512);
    EXPECT_EQ(parsed.value->iterations, iterations);
    EXPECT_TRUE(verify_password(*parsed.value, password));
    EXPECT_FALSE(verify_password(*parsed.value, "wrong"));
  }
}

TEST(PasswordHash, FormatsBackToTheSameText) {
  for (const auto text : {carol_sha512, dave_pbkdf2, alice_pbkdf2}) {
    const auto parsed = parse_password_hash(text);
    ASSERT_TRUE(parsed.value) << parsed.error;
    EXPECT_EQ(format_password_hash(*parsed.value), text);
  }
}

TEST(PasswordHash, WritesPbkdf2With101IterationsAndATwelveByteSaltLikeMosquitto) {
  const auto h = make_password_hash("correct horse");
  ASSERT_TRUE(h);
  const auto text = format_password_hash(*h);
  EXPECT_TRUE(text.starts_with("$7$101$")) << text;
  // "$7$101$" + 16 characters of salt + "$" + 88 characters of digest.
  EXPECT_EQ(text.size(), 7u + 16 + 1 + 88) << text;
  const auto reparsed = parse_password_hash(text);
  ASSERT_TRUE(reparsed.value) << reparsed.error;
  EXPECT_TRUE(verify_password(*reparsed.value, "correct horse"));
  EXPECT_FALSE(verify_password(*reparsed.value, "correct horse "));
}

TEST(PasswordHash, EverySaltIsFresh) {
  std::set<std::string> salts;
  for (int i = 0; i < 20; ++i) salts.insert(make_password_hash("same")->salt);
  EXPECT_EQ(salts.size(), 20u);
}

TEST(PasswordHash, KeepsPasswordsWithAnyBytes) {
  const std::string password = std::string("p\xC3\xA4ss:$w\0rd", 11);
  const auto h = make_password_hash(password);
  ASSERT_TRUE(h);
  EXPECT_TRUE(verify_password(*h, password));
  EXPECT_FALSE(verify_password(*h, password.substr(0, 7)));
}

TEST(PasswordHash, RefusesWhatIsNotAHash) {
  const std::string digest(carol_sha512.substr(carol_sha512.rfind('$') + 1));
  for (const auto& text : std::vector<std::string>{
           "secret",                                 // plain text
           "$5$abc$def",                             // SHA-256 crypt: not mosquitto's
           "$6$onlysalt",                            // missing field
           "$7$101$salt",                            // missing field
           "$7$0$c2FsdA==$aGFzaA==",                 // zero iterations
           "$7$-5$c2FsdA==$aGFzaA==",                // negative iterations
           "$7$ten$c2FsdA==$aGFzaA==",               // not a number
           "$7$99999999999$c2FsdA==$aGFzaA==",       // more than fits an int
           "$6$c2FsdA==$aGFzaA==",                   // digest too short
           "$6$$" + digest,                          // empty salt
           "$6$!!!$" + digest,                       // salt not base64
           "$6$swFEOATagZxa8qSb$Y4jK$x",             // extra field
       }) {
    const auto parsed = parse_password_hash(text);
    EXPECT_FALSE(parsed.value) << text;
    EXPECT_FALSE(parsed.error.empty()) << text;
  }
}

}  // namespace
}  // namespace ringmq::auth
