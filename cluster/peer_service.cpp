#include "cluster/peer_service.hpp"

#include <chrono>
#include <deque>
#include <mutex>

#include "cluster/cluster_node.hpp"

namespace ringmq::cluster {

namespace {

// A stream a peer opened: its frames are handed to the node as they arrive,
// and the node's answers are written back one batch at a time.
class inbound_stream final : public grpc::ServerBidiReactor<v1::PeerBatch, v1::PeerBatch>,
                             public inbound_handle {
 public:
  inbound_stream(cluster_node& node, grpc::CallbackServerContext* context)
      : node_(node), context_(context) {
    StartRead(&in_);
  }

  void cancel() override { context_->TryCancel(); }

  void reply(std::vector<v1::PeerFrame>&& frames) override {
    bool write = false;
    {
      std::lock_guard lock(mutex_);
      if (finishing_) return;
      for (auto& f : frames) pending_.push_back(std::move(f));
      if (!writing_) write = prepare_write_locked();
    }
    if (write) start_write();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      finish(grpc::Status::OK);
      return;
    }
    cluster_node::inbound_result result;
    node_.on_inbound_batch(*this, origin_, in_, result);
    in_.Clear();
    if (!result.replies.empty()) reply(std::move(result.replies));
    if (result.finish) {
      finish(*result.finish);
      return;
    }
    // The next batch when this node's worker has caught up with the last ones.
    if (origin_) origin_->await_deliveries(kBatchesAhead, kPaceBound);
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard lock(mutex_);
      write_ok_ = ok;
    }
    write_step_done();
  }

  void OnDone() override {
    node_.on_inbound_closed(*this, origin_);
    delete this;
  }

 private:
  // Moves everything pending into the write buffer; true when there is a write to start.
  bool prepare_write_locked() {
    if (pending_.empty()) return false;
    out_.Clear();
    while (!pending_.empty()) {
      out_.add_frames()->Swap(&pending_.front());
      pending_.pop_front();
    }
    writing_ = true;
    write_steps_left_ = 2;
    return true;
  }

  // gRPC calls are never made under the lock: a reaction may run on this thread.
  void start_write() {
    StartWrite(&out_);
    write_step_done();
  }

  // A write ends when both its completion came and the thread that started it
  // returned from StartWrite (which serializes out_): only then is out_ reused.
  // gRPC orders the two inside libgrpc, where ThreadSanitizer cannot see it;
  // counting both under the mutex orders them visibly. Whichever end comes
  // last starts the next write, or finishes the stream.
  void write_step_done() {
    for (;;) {
      bool write = false;
      bool finish_now = false;
      {
        std::lock_guard lock(mutex_);
        if (--write_steps_left_ > 0) return;
        writing_ = false;
        if (!write_ok_) pending_.clear();
        if (!pending_.empty() && !finishing_) {
          write = prepare_write_locked();
        } else if (finishing_ && !finished_) {
          finished_ = true;
          finish_now = true;
        }
      }
      if (finish_now) Finish(status_);
      if (!write) return;
      StartWrite(&out_);
    }
  }

  void finish(const grpc::Status& status) {
    {
      std::lock_guard lock(mutex_);
      if (finishing_) return;
      finishing_ = true;
      status_ = status;
      if (writing_) return;  // OnWriteDone finishes
      finished_ = true;
    }
    Finish(status);
  }

  // At most this many of the peer's batches wait for the worker before the
  // next is read; a read waits for that at most kPaceBound.
  static constexpr int kBatchesAhead = 2;
  static constexpr std::chrono::milliseconds kPaceBound{50};

  cluster_node& node_;
  grpc::CallbackServerContext* context_;
  std::shared_ptr<peer_link> origin_;  // set by the node at the Hello
  v1::PeerBatch in_;
  v1::PeerBatch out_;
  std::mutex mutex_;
  std::deque<v1::PeerFrame> pending_;
  bool writing_ = false;
  int write_steps_left_ = 0;  // see write_step_done
  bool write_ok_ = false;
  bool finishing_ = false;
  bool finished_ = false;
  grpc::Status status_;
};

}  // namespace

grpc::ServerBidiReactor<v1::PeerBatch, v1::PeerBatch>* peer_service::Stream(
    grpc::CallbackServerContext* context) {
  return new inbound_stream(node_, context);
}

grpc::ServerUnaryReactor* peer_service::Exchange(grpc::CallbackServerContext* context,
                                                 const v1::MemberSet* request,
                                                 v1::MemberSet* response) {
  auto* reactor = context->DefaultReactor();
  reactor->Finish(node_.on_exchange(*request, *response));
  return reactor;
}

grpc::ServerUnaryReactor* peer_service::Claim(grpc::CallbackServerContext* context,
                                              const v1::ClaimRequest* request,
                                              v1::ClaimResponse* response) {
  auto* reactor = context->DefaultReactor();
  node_.on_claim(*request, [this, reactor, request, response](grpc::Status status, bool granted) {
    response->set_granted(granted);
    response->set_replicated_session(node_.has_replicated_session(request->client_id()));
    reactor->Finish(status);
  });
  return reactor;
}

grpc::ServerUnaryReactor* peer_service::Kick(grpc::CallbackServerContext* context,
                                             const v1::KickRequest* request,
                                             v1::KickResponse* response) {
  auto* reactor = context->DefaultReactor();
  node_.on_kick(*request, [reactor, response](grpc::Status status, bool closed) {
    response->set_closed(closed);
    reactor->Finish(status);
  });
  return reactor;
}

}  // namespace ringmq::cluster
