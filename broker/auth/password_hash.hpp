#pragma once
// Password hashes in mosquitto's password file format, as Debian's
// mosquitto_passwd (2.0) writes them:
//   $6$<base64 salt>$<base64 SHA-512(password || salt)>
//   $7$<iterations>$<base64 salt>$<base64 PBKDF2-HMAC-SHA512(password, salt, iterations)>
// Salts are raw bytes (mosquitto uses 12), digests 64 bytes, base64 with padding.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ringmq::auth {

// What mosquitto_passwd writes, so that files stay interchangeable.
inline constexpr std::uint32_t default_iterations = 101;
inline constexpr std::size_t salt_bytes = 12;
inline constexpr std::size_t digest_bytes = 64;

enum class hash_kind { sha512, pbkdf2_sha512 };

struct password_hash {
  hash_kind kind = hash_kind::pbkdf2_sha512;
  std::uint32_t iterations = 0;  // PBKDF2 only
  std::string salt;              // raw bytes
  std::string digest;            // raw bytes, digest_bytes long
};

struct parsed_hash {
  std::optional<password_hash> value;
  std::string error;  // why it is not a hash, when value is empty
};

// "$6$..." or "$7$..." (surrounding blanks are the caller's business).
parsed_hash parse_password_hash(std::string_view text);
std::string format_password_hash(const password_hash& h);

// True when `password` hashes to `h` (compared in constant time).
bool verify_password(const password_hash& h, std::string_view password);

// A $7$ hash of `password` with a fresh random salt; nullopt when the system's
// random source fails.
std::optional<password_hash> make_password_hash(std::string_view password,
                                                std::uint32_t iterations = default_iterations);

// Standard base64 (RFC 4648 alphabet, '=' padding), as mosquitto writes it.
std::string base64_encode(std::string_view bytes);
// nullopt on characters outside the alphabet, bad length or bad padding.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace ringmq::auth
