#pragma once
// The node's Prometheus metrics. Hot paths only bump per-thread probes
// (core/probe.hpp); everything here is computed when /metrics is scraped:
// probes summed, gauges read from their owners, process figures from /proc.
// Names, types and meanings are listed in docs/operations.md.

#include <functional>
#include <memory>
#include <string>

#include "broker/core/broker.hpp"
#include "cluster/cluster_node.hpp"

namespace prometheus {
class Registry;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace ringmq::metrics {

// Values the node knows and the core does not (network, readiness, cluster).
struct node_sources {
  std::function<double()> connections;  // open network connections
  std::function<bool()> ready;
  std::function<cluster::cluster_view()> cluster;
  std::string version;
  std::string revision;
};

class node_metrics {
 public:
  node_metrics(core::broker& broker, node_sources sources);
  ~node_metrics();

  // Store commit latency; thread-safe (called on the store's committer thread).
  void observe_store_write(double seconds);
  // Cluster timings ("rpc:<call>" or "route_sync"); thread-safe.
  void observe_cluster(std::string_view what, double seconds);

  // The Prometheus text exposition (format 0.0.4).
  std::string scrape() const;

 private:
  class collector;
  core::broker& broker_;
  node_sources sources_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Histogram* store_write_seconds_ = nullptr;
  prometheus::Histogram* route_sync_seconds_ = nullptr;
  prometheus::Family<prometheus::Histogram>* rpc_seconds_ = nullptr;
  std::shared_ptr<collector> collector_;
};

}  // namespace ringmq::metrics
