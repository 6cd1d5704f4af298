#pragma once
// The peer gRPC service (callback API): streams other members opened to this
// node, and the unary calls. Every handler hands its work to the cluster_node
// and never blocks a gRPC thread on anything but short locks.

#include "ringmq/cluster/v1/cluster.grpc.pb.h"

namespace ringmq::cluster {

class cluster_node;

class peer_service final : public v1::Peer::CallbackService {
 public:
  explicit peer_service(cluster_node& node) : node_(node) {}

  grpc::ServerBidiReactor<v1::PeerBatch, v1::PeerBatch>* Stream(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* Exchange(grpc::CallbackServerContext* context,
                                     const v1::MemberSet* request,
                                     v1::MemberSet* response) override;
  grpc::ServerUnaryReactor* Claim(grpc::CallbackServerContext* context,
                                  const v1::ClaimRequest* request,
                                  v1::ClaimResponse* response) override;
  grpc::ServerUnaryReactor* Kick(grpc::CallbackServerContext* context,
                                 const v1::KickRequest* request,
                                 v1::KickResponse* response) override;

 private:
  cluster_node& node_;
};

}  // namespace ringmq::cluster
