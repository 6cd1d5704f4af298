#pragma once
// The ring: which members a key (a client id) prefers, in order. Keys fall
// into 16,384 slots; each member scores each slot with a hash of its id and
// the slot, weighted by its virtual nodes, and a slot's preference list is the
// members by descending score (weighted rendezvous hashing). Every node
// computes the same ring from the same members, adding or removing one member
// moves only the slots it wins or held, and shares stay within a few percent
// of the weights (docs/cluster.md, "The ring"). Immutable once built.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ringmq::cluster {

struct ring_member {
  std::string id;
  std::uint32_t vnodes = 128;  // weight

  friend bool operator==(const ring_member&, const ring_member&) = default;
};

class ring {
 public:
  static constexpr std::uint32_t slot_count = 16384;

  // Members in any order; duplicates by id are ignored (the first is kept).
  explicit ring(std::vector<ring_member> members);

  static std::uint32_t slot_of(std::string_view key) noexcept;

  const std::vector<ring_member>& members() const noexcept { return members_; }
  bool empty() const noexcept { return members_.empty(); }

  // Index (into members()) of the slot's first choice.
  std::size_t owner_of_slot(std::uint32_t slot) const noexcept { return owners_[slot]; }
  const std::string& owner(std::string_view key) const {
    return members_[owners_[slot_of(key)]].id;
  }

  // Every member, most preferred first, for `key` (indices into members()).
  std::vector<std::size_t> preference(std::string_view key) const;
  // The first `r` distinct members for `key`, by id.
  std::vector<std::string> preference_list(std::string_view key, std::size_t r) const;
  // The first member of `key`'s preference list for which `usable(id)` holds;
  // empty when none does.
  template <class Usable>
  std::string first_usable(std::string_view key, Usable&& usable) const {
    const auto slot = slot_of(key);
    const auto& first = members_[owners_[slot]].id;
    if (usable(first)) return first;  // the common case: no sort
    for (auto i : preference_of_slot(slot)) {
      if (usable(members_[i].id)) return members_[i].id;
    }
    return {};
  }

  // Slots owned by each member (indices as members()).
  std::vector<std::uint32_t> slot_counts() const;

 private:
  std::vector<std::size_t> preference_of_slot(std::uint32_t slot) const;
  double score(std::size_t member, std::uint32_t slot) const noexcept;

  std::vector<ring_member> members_;        // sorted by id
  std::vector<std::uint64_t> member_seeds_;  // hash of each id
  std::vector<std::uint16_t> owners_;        // per slot
};

}  // namespace ringmq::cluster
