#include "broker/core/dedup_window.hpp"

#include <algorithm>

namespace ringmq::core {

bool dedup_window::admit(std::uint64_t number, std::uint16_t packet_id) {
  if (number > top_) {
    const auto shift = number - top_;
    if (top_ == 0 || shift >= span) {
      ids_.fill(0);
    } else {
      std::copy_backward(ids_.begin(), ids_.end() - static_cast<std::ptrdiff_t>(shift), ids_.end());
      std::fill(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(shift), 0);
    }
    top_ = number;
    ids_[0] = packet_id;
    return true;
  }
  const auto d = top_ - number;
  if (d >= span) return true;  // further back than anything resent: taken
  if (ids_[d] == packet_id) return false;
  ids_[d] = packet_id;
  return true;
}

void dedup_window::forget(std::uint64_t number, std::uint16_t packet_id) {
  if (number > top_ || top_ - number >= span) return;
  auto& id = ids_[top_ - number];
  if (id == packet_id) id = 0;
}

std::string dedup_window::encode_ids() const {
  std::string out;
  out.reserve(span * 2);
  for (auto id : ids_) {
    out.push_back(static_cast<char>(id >> 8));
    out.push_back(static_cast<char>(id & 0xff));
  }
  return out;
}

bool dedup_window::decode(std::uint64_t top, std::string_view ids) {
  top_ = 0;
  ids_.fill(0);
  if (ids.size() != span * 2) return false;
  top_ = top;
  for (std::size_t i = 0; i < span; ++i) {
    ids_[i] = static_cast<std::uint16_t>((static_cast<unsigned char>(ids[2 * i]) << 8) |
                                         static_cast<unsigned char>(ids[2 * i + 1]));
  }
  return true;
}

}  // namespace ringmq::core
