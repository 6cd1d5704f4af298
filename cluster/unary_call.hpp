#pragma once
// One unary gRPC call with a deadline, on the callback API: the context, the
// request, the response and the stub live as long as the call does.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>

namespace ringmq::cluster {

template <class Service, class Request, class Response>
struct unary_call {
  grpc::ClientContext context;
  Request request;
  Response response;
  std::unique_ptr<typename Service::Stub> stub;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  }
};

// Starts the call `invoke(async_stub, context, request, response, callback)`
// on `channel`; `done(status, call)` runs on a gRPC thread when it completes.
template <class Service, class Response, class Request, class Invoke, class Done>
void start_unary(const std::shared_ptr<grpc::Channel>& channel, std::chrono::milliseconds timeout,
                 Request request, Invoke&& invoke, Done done) {
  auto c = std::make_shared<unary_call<Service, Request, Response>>();
  c->stub = Service::NewStub(channel);
  c->context.set_deadline(std::chrono::system_clock::now() + timeout);
  c->request = std::move(request);
  invoke(*c->stub->async(), &c->context, &c->request, &c->response,
         [c, done = std::move(done)](grpc::Status status) { done(status, *c); });
}

}  // namespace ringmq::cluster
