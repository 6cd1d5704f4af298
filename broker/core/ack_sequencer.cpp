#include "broker/core/ack_sequencer.hpp"

namespace ringmq::core {

ack_sequencer::ack_sequencer(std::shared_ptr<outbox> out, storage::store* store,
                             bool wait_out_failures)
    : out_(std::move(out)), store_(store), wait_out_failures_(wait_out_failures) {}

void ack_sequencer::send(codec::packet ack, storage::commit_seq seq) {
  bool ask = false;
  {
    std::lock_guard lock(mutex_);
    if (!store_ || ((seq == 0 || seq <= durable_) && waiting_.empty())) {
      out_->send(ack);
      return;
    }
    if (seq == 0 || seq <= durable_) seq = waiting_.back().seq;  // keep the order
    waiting_.push_back({seq, std::move(ack)});
    if (seq > requested_) {
      requested_ = seq;
      ask = true;
    }
  }
  if (ask) {
    std::weak_ptr<ack_sequencer> weak = shared_from_this();
    store_->when_durable(seq, [weak, seq](std::error_code ec) {
      if (auto self = weak.lock()) self->on_durable(seq, ec);
    });
  }
}

bool ack_sequencer::waiting() const {
  std::lock_guard lock(mutex_);
  return !waiting_.empty();
}

bool ack_sequencer::to_failure(codec::packet& ack, codec::protocol_version version) {
  if (!codec::is_v5(version)) return false;  // 3.x cannot say "not stored": close instead
  using codec::reason_code;
  if (auto* p = std::get_if<codec::puback_packet>(&ack)) {
    p->code = reason_code::quota_exceeded;
    return true;
  }
  if (auto* p = std::get_if<codec::pubrec_packet>(&ack)) {
    p->code = reason_code::quota_exceeded;
    return true;
  }
  if (auto* p = std::get_if<codec::suback_packet>(&ack)) {
    for (auto& c : p->codes) c = reason_code::quota_exceeded;
    return true;
  }
  if (auto* p = std::get_if<codec::unsuback_packet>(&ack)) {
    for (auto& c : p->codes) c = reason_code::unspecified_error;
    return true;
  }
  return false;  // PUBCOMP has no code for it
}

void ack_sequencer::on_durable(storage::commit_seq seq, std::error_code ec) {
  if (ec && wait_out_failures_) {
    // The failed batch stays first in the store's line and is retried about
    // every retry interval: ask again (called without the store's lock held).
    if (out_->closing()) return;
    std::weak_ptr<ack_sequencer> weak = shared_from_this();
    store_->when_durable(seq, [weak, seq](std::error_code e) {
      if (auto self = weak.lock()) self->on_durable(seq, e);
    });
    return;
  }
  std::lock_guard lock(mutex_);
  if (!ec && seq > durable_) durable_ = seq;
  while (!waiting_.empty() && waiting_.front().seq <= seq) {
    auto& front = waiting_.front();
    if (ec && !to_failure(front.ack, out_->version())) {
      // The client is told nothing was stored by losing the connection: it
      // sends the packet again after reconnecting, and nothing acknowledged is lost.
      codec::disconnect_packet d;
      d.code = codec::reason_code::unspecified_error;
      out_->close(codec::is_v5(out_->version()) ? std::optional<codec::packet>(std::move(d))
                                                 : std::nullopt);
      waiting_.clear();
      return;
    }
    out_->send(front.ack);
    waiting_.pop_front();
  }
}

}  // namespace ringmq::core
