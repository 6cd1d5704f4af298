#pragma once
// Hashes that every node computes alike, whatever its compiler or standard
// library (std::hash promises nothing across builds): for the ring, and for
// the digests that nodes compare to find out whether they diverged.

#include <cstdint>
#include <string_view>

namespace ringmq::core {

constexpr std::uint64_t fnv1a64(std::string_view s,
                                std::uint64_t h = 0xcbf29ce484222325ull) noexcept {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

// The finalizer of SplitMix64: spreads every input bit over the output.
constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Combines a hash with one more value; not commutative.
constexpr std::uint64_t hash_combine(std::uint64_t h, std::uint64_t v) noexcept {
  return mix64(h ^ mix64(v));
}

}  // namespace ringmq::core
