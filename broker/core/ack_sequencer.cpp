#include "broker/core/ack_sequencer.hpp"

#include <algorithm>

namespace ringmq::core {

ack_sequencer::ack_sequencer(std::shared_ptr<outbox> out, storage::store* store,
                             bool wait_out_failures)
    : out_(std::move(out)), store_(store), wait_out_failures_(wait_out_failures) {}

void ack_sequencer::send(codec::packet ack, storage::commit_seq seq) {
  enqueue(std::move(ack), seq, 0);
}

std::uint64_t ack_sequencer::send_gated(codec::packet ack, storage::commit_seq seq,
                                        std::uint32_t holds) {
  return enqueue(std::move(ack), seq, std::max<std::uint32_t>(holds, 1));
}

void ack_sequencer::send_after(codec::packet ack, const written& w, bool close_on_failure) {
  if (!w.kept) {
    enqueue(std::move(ack), w.seq, 0, close_on_failure);
    return;
  }
  const auto gate = enqueue(std::move(ack), w.seq, 1, close_on_failure);
  w.kept->on_done([weak = weak_from_this(), gate](bool committed) {
    if (auto self = weak.lock()) committed ? self->release(gate) : self->fail(gate);
  });
}

std::uint64_t ack_sequencer::enqueue(codec::packet&& ack, storage::commit_seq seq,
                                     std::uint32_t holds, bool close_on_failure) {
  const bool gated = holds > 0;
  bool ask = false;
  std::uint64_t gate = 0;
  {
    std::lock_guard lock(mutex_);
    if (!store_) seq = 0;
    if (!gated && (seq == 0 || seq <= durable_) && waiting_.empty()) {
      out_->send(ack);
      return 0;
    }
    // Nothing of its own to wait for: it waits for what is before it (order).
    if (seq == 0 || seq <= durable_) seq = waiting_.empty() ? 0 : waiting_.back().seq;
    if (gated) gate = next_gate_++;
    waiting_.push_back({seq, std::move(ack), gate, holds, false, close_on_failure});
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
  return gate;
}

void ack_sequencer::on_refused_pubrec(std::function<void(std::uint16_t)> handler) {
  std::lock_guard lock(mutex_);
  on_refused_pubrec_ = std::move(handler);
}

void ack_sequencer::notify_refused(std::unique_lock<std::mutex>& lock) {
  if (refused_pubrecs_.empty() || !on_refused_pubrec_) {
    refused_pubrecs_.clear();
    return;
  }
  auto ids = std::move(refused_pubrecs_);
  refused_pubrecs_.clear();
  auto handler = on_refused_pubrec_;
  lock.unlock();
  for (auto id : ids) handler(id);
}

void ack_sequencer::release(std::uint64_t gate) {
  std::unique_lock lock(mutex_);
  for (auto& e : waiting_) {
    if (e.gate == gate) {
      if (e.holds > 0) --e.holds;
      if (e.holds == 0) e.gate = 0;
      break;
    }
  }
  drain_locked();
  notify_refused(lock);
}

void ack_sequencer::fail(std::uint64_t gate) {
  std::unique_lock lock(mutex_);
  for (auto& e : waiting_) {
    if (e.gate == gate) {
      e.failed = true;
      e.holds = 0;
      e.gate = 0;
      break;
    }
  }
  drain_locked();
  notify_refused(lock);
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
  std::unique_lock lock(mutex_);
  if (ec) {
    if (seq > failed_) failed_ = seq;
  } else if (seq > durable_) {
    durable_ = seq;
  }
  drain_locked();
  notify_refused(lock);
}

bool ack_sequencer::send_failure_locked(entry& front) {
  if (const auto* rec = std::get_if<codec::pubrec_packet>(&front.ack);
      rec && !front.close_on_failure) {
    refused_pubrecs_.push_back(rec->packet_id);
  }
  if (front.close_on_failure || !to_failure(front.ack, out_->version())) {
    // The client is told nothing was stored by losing the connection: it
    // sends the packet again after reconnecting, and nothing acknowledged is lost.
    codec::disconnect_packet d;
    d.code = codec::reason_code::unspecified_error;
    out_->close(codec::is_v5(out_->version()) ? std::optional<codec::packet>(std::move(d))
                                               : std::nullopt,
                "a write this acknowledgement waited for failed (the store failed, or the "
                "session is served by another node now)");
    waiting_.clear();
    return false;
  }
  return true;
}

bool ack_sequencer::drain_locked() {
  while (!waiting_.empty() && waiting_.front().gate == 0) {
    auto& front = waiting_.front();
    if (front.failed) {
      if (!send_failure_locked(front)) return false;
    } else if (front.seq > durable_) {
      if (front.seq > failed_) return true;  // still being written
      if (!send_failure_locked(front)) return false;
    }
    out_->send(front.ack);
    waiting_.pop_front();
  }
  return true;
}

}  // namespace ringmq::core
