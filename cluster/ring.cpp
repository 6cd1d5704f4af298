#include "cluster/ring.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "broker/core/stable_hash.hpp"

namespace ringmq::cluster {

ring::ring(std::vector<ring_member> members) {
  std::stable_sort(members.begin(), members.end(),
                   [](const ring_member& a, const ring_member& b) { return a.id < b.id; });
  for (auto& m : members) {
    if (!members_.empty() && members_.back().id == m.id) continue;
    if (m.vnodes == 0) m.vnodes = 1;
    members_.push_back(std::move(m));
  }
  for (const auto& m : members_) member_seeds_.push_back(core::fnv1a64(m.id));
  owners_.assign(slot_count, 0);
  if (members_.empty()) return;
  for (std::uint32_t slot = 0; slot < slot_count; ++slot) {
    std::size_t best = 0;
    double best_score = score(0, slot);
    for (std::size_t i = 1; i < members_.size(); ++i) {
      const double s = score(i, slot);
      if (s > best_score) {
        best = i;
        best_score = s;
      }
    }
    owners_[slot] = static_cast<std::uint16_t>(best);
  }
}

std::uint32_t ring::slot_of(std::string_view key) noexcept {
  return static_cast<std::uint32_t>(core::mix64(core::fnv1a64(key)) % slot_count);
}

// Weighted rendezvous by the logarithmic method: a uniform u in (0, 1) from
// the hash, score = -weight / ln(u). The highest score wins; a member's chance
// of winning a slot is its share of the total weight.
double ring::score(std::size_t member, std::uint32_t slot) const noexcept {
  const auto h = core::hash_combine(member_seeds_[member], slot);
  const double u = (static_cast<double>(h >> 11) + 0.5) / 9007199254740992.0;  // 2^53
  return -static_cast<double>(members_[member].vnodes) / std::log(u);
}

std::vector<std::size_t> ring::preference_of_slot(std::uint32_t slot) const {
  std::vector<std::pair<double, std::size_t>> scored;
  scored.reserve(members_.size());
  for (std::size_t i = 0; i < members_.size(); ++i) scored.emplace_back(score(i, slot), i);
  std::sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::vector<std::size_t> out;
  out.reserve(scored.size());
  for (const auto& s : scored) out.push_back(s.second);
  return out;
}

std::vector<std::size_t> ring::preference(std::string_view key) const {
  return preference_of_slot(slot_of(key));
}

std::vector<std::string> ring::preference_list(std::string_view key, std::size_t r) const {
  std::vector<std::string> out;
  for (auto i : preference(key)) {
    if (out.size() == r) break;
    out.push_back(members_[i].id);
  }
  return out;
}

std::vector<std::uint32_t> ring::slot_counts() const {
  std::vector<std::uint32_t> counts(members_.size(), 0);
  if (members_.empty()) return counts;
  for (auto owner : owners_) ++counts[owner];
  return counts;
}

}  // namespace ringmq::cluster
