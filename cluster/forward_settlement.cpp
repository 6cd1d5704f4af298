#include "cluster/forward_settlement.hpp"

#include <algorithm>

namespace ringmq::cluster {

forward_settlement::ticket forward_settlement::begin(std::uint64_t last_seq) {
  const auto t = next_ticket_++;
  batches_.push_back(batch{t, last_seq});
  return t;
}

void forward_settlement::finish(ticket t, std::vector<std::uint64_t> failed) {
  // Tickets rise along the deque: a binary search finds the batch.
  auto it = std::lower_bound(batches_.begin(), batches_.end(), t,
                             [](const batch& b, ticket id) { return b.id < id; });
  if (it == batches_.end() || it->id != t || it->done) return;
  it->done = true;
  it->failed = std::move(failed);
  advance();
}

void forward_settlement::advance() {
  while (!batches_.empty() && batches_.front().done) {
    auto& front = batches_.front();
    settled_ = std::max(settled_, front.last_seq);
    failed_untold_.insert(failed_untold_.end(), front.failed.begin(), front.failed.end());
    batches_.pop_front();
  }
}

bool forward_settlement::take(std::uint64_t& settled, std::vector<std::uint64_t>& failed) {
  if (settled_ <= told_ && failed_untold_.empty()) return false;
  told_ = settled_;
  settled = settled_;
  failed = std::move(failed_untold_);
  failed_untold_.clear();
  return true;
}

void forward_settlement::reset() {
  batches_.clear();
  settled_ = 0;
  told_ = 0;
  failed_untold_.clear();
  // Tickets keep rising: a late finish() of the earlier process's batch finds nothing.
}

}  // namespace ringmq::cluster
