#include "cluster/peer_link.hpp"

#include <algorithm>

#include "broker/core/overload.hpp"
#include "cluster/cluster_node.hpp"
#include "cluster/wire.hpp"

namespace ringmq::cluster {

namespace {
// Queued bytes beyond which a QoS 0 message pauses its publisher's reading:
// about a tenth of a second of a busy link, far below the drop bound.
constexpr std::uint64_t kQos0PauseBytes = 1 << 20;
}  // namespace

const char* to_string(liveness l) noexcept {
  switch (l) {
    case liveness::alive: return "alive";
    case liveness::suspect: return "suspect";
    case liveness::dead: return "dead";
  }
  return "dead";
}

// The stream this node opened to a peer. It holds the link (and so the link
// outlives it); the link points back to it while it is usable. A hold keeps
// gRPC from finishing it while the link may still start a write: the hold
// goes once the stream broke and no write is in flight.
class outbound_stream final : public grpc::ClientBidiReactor<v1::PeerBatch, v1::PeerBatch> {
 public:
  explicit outbound_stream(std::shared_ptr<peer_link> link) : link_(std::move(link)) {}

  void start(v1::Peer::Stub& stub) {
    stub.async()->Stream(&context, this);
    AddHold();
    StartRead(&in_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      link_->on_broken(this);
      return;
    }
    link_->on_response(this, in_);
    in_.Clear();
    StartRead(&in_);
  }
  void OnWriteDone(bool ok) override { link_->on_write_done(this, ok); }
  void OnDone(const grpc::Status& status) override {
    auto link = std::move(link_);
    link->on_done(this, status);
    delete this;
  }

  grpc::ClientContext context;
  v1::PeerBatch out;
  std::vector<outbound_item> out_messages;  // kept until acknowledged
  // Guarded by the link's mutex.
  bool writing = false;
  // A write ends when both its completion came and the thread that started it
  // returned from StartWrite (which serializes `out`): only then may `out` be
  // reused. gRPC orders the two, but inside libgrpc, where ThreadSanitizer
  // cannot see it; counting both under the link's mutex orders them visibly.
  int write_steps_left = 0;
  bool write_ok = false;
  bool broken = false;
  bool hold_released = false;

 private:
  std::shared_ptr<peer_link> link_;
  v1::PeerBatch in_;
};

namespace {

bool restated_on_open(const v1::PeerFrame& f) {
  switch (f.kind_case()) {
    case v1::PeerFrame::kHello:
    case v1::PeerFrame::kRouteSnapshot:
    case v1::PeerFrame::kRouteDelta:
    case v1::PeerFrame::kRouteDigest:
    case v1::PeerFrame::kRetainedDigest:
    case v1::PeerFrame::kRetainedSnapshot:
    case v1::PeerFrame::kHeartbeat:
      return true;
    default:
      return false;
  }
}

// Publishers' waits to finish once the link's lock is released: what waits
// on them (acknowledgements) must not run under it.
class settle_list {
 public:
  void add(outbound_item& item, bool kept) {
    if (item.settle) done_.emplace_back(std::move(item.settle), kept);
  }
  std::size_t failed() const {
    std::size_t n = 0;
    for (const auto& d : done_) n += d.second ? 0 : 1;
    return n;
  }
  void finish() {
    for (auto& [wait, kept] : done_) wait->finish(kept);
    done_.clear();
  }

 private:
  std::vector<std::pair<std::shared_ptr<core::keeper_wait>, bool>> done_;
};

bool listed(const std::vector<std::uint64_t>& seqs, std::uint64_t seq) {
  return std::find(seqs.begin(), seqs.end(), seq) != seqs.end();
}

}  // namespace

peer_link::peer_link(cluster_node& owner, std::string id, origin_index index,
                     std::int64_t now_ms, std::uint64_t queue_limit_bytes)
    : owner_(owner),
      id_(std::move(id)),
      index_(index),
      queue_limit_(queue_limit_bytes),
      last_heard_ms_(now_ms) {}

peer_link::~peer_link() = default;

void peer_link::set_address(const std::string& address,
                            std::shared_ptr<grpc::ChannelCredentials> creds,
                            const grpc::ChannelArguments& args) {
  {
    std::lock_guard lock(mutex_);
    if (address == address_ && channel_) return;
    address_ = address;
    channel_ = grpc::CreateCustomChannel(address, std::move(creds), args);
    stub_ = std::shared_ptr<v1::Peer::Stub>(v1::Peer::NewStub(channel_));
    next_attempt_ms_ = 0;
    backoff_ms_ = 100;
  }
  close_stream();
}

std::string peer_link::address() const {
  std::lock_guard lock(mutex_);
  return address_;
}

std::shared_ptr<grpc::Channel> peer_link::channel() const {
  std::lock_guard lock(mutex_);
  return channel_;
}

bool peer_link::enqueue_message(outbound_item&& item) {
  {
    std::lock_guard lock(mutex_);
    const bool qos0 = item.msg && item.msg->qos == codec::qos::at_most_once;
    const auto limit = qos0 ? queue_limit_ / 2 : queue_limit_;
    // QoS 0 behind more than a short wait's worth: its publisher is read
    // more slowly for a moment (and beyond the bound, dropped). Not when the
    // backlog has lasted for seconds: a peer that stopped taking anything is
    // for the failure detector, not a reason to hold up every publisher.
    if (queue_bytes_ + item.bytes <= kQos0PauseBytes) {
      backlog_since_ = {};
    } else if (qos0) {
      const auto now = std::chrono::steady_clock::now();
      if (backlog_since_ == std::chrono::steady_clock::time_point{}) backlog_since_ = now;
      if (now - backlog_since_ <= core::overload_stuck_after) core::signal_qos0_overload();
    }
    if (queue_bytes_ + item.bytes > limit) {
      counters.dropped_queue_full.fetch_add(1, std::memory_order_relaxed);
      if (item.settle) {
        // Its publisher is told it was not taken (5.0: Quota exceeded).
        counters.settle_failed.fetch_add(1, std::memory_order_relaxed);
        item.settle->finish(false);
      }
      return false;
    }
    item.seq = ++next_seq_;
    queue_bytes_ += item.bytes;
    ++queue_messages_;
    queue_.push_back(std::move(item));
  }
  pump();
  return true;
}

void peer_link::enqueue_frame(v1::PeerFrame&& frame, bool write_now) {
  {
    std::lock_guard lock(mutex_);
    queue_frame_locked(std::move(frame));
  }
  if (write_now) pump();
}

void peer_link::enqueue_restated(v1::PeerFrame&& frame) {
  std::lock_guard lock(mutex_);
  if (stream_) queue_frame_locked(std::move(frame));
}

void peer_link::queue_frame_locked(v1::PeerFrame&& frame) {
  outbound_item item;
  item.what = outbound_item::kind::frame;
  item.bytes = frame.ByteSizeLong();
  item.frame = std::make_unique<v1::PeerFrame>(std::move(frame));
  queue_bytes_ += item.bytes;
  queue_.push_back(std::move(item));
}

std::size_t peer_link::drop_queue() {
  settle_list settled;
  std::size_t dropped = 0;
  {
    std::lock_guard lock(mutex_);
    std::deque<outbound_item> kept;
    for (auto& item : queue_) {
      if (item.what == outbound_item::kind::frame) continue;  // a new stream starts afresh
      settled.add(item, false);
      ++dropped;
    }
    for (auto& item : unacked_) settled.add(item, false);
    dropped += unacked_.size();
    unacked_.clear();
    queue_.swap(kept);
    queue_bytes_ = 0;
    queue_messages_ = 0;
    counters.dropped_dead.fetch_add(dropped, std::memory_order_relaxed);
    counters.settle_failed.fetch_add(settled.failed(), std::memory_order_relaxed);
  }
  settled.finish();
  return dropped;
}

void peer_link::on_forward_ack(std::uint64_t seq, const std::vector<std::uint64_t>& failed) {
  settle_list settled;
  {
    std::lock_guard lock(mutex_);
    if (seq > settled_seq_) settled_seq_ = seq;
    std::size_t matched = 0;
    while (!unacked_.empty() && unacked_.front().seq <= seq) {
      auto& front = unacked_.front();
      const bool kept = !listed(failed, front.seq);
      matched += kept ? 0 : 1;
      settled.add(front, kept);
      queue_bytes_ -= front.bytes;
      unacked_.pop_front();
    }
    // After a broken stream the unacknowledged wait in the queue for their
    // resend (or are being written again): settled all the same.
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (it->what == outbound_item::kind::frame || it->seq > seq) {
        ++it;
        continue;
      }
      const bool kept = !listed(failed, it->seq);
      matched += kept ? 0 : 1;
      settled.add(*it, kept);
      queue_bytes_ -= it->bytes;
      --queue_messages_;
      it = queue_.erase(it);
    }
    if (matched < failed.size()) {
      for (auto f : failed) failed_unmatched_.push_back(f);
    }
    counters.settle_failed.fetch_add(settled.failed(), std::memory_order_relaxed);
  }
  settled.finish();
}

std::size_t peer_link::expire_settles(std::int64_t now_ms, std::int64_t timeout_ms) {
  settle_list expired;
  {
    std::lock_guard lock(mutex_);
    const auto expire = [&](outbound_item& item) {
      if (item.settle && now_ms - item.queued_at_ms >= timeout_ms) expired.add(item, false);
    };
    for (auto& item : unacked_) expire(item);
    for (auto& item : queue_) expire(item);
    counters.settle_failed.fetch_add(expired.failed(), std::memory_order_relaxed);
  }
  const auto n = expired.failed();
  expired.finish();
  return n;
}

std::uint64_t peer_link::resend_below() const {
  std::lock_guard lock(mutex_);
  return written_seq_ + 1;
}

std::size_t peer_link::queued_messages() const {
  std::lock_guard lock(mutex_);
  return queue_messages_;
}

std::size_t peer_link::queued_bytes() const {
  std::lock_guard lock(mutex_);
  return queue_bytes_;
}

bool peer_link::stream_open() const {
  std::lock_guard lock(mutex_);
  return stream_ != nullptr;
}

void peer_link::on_route_ack(std::uint64_t seq) noexcept {
  auto current = acked_route_seq_.load(std::memory_order_relaxed);
  while (seq > current &&
         !acked_route_seq_.compare_exchange_weak(current, seq, std::memory_order_acq_rel)) {
  }
}

void peer_link::maintain(std::int64_t now_ms) {
  outbound_stream* s = nullptr;
  std::shared_ptr<v1::Peer::Stub> stub;
  std::shared_ptr<grpc::Channel> channel;
  {
    std::lock_guard lock(mutex_);
    // A broken stream's last write must have ended first: its messages are
    // then known to be unacknowledged, and go again in order.
    if (stream_ || !stub_ || draining_ || now_ms < next_attempt_ms_) return;
    stub = stub_;
    channel = channel_;
    s = new outbound_stream(shared_from_this());
    // Opening counts as a write in flight: nobody starts one on it, and its
    // hold stays, until it is bound to its call (below).
    s->writing = true;
    stream_ = s;
    // The peer acknowledges routes anew on every stream (it may have restarted).
    acked_route_seq_.store(0, std::memory_order_release);
    // The next attempt, should this one fail, waits longer (100 ms up to 2 s).
    next_attempt_ms_ = now_ms + backoff_ms_;
    backoff_ms_ = std::min<std::int64_t>(backoff_ms_ * 2, 2'000);
    counters.streams_opened.fetch_add(1, std::memory_order_relaxed);
    // Route and sync frames that did not make it through the previous stream
    // are stale: the opening frames restate them. Messages, member sets and
    // directory frames still go.
    std::deque<outbound_item> kept;
    for (auto& item : queue_) {
      if (item.what == outbound_item::kind::frame && restated_on_open(*item.frame)) {
        queue_bytes_ -= item.bytes;
      } else {
        kept.push_back(std::move(item));
      }
    }
    queue_.swap(kept);
    // Messages written on an earlier stream and not acknowledged go again,
    // first and in order; the peer skips those it had (docs/cluster.md).
    counters.resent.fetch_add(unacked_.size(), std::memory_order_relaxed);
    queue_messages_ += unacked_.size();
    for (auto it = unacked_.rbegin(); it != unacked_.rend(); ++it) {
      queue_.push_front(std::move(*it));
    }
    unacked_.clear();
  }
  // This link's own backoff (on the steady clock) paces the attempts, not
  // gRPC's: gRPC waits out its reconnect backoff on the wall clock, and a
  // wall clock stepped back (NTP, or the chaos run's clock jumps) kept a
  // channel failing every call with its last connect error for as long as
  // the step (a restarted peer got no routes from this node for 60 to 90 s).
  grpc::experimental::ChannelResetConnectionBackoff(channel.get());
  // Hello, the route snapshot and the retained digest go first.
  owner_.opening_frames(*this, [&](std::vector<v1::PeerFrame>&& frames) {
    std::lock_guard lock(mutex_);
    for (auto it = frames.rbegin(); it != frames.rend(); ++it) {
      outbound_item item;
      item.bytes = it->ByteSizeLong();
      item.frame = std::make_unique<v1::PeerFrame>(std::move(*it));
      queue_bytes_ += item.bytes;
      queue_.push_front(std::move(item));
    }
  });
  s->start(*stub);
  bool release = false;
  {
    std::lock_guard lock(mutex_);
    release = end_write_locked(s);
  }
  if (release) {
    s->RemoveHold();
    return;
  }
  pump();
}

bool peer_link::end_write_locked(outbound_stream* s) {
  s->writing = false;
  if (!s->broken) return false;
  draining_ = false;
  if (s->hold_released) return false;
  s->hold_released = true;
  return true;
}

void peer_link::retry_now() {
  std::lock_guard lock(mutex_);
  next_attempt_ms_ = 0;
  backoff_ms_ = 100;
}

void peer_link::close_stream() {
  std::lock_guard lock(mutex_);
  if (stream_) stream_->context.TryCancel();
}

std::vector<outbound_item> peer_link::take_batch_locked() {
  // Large enough to amortize a write, small enough to keep latency and memory bounded.
  static constexpr std::size_t max_items = 512;
  static constexpr std::size_t max_bytes = 1 << 20;
  std::vector<outbound_item> items;
  std::size_t bytes = 0;
  while (!queue_.empty() && items.size() < max_items && (items.empty() || bytes < max_bytes)) {
    auto& item = queue_.front();
    bytes += item.bytes;
    if (item.what == outbound_item::kind::frame) {
      queue_bytes_ -= item.bytes;
    } else {
      --queue_messages_;  // its bytes count until the peer acknowledges it
      written_seq_ = std::max(written_seq_, item.seq);
    }
    items.push_back(std::move(item));
    queue_.pop_front();
  }
  return items;
}

void peer_link::build_batch(std::vector<outbound_item>& items, v1::PeerBatch& out) {
  out.Clear();
  const auto now = core::clock::now();
  for (auto& item : items) {
    switch (item.what) {
      case outbound_item::kind::frame:
        out.add_frames()->Swap(item.frame.get());
        break;
      case outbound_item::kind::forward: {
        auto* f = out.add_frames()->mutable_forward();
        to_wire(*item.msg, now, *f->mutable_message());
        f->set_plain(item.plain);
        for (const auto& g : item.groups) f->add_groups(g);
        if (item.version) to_wire(*item.version, *f->mutable_retained());
        f->set_seq(item.seq);
        break;
      }
      case outbound_item::kind::retained: {
        auto* r = out.add_frames()->mutable_retained();
        to_wire(*item.msg, now, *r->mutable_entry()->mutable_message());
        to_wire(*item.version, *r->mutable_entry()->mutable_version());
        r->set_seq(item.seq);
        break;
      }
    }
  }
}

void peer_link::pump() {
  for (;;) {
    outbound_stream* s = nullptr;
    std::vector<outbound_item> items;
    {
      std::lock_guard lock(mutex_);
      s = stream_;
      if (!s || s->writing || s->broken || queue_.empty()) return;
      items = take_batch_locked();
      s->writing = true;
      s->write_steps_left = 2;
    }
    // Built outside the lock: other threads keep queueing meanwhile, and only
    // this thread writes while `writing` is set.
    build_batch(items, s->out);
    s->out_messages.clear();
    for (auto& item : items) {
      if (item.what != outbound_item::kind::frame) s->out_messages.push_back(std::move(item));
    }
    counters.batches_out.fetch_add(1, std::memory_order_relaxed);
    s->StartWrite(&s->out);
    // The write may have completed already: then this thread finishes it,
    // and goes on with the next batch itself.
    if (!write_step_done(s)) return;
  }
}

void peer_link::on_write_done(outbound_stream* s, bool ok) {
  {
    std::lock_guard lock(mutex_);
    s->write_ok = ok;
  }
  if (write_step_done(s)) pump();
}

bool peer_link::write_step_done(outbound_stream* s) {
  bool release = false;
  bool ok = false;
  settle_list settled;
  {
    std::lock_guard lock(mutex_);
    if (--s->write_steps_left > 0) return false;
    ok = s->write_ok;
    if (ok) {
      std::uint64_t forwards = 0;
      for (const auto& item : s->out_messages) {
        if (item.what == outbound_item::kind::forward) ++forwards;
      }
      counters.forwarded_out.fetch_add(forwards, std::memory_order_relaxed);
      // A write went through: the next broken stream retries quickly again.
      backoff_ms_ = 100;
    }
    // Written or not, they wait for the peer's acknowledgement (or a resend),
    // unless it came while they were being written.
    for (auto& item : s->out_messages) {
      if (item.seq <= settled_seq_) {
        const bool kept = !listed(failed_unmatched_, item.seq);
        if (!kept) counters.settle_failed.fetch_add(1, std::memory_order_relaxed);
        settled.add(item, kept);
        queue_bytes_ -= item.bytes;
        continue;
      }
      unacked_.push_back(std::move(item));
    }
    s->out_messages.clear();
    // Failures not found by now are for messages no longer here.
    if (unacked_.empty() || unacked_.front().seq > settled_seq_) failed_unmatched_.clear();
    release = end_write_locked(s);
  }
  settled.finish();
  if (release) {
    s->RemoveHold();
    return false;
  }
  return ok;
}

void peer_link::on_response(outbound_stream*, v1::PeerBatch& batch) {
  owner_.on_peer_response(*this, batch);
}

void peer_link::on_broken(outbound_stream* s) {
  bool release = false;
  {
    std::lock_guard lock(mutex_);
    s->broken = true;
    if (stream_ == s) stream_ = nullptr;
    if (s->writing) draining_ = true;
    if (!s->writing && !s->hold_released) {
      s->hold_released = true;
      release = true;
    }
  }
  if (release) s->RemoveHold();
}

void peer_link::on_done(outbound_stream* s, const grpc::Status& status) {
  {
    std::lock_guard lock(mutex_);
    if (stream_ == s) stream_ = nullptr;
  }
  owner_.on_stream_done(*this, status);
}

void peer_link::delivery_posted() {
  std::lock_guard lock(delivery_mutex_);
  ++deliveries_waiting_;
}

void peer_link::delivery_done() {
  {
    std::lock_guard lock(delivery_mutex_);
    --deliveries_waiting_;
  }
  delivery_cv_.notify_all();
}

void peer_link::await_deliveries(int max_waiting, std::chrono::milliseconds bound) {
  std::unique_lock lock(delivery_mutex_);
  // Bounded: a worker that is stuck must not stop this stream's heartbeats
  // and acknowledgements for long.
  delivery_cv_.wait_for(lock, bound, [&] { return deliveries_waiting_ <= max_waiting; });
}

}  // namespace ringmq::cluster
