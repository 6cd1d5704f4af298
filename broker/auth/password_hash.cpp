#include "broker/auth/password_hash.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <charconv>
#include <limits>
#include <memory>

namespace ringmq::auth {

namespace {

constexpr std::string_view alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_value(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Splits "a$b$c" at '$' into at most `max` fields; false when there are more.
template <std::size_t N>
bool split_fields(std::string_view text, std::string_view (&fields)[N], std::size_t& count) {
  count = 0;
  while (true) {
    if (count == N) return false;
    const auto dollar = text.find('$');
    fields[count++] = text.substr(0, dollar);
    if (dollar == std::string_view::npos) return true;
    text.remove_prefix(dollar + 1);
  }
}

std::optional<std::string> derive(const password_hash& h, std::string_view password) {
  std::string out(digest_bytes, '\0');
  auto* out_bytes = reinterpret_cast<unsigned char*>(out.data());
  if (h.kind == hash_kind::pbkdf2_sha512) {
    constexpr auto most = static_cast<std::uint32_t>(std::numeric_limits<int>::max());
    if (h.iterations == 0 || h.iterations > most) return std::nullopt;
    if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                          reinterpret_cast<const unsigned char*>(h.salt.data()),
                          static_cast<int>(h.salt.size()), static_cast<int>(h.iterations),
                          EVP_sha512(), static_cast<int>(out.size()), out_bytes) != 1) {
      return std::nullopt;
    }
    return out;
  }
  // $6$: one SHA-512 over the password followed by the raw salt.
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  unsigned int length = 0;
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha512(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), password.data(), password.size()) != 1 ||
      EVP_DigestUpdate(ctx.get(), h.salt.data(), h.salt.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), out_bytes, &length) != 1 || length != digest_bytes) {
    return std::nullopt;
  }
  return out;
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = (static_cast<std::uint8_t>(bytes[i]) << 16) |
                            (static_cast<std::uint8_t>(bytes[i + 1]) << 8) |
                            static_cast<std::uint8_t>(bytes[i + 2]);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  const auto rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t v = static_cast<std::uint8_t>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<std::uint8_t>(bytes[i + 1]) << 8;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += rest == 2 ? alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  // Padding is optional on reading (hand-written entries), required in the middle never.
  std::size_t padding = 0;
  while (!text.empty() && text.back() == '=' && padding < 2) {
    text.remove_suffix(1);
    ++padding;
  }
  if (padding > 0 && (text.size() + padding) % 4 != 0) return std::nullopt;
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (const char c : text) {
    const int v = base64_value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

parsed_hash parse_password_hash(std::string_view text) {
  parsed_hash r;
  std::string_view f[6];
  std::size_t n = 0;
  if (!text.starts_with('$')) {
    r.error = "not a password hash (a plain-text password? hash it with `ringmq passwd` or "
              "`mosquitto_passwd -U`)";
    return r;
  }
  if (!split_fields(text.substr(1), f, n)) {
    r.error = "not a password hash (expected $6$salt$hash or $7$iterations$salt$hash)";
    return r;
  }
  password_hash h;
  std::string_view salt_text;
  std::string_view digest_text;
  if (f[0] == "6" && n == 3) {
    h.kind = hash_kind::sha512;
    salt_text = f[1];
    digest_text = f[2];
  } else if (f[0] == "7" && n == 4) {
    h.kind = hash_kind::pbkdf2_sha512;
    std::uint64_t iterations = 0;
    const auto [end, ec] = std::from_chars(f[1].data(), f[1].data() + f[1].size(), iterations);
    if (ec != std::errc{} || end != f[1].data() + f[1].size() || iterations == 0 ||
        iterations > static_cast<std::uint64_t>(std::numeric_limits<int>::max())) {
      r.error = "bad iteration count \"" + std::string(f[1]) + "\" in a $7$ hash";
      return r;
    }
    h.iterations = static_cast<std::uint32_t>(iterations);
    salt_text = f[2];
    digest_text = f[3];
  } else if (f[0] == "6" || f[0] == "7") {
    r.error = "malformed $" + std::string(f[0]) + "$ hash (wrong number of '$' fields)";
    return r;
  } else {
    r.error = "unsupported hash type $" + std::string(f[0]) +
              "$ (only $6$ and $7$ are read; plain-text passwords must be hashed with "
              "`ringmq passwd` or `mosquitto_passwd -U`)";
    return r;
  }
  auto salt = base64_decode(salt_text);
  if (!salt || salt->empty()) {
    r.error = "the salt is not valid base64";
    return r;
  }
  auto digest = base64_decode(digest_text);
  if (!digest || digest->size() != digest_bytes) {
    r.error = "the hash is not " + std::to_string(digest_bytes) + " bytes of base64";
    return r;
  }
  h.salt = std::move(*salt);
  h.digest = std::move(*digest);
  r.value = std::move(h);
  return r;
}

std::string format_password_hash(const password_hash& h) {
  if (h.kind == hash_kind::sha512) {
    return "$6$" + base64_encode(h.salt) + "$" + base64_encode(h.digest);
  }
  return "$7$" + std::to_string(h.iterations) + "$" + base64_encode(h.salt) + "$" +
         base64_encode(h.digest);
}

bool verify_password(const password_hash& h, std::string_view password) {
  const auto derived = derive(h, password);
  if (!derived || derived->size() != h.digest.size()) return false;
  return CRYPTO_memcmp(derived->data(), h.digest.data(), h.digest.size()) == 0;
}

std::optional<password_hash> make_password_hash(std::string_view password,
                                                std::uint32_t iterations) {
  password_hash h;
  h.kind = hash_kind::pbkdf2_sha512;
  h.iterations = iterations;
  h.salt.resize(salt_bytes);
  if (RAND_bytes(reinterpret_cast<unsigned char*>(h.salt.data()), static_cast<int>(salt_bytes)) !=
      1) {
    return std::nullopt;
  }
  auto digest = derive(h, password);
  if (!digest) return std::nullopt;
  h.digest = std::move(*digest);
  return h;
}

}  // namespace ringmq::auth
