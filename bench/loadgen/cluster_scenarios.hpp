#pragma once
// The scenarios that need several brokers of one cluster (--hosts).
//
// failover: N persistent sessions are made on the first host, one QoS 1
// message is published (and acknowledged) for each while they are offline,
// --kill-command kills the first host's broker, and every client reconnects at
// once to the other hosts. A client is served when its CONNACK says session
// present and its message has arrived; the report gives the times from the
// kill and counts every acknowledged message that never arrived.
//
// route-convergence: -P lanes, each a subscriber on one host and a publisher
// on another (see --placement); a lane subscribes to a fresh topic and, as soon
// as the SUBACK arrives, publishes one message to it on the other host. The
// time from SUBACK to delivery is the route's convergence; a message that does
// not arrive within --probe-timeout is a miss.

#include "bench/loadgen/run_support.hpp"

namespace ringmq::bench {

int run_failover(shared_state& s);
int run_route_convergence(shared_state& s);

}  // namespace ringmq::bench
