#include "broker/core/outbox.hpp"

#include "broker/core/overload.hpp"

namespace ringmq::core {

outbox::outbox(codec::protocol_version version, wake_function wake, std::size_t soft_limit_bytes)
    : version_(version), wake_(std::move(wake)), soft_limit_(soft_limit_bytes) {}

template <class Encode>
bool outbox::append(Encode&& encode) {
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    if (closing_) return false;
    encode(pending_);
    ++packets_;
    if (!wake_scheduled_) wake = wake_scheduled_ = true;
  }
  if (wake && wake_) wake_();
  return true;
}

bool outbox::send(const codec::packet& p) {
  return append([&](std::string& out) { codec::encode(p, version_, out); });
}

bool outbox::send(const codec::publish_view& p) {
  return append([&](std::string& out) { codec::encode(p, version_, out); });
}

outbox::congestion outbox::congested(std::chrono::steady_clock::time_point now) const {
  std::lock_guard lock(mutex_);
  if (pending_.size() <= soft_limit_) return congestion::none;
  if (congested_since_ == std::chrono::steady_clock::time_point{}) congested_since_ = now;
  return now - congested_since_ > overload_stuck_after ? congestion::stuck : congestion::slow;
}

std::size_t outbox::pending_bytes() const {
  std::lock_guard lock(mutex_);
  return pending_.size();
}

void outbox::close(std::optional<codec::packet> last, std::string reason) {
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    if (closing_) return;
    close_reason_ = std::move(reason);
    if (last) {
      if (auto* d = std::get_if<codec::disconnect_packet>(&*last)) close_code_ = d->code;
      codec::encode(*last, version_, pending_);
      ++packets_;
    }
    closing_ = true;
    if (!wake_scheduled_) wake = wake_scheduled_ = true;
  }
  if (wake && wake_) wake_();
}

std::string outbox::close_reason() const {
  std::lock_guard lock(mutex_);
  return close_reason_;
}

std::optional<codec::reason_code> outbox::close_code() const {
  std::lock_guard lock(mutex_);
  return close_code_;
}

bool outbox::closing() const {
  std::lock_guard lock(mutex_);
  return closing_;
}

void outbox::take(std::string& into) {
  std::lock_guard lock(mutex_);
  into.clear();
  into.swap(pending_);
  wake_scheduled_ = false;
  congested_since_ = {};
}

std::size_t outbox::take_packet_count() {
  std::lock_guard lock(mutex_);
  return std::exchange(packets_, 0);
}

}  // namespace ringmq::core
