// Replicated persistent sessions (cluster.replicate_sessions) with real
// processes: a session's acknowledged messages outlive the node that held it,
// and a node that cannot reach a quorum of a session's replicas refuses to
// serve it rather than serve a second copy.

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "cluster/ring.hpp"
#include "tests/cluster/cluster_client.hpp"
#include "tests/cluster/ledger_client.hpp"

namespace ringmq::testing {
namespace {

using qos = codec::qos;

std::vector<std::string> replicated(int factor) {
  return {"cluster.replicate_sessions=true",
          "cluster.replication_factor=" + std::to_string(factor)};
}

codec::properties expiry(std::uint32_t seconds) {
  codec::properties p;
  p.session_expiry_interval = seconds;
  return p;
}

TEST(ReplicatedSessions, AnOfflineSessionAndItsAcknowledgedQueueOutliveItsNode) {
  test_cluster c(3, replicated(3));
  ASSERT_TRUE(c.started()) << c.describe();
  {
    cluster_client dev;
    ASSERT_TRUE(dev.connect(c.node(1), "dev", codec::protocol_version::v5, false, expiry(600)))
        << dev.error();
    ASSERT_EQ(dev.subscribe("q/#", qos::at_least_once),
              (std::vector<codec::reason_code>{codec::reason_code::granted_qos_1}));
    dev.close();
  }
  cluster_client pub;
  ASSERT_TRUE(pub.connect(c.node(1), "pub")) << pub.error();
  constexpr int messages = 20;
  for (int i = 0; i < messages; ++i) {
    ASSERT_EQ(pub.publish("q/" + std::to_string(i), "m" + std::to_string(i)),
              codec::reason_code::success)
        << "acknowledged only once the queued copy is on a write quorum";
  }
  c.node(1).kill();
  ASSERT_TRUE(c.node(2).wait_for_log("peer dead: node=n1", milliseconds(10'000)))
      << c.node(2).describe();

  cluster_client back;
  ASSERT_TRUE(back.connect(c.node(2), "dev", codec::protocol_version::v5, false, expiry(600)))
      << back.error() << "\n" << c.describe();
  EXPECT_TRUE(back.connack().session_present) << "its session survived its node";
  for (int i = 0; i < messages; ++i) {
    auto got = back.receive(milliseconds(5'000));
    ASSERT_TRUE(got) << "message " << i << " of " << messages << " is missing\n" << c.describe();
    EXPECT_EQ(got->payload, "m" + std::to_string(i)) << "in the order they were published";
  }
  EXPECT_FALSE(back.receive(milliseconds(300))) << "nothing twice";

  // Its subscription is served where the session is now, once n3 knows
  // (until then a QoS 1 message matching n1's routes is failed back).
  ASSERT_TRUE(c.node(3).wait_for_log("took over the sessions of n1", milliseconds(10'000)))
      << c.describe();
  cluster_client pub3;
  ASSERT_TRUE(pub3.connect(c.node(3), "pub3")) << pub3.error();
  ASSERT_EQ(pub3.publish("q/after", "after the failover"), codec::reason_code::success);
  auto after = back.receive(milliseconds(5'000));
  ASSERT_TRUE(after) << c.describe();
  EXPECT_EQ(after->payload, "after the failover");
}

// Between the death of a session's owner and the arrival of the routes its
// new owner announces, a message for the session must not be acknowledged as
// if nobody wanted it: it is queued to the session or failed back (0x97).
// The node that takes the session over is held (SIGSTOP) while the
// publisher's node has already found the owner dead, which opens that window
// for as long as the test needs.
TEST(ReplicatedSessions, AMessageForASessionWhoseOwnerJustDiedIsQueuedOrFailedNeverLost) {
  // The taker is held from when n1 is suspected to when it is found dead:
  // a long suspect timeout keeps the held node itself from looking dead.
  auto settings = replicated(3);
  settings.insert(settings.end(), {"cluster.suspect_timeout_ms=1200", "cluster.dead_timeout_ms=2000"});
  test_cluster c(3, settings);
  ASSERT_TRUE(c.started()) << c.describe();
  // The session's replicas in order (its preference list): the first live
  // one after n1 takes it over; the publisher is on the other.
  const auto order = cluster::ring({{"n1"}, {"n2"}, {"n3"}}).preference_list("orphan", 3);
  std::vector<int> survivors;
  for (const auto& id : order) {
    if (id != "n1") survivors.push_back(id == "n2" ? 2 : 3);
  }
  ASSERT_EQ(survivors.size(), 2u);
  auto& taker = c.node(survivors[0]);
  auto& publisher_node = c.node(survivors[1]);
  {
    cluster_client dev;
    ASSERT_TRUE(dev.connect(c.node(1), "orphan", codec::protocol_version::v5, false, expiry(600)))
        << dev.error();
    ASSERT_FALSE(dev.subscribe("w/#", qos::at_least_once).empty());
    dev.close();
  }
  cluster_client pub;
  ASSERT_TRUE(pub.connect(publisher_node, "pub", codec::protocol_version::v5)) << pub.error();

  c.node(1).kill();
  ASSERT_TRUE(publisher_node.wait_for_log("peer suspect: node=n1", milliseconds(10'000)))
      << c.describe();
  taker.pause();  // shorter than the suspect timeout after this: not found dead itself
  const bool found_dead = publisher_node.wait_for_log("peer dead: node=n1", milliseconds(10'000));

  std::set<std::string> acknowledged;
  int failed = 0;
  const auto publish = [&](int i) {
    const auto id = std::to_string(i);
    const auto code = pub.publish("w/" + id, id);
    ASSERT_TRUE(code) << "message " << id << " was neither acknowledged nor refused";
    // Below 0x80 the message is accepted (0x10: nobody subscribed to it).
    if (static_cast<int>(*code) < 0x80) {
      acknowledged.insert(id);
    } else {
      ASSERT_EQ(*code, codec::reason_code::quota_exceeded) << "message " << id;
      ++failed;
    }
  };
  // n1 is dead here, its session not yet taken over.
  for (int i = 0; i < 20 && found_dead; ++i) publish(i);
  taker.resume();
  ASSERT_TRUE(found_dead) << c.describe();
  ASSERT_EQ(publisher_node.log().find("peer dead: node=" + taker.id()), std::string::npos)
      << "the held node was found dead too\n"
      << c.describe();
  EXPECT_GT(failed, 0) << "while nobody served the session, its messages were failed back";

  // The taker tells the publisher's node once the session's routes are there.
  ASSERT_TRUE(publisher_node.wait_for_log("took over the sessions of n1", milliseconds(10'000)))
      << c.describe();
  // Served again: what is refused now is sent again, as a publisher does,
  // and taken (a loaded machine may still refuse a few while the new owner
  // settles in).
  for (int i = 20; i < 40; ++i) {
    const auto before = acknowledged.size();
    for (int attempt = 0; attempt < 50 && acknowledged.size() == before; ++attempt) {
      if (attempt) std::this_thread::sleep_for(milliseconds(100));
      publish(i);
    }
  }
  EXPECT_EQ(acknowledged.size(), 20u) << "served again\n" << c.describe();

  cluster_client back;
  ASSERT_TRUE(back.connect(publisher_node, "orphan", codec::protocol_version::v5, false,
                           expiry(600)))
      << back.error() << "\n" << c.describe();
  EXPECT_TRUE(back.connack().session_present);
  std::set<std::string> missing = acknowledged;
  while (!missing.empty()) {
    auto got = back.receive(milliseconds(5'000));
    if (!got) break;
    missing.erase(got->payload);
  }
  EXPECT_TRUE(missing.empty()) << missing.size() << " of " << acknowledged.size()
                               << " acknowledged messages were lost (first: " << *missing.begin()
                               << ")\n"
                               << c.describe();
}

codec::will_message will_of(const std::string& client, std::uint32_t delay_s) {
  codec::will_message w;
  w.topic = "wills/" + client;
  w.payload = client + " is gone";
  w.qos = qos::at_least_once;
  w.props.will_delay_interval = delay_s;
  return w;
}

// Every will that arrives at `watcher` within `wait`, counted by payload.
std::map<std::string, int> wills_seen(cluster_client& watcher, milliseconds wait) {
  std::map<std::string, int> seen;
  const auto deadline = steady::now() + wait;
  while (steady::now() < deadline) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - steady::now());
    auto got = watcher.receive(left);
    if (!got) break;
    ++seen[got->payload];
  }
  return seen;
}

// The will of a client whose node dies is kept with its session: the node
// that takes the session over sends it after the will delay, once in the
// whole cluster; a client that reconnects in time cancels it.
TEST(ReplicatedSessions, TheWillOfAClientWhoseNodeDiedIsSentOnceUnlessItIsBackInTime) {
  test_cluster c(3, replicated(3));
  ASSERT_TRUE(c.started()) << c.describe();
  cluster_client watchers[2];
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(watchers[i].connect(c.node(2 + i), "watcher-" + std::to_string(i)))
        << watchers[i].error();
    ASSERT_FALSE(watchers[i].subscribe("wills/#", qos::at_least_once).empty());
  }
  cluster_client lost, back_in_time;
  ASSERT_TRUE(lost.connect(c.node(1), "lost", codec::protocol_version::v5, false, expiry(600),
                           will_of("lost", 1)))
      << lost.error();
  ASSERT_TRUE(back_in_time.connect(c.node(1), "returns", codec::protocol_version::v5, false,
                                   expiry(600), will_of("returns", 30)))
      << back_in_time.error();

  c.node(1).kill();
  ASSERT_TRUE(c.node(2).wait_for_log("peer dead: node=n1", milliseconds(10'000)))
      << c.describe();
  cluster_client returned;
  ASSERT_TRUE(returned.connect(c.node(3), "returns", codec::protocol_version::v5, false,
                               expiry(600)))
      << returned.error() << "\n" << c.describe();
  EXPECT_TRUE(returned.connack().session_present);

  // Each watcher receives the will of "lost" once: one node sent it.
  for (auto& w : watchers) {
    auto first = w.receive(milliseconds(10'000));
    ASSERT_TRUE(first) << "the will of a client whose node died was not sent\n" << c.describe();
    EXPECT_EQ(first->payload, "lost is gone");
  }
  // Longer than the detection of the death, the takeover and the delay
  // again: a second node sending it would have done so by now.
  for (auto& w : watchers) {
    const auto more = wills_seen(w, milliseconds(3'000));
    EXPECT_TRUE(more.empty()) << "sent again or the cancelled one sent: "
                              << (more.empty() ? "" : more.begin()->first) << "\n"
                              << c.describe();
  }
}

TEST(ReplicatedSessions, ASessionMovesToTheNodeItsClientConnectsTo) {
  test_cluster c(3, replicated(2));
  ASSERT_TRUE(c.started()) << c.describe();
  cluster_client first;
  ASSERT_TRUE(first.connect(c.node(1), "mover", codec::protocol_version::v5, false, expiry(600)))
      << first.error();
  ASSERT_FALSE(first.subscribe("m/#", qos::at_least_once).empty());

  cluster_client second;
  ASSERT_TRUE(second.connect(c.node(3), "mover", codec::protocol_version::v5, false, expiry(600)))
      << second.error();
  EXPECT_TRUE(second.connack().session_present) << "the session came with its client";
  const auto closed = first.wait_closed(milliseconds(5'000));
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->code, codec::reason_code::session_taken_over);
  // The new owner tells the node that served the session before, after the
  // routes of its subscriptions: from then on that node routes to the new one.
  ASSERT_TRUE(c.node(1).wait_for_log("session mover is served by another node now",
                                     milliseconds(5'000)))
      << c.describe();

  cluster_client pub;
  ASSERT_TRUE(pub.connect(c.node(1), "pub-m")) << pub.error();
  ASSERT_EQ(pub.publish("m/1", "follows the session"), codec::reason_code::success)
      << c.describe();
  auto got = second.receive(milliseconds(5'000));
  ASSERT_TRUE(got) << c.describe();
  EXPECT_EQ(got->payload, "follows the session");
}

TEST(ReplicatedSessions, WithoutAQuorumOfItsReplicasASessionIsNotServed) {
  test_cluster c(3, replicated(3));
  ASSERT_TRUE(c.started()) << c.describe();
  c.node(2).kill();
  c.node(3).kill();
  ASSERT_TRUE(c.node(1).wait_for_log_count("peer dead: node=", 2, milliseconds(10'000)))
      << c.node(1).describe();

  cluster_client v5;
  EXPECT_FALSE(v5.connect(c.node(1), "alone", codec::protocol_version::v5, false, expiry(600)));
  EXPECT_EQ(v5.connack().code, codec::reason_code::server_unavailable) << v5.error();
  cluster_client v311;
  EXPECT_FALSE(v311.connect(c.node(1), "alone-311", codec::protocol_version::v3_1_1, false));
  EXPECT_EQ(v311.connack().code, codec::reason_code::server_unavailable)
      << "3.1.1 return code 3: " << v311.error();

  cluster_client clean;
  EXPECT_TRUE(clean.connect(c.node(1), "no-session")) << "a session that ends with its "
                                                         "connection needs no replicas: "
                                                      << clean.error();
}

}  // namespace
}  // namespace ringmq::testing

namespace ringmq::testing {
namespace {

// A session taken over by its first live replica after its node died queues
// what is published meanwhile there; its client then connects to another
// node, which takes the session, queue and all, from the replicas.
TEST(ReplicatedSessions, ATakenOverSessionMovesOnWithWhatItQueuedMeanwhile) {
  test_cluster c(3, replicated(3));
  ASSERT_TRUE(c.started()) << c.describe();
  const auto order = cluster::ring({{"n1"}, {"n2"}, {"n3"}}).preference_list("wanderer", 3);
  std::vector<int> survivors;
  for (const auto& id : order) {
    if (id != "n1") survivors.push_back(id == "n2" ? 2 : 3);
  }
  auto& taker = c.node(survivors[0]);
  auto& other = c.node(survivors[1]);
  for (const auto version : {codec::protocol_version::v5, codec::protocol_version::v3_1_1}) {
    cluster_client dev;
    const auto id = std::string("wanderer") + (version == codec::protocol_version::v5 ? "" : "-311");
    ASSERT_TRUE(dev.connect(c.node(1), id, version, false, expiry(600))) << dev.error();
    ASSERT_FALSE(dev.subscribe("t/#", qos::exactly_once).empty());
    dev.close();
  }
  c.node(1).kill();
  ASSERT_TRUE(other.wait_for_log("took over the sessions of n1", milliseconds(10'000)))
      << c.describe();
  cluster_client pub;
  ASSERT_TRUE(pub.connect(other, "pub-t")) << pub.error();
  constexpr int messages = 40;
  for (int i = 0; i < messages; ++i) {
    ASSERT_EQ(pub.publish("t/" + std::to_string(i), "m" + std::to_string(i), qos::exactly_once),
              codec::reason_code::success)
        << c.describe();
  }
  // One comes back where its session was taken over, one elsewhere.
  for (const auto version : {codec::protocol_version::v5, codec::protocol_version::v3_1_1}) {
    const auto id = std::string("wanderer") + (version == codec::protocol_version::v5 ? "" : "-311");
    cluster_client back;
    auto& node = version == codec::protocol_version::v5 ? taker : other;
    ASSERT_TRUE(back.connect(node, id, version, false, expiry(600))) << back.error();
    EXPECT_TRUE(back.connack().session_present) << id;
    for (int i = 0; i < messages; ++i) {
      auto got = back.receive(milliseconds(5'000));
      ASSERT_TRUE(got) << id << ": message " << i << " is missing\n" << c.describe();
      EXPECT_EQ(got->payload, "m" + std::to_string(i));
    }
  }
}

}  // namespace
}  // namespace ringmq::testing

namespace ringmq::testing {
namespace {

// A QoS 2 delivery under way when the subscriber's node dies (the PUBLISH
// received and not answered, a second one answered with PUBREC) is
// completed where the session is served next: the first PUBLISH again with
// DUP and its packet id, the PUBREL of the second, then what was queued.
TEST(ReplicatedSessions, AQos2DeliveryUnderWayWhenItsNodeDiesIsCompletedOnTheNextNode) {
  test_cluster c(3, replicated(3));
  ASSERT_TRUE(c.started()) << c.describe();
  mqtt_socket sub;
  c.node(1).aim(sub);
  sub.set_version(codec::protocol_version::v5);
  ASSERT_TRUE(sub.connect_tcp(c.node(1).mqtt_port()));
  codec::connect_packet connect;
  connect.version = codec::protocol_version::v5;
  connect.client_id = "midway";
  connect.clean_start = false;
  connect.props.session_expiry_interval = 600;
  ASSERT_TRUE(sub.handshake(connect, milliseconds(5'000)));
  codec::subscribe_packet s;
  s.packet_id = 1;
  codec::subscribe_options o;
  o.max_qos = qos::exactly_once;
  s.subscriptions.push_back({"mid/#", o});
  ASSERT_TRUE(sub.send(codec::packet{s}));
  codec::packet p;
  ASSERT_EQ(sub.receive(p, milliseconds(5'000)), mqtt_socket::read_result::packet);
  ASSERT_TRUE(std::holds_alternative<codec::suback_packet>(p));

  cluster_client pub;
  ASSERT_TRUE(pub.connect(c.node(2), "pub-mid")) << pub.error();
  std::uint16_t answered = 0, unanswered = 0;
  for (const char* payload : {"answered", "unanswered"}) {
    ASSERT_EQ(pub.publish("mid/x", payload, qos::exactly_once), codec::reason_code::success);
    ASSERT_EQ(sub.receive(p, milliseconds(5'000)), mqtt_socket::read_result::packet);
    const auto* got = std::get_if<codec::publish_packet>(&p);
    ASSERT_TRUE(got);
    ASSERT_EQ(got->payload, payload);
    if (std::string(payload) == "answered") {
      answered = got->packet_id;
      codec::pubrec_packet rec;
      rec.packet_id = answered;
      ASSERT_TRUE(sub.send(codec::packet{rec}));
      ASSERT_EQ(sub.receive(p, milliseconds(5'000)), mqtt_socket::read_result::packet);
      ASSERT_TRUE(std::holds_alternative<codec::pubrel_packet>(p)) << "PUBREL once PUBREC is kept";
    } else {
      unanswered = got->packet_id;
    }
  }
  c.node(1).kill();
  sub.close();
  // Refused while the session moves, then queued for it.
  ledger_client later("pub-mid-2", codec::protocol_version::v5);
  std::vector<cluster_member*> survivors{&c.node(2), &c.node(3)};
  ASSERT_TRUE(later.connect(c.node(2))) << later.error();
  ASSERT_TRUE(later.publish("mid/x", "queued", qos::exactly_once, survivors,
                            steady::now() + std::chrono::seconds(20)))
      << later.error() << "\n" << c.describe();

  mqtt_socket back;
  c.node(3).aim(back);
  back.set_version(codec::protocol_version::v5);
  ASSERT_TRUE(back.connect_tcp(c.node(3).mqtt_port()));
  auto ack = back.handshake(connect, milliseconds(10'000));
  ASSERT_TRUE(ack) << back.error() << "\n" << c.describe();
  EXPECT_TRUE(ack->session_present);
  bool resent = false, released = false, queued = false;
  const auto deadline = steady::now() + std::chrono::seconds(10);
  while (!(resent && released && queued) && steady::now() < deadline) {
    if (back.receive(p, milliseconds(500)) != mqtt_socket::read_result::packet) continue;
    if (const auto* pub2 = std::get_if<codec::publish_packet>(&p)) {
      if (pub2->payload == "unanswered") {
        EXPECT_EQ(pub2->packet_id, unanswered) << "resent under its packet id";
        EXPECT_TRUE(pub2->dup);
        resent = true;
      } else if (pub2->payload == "queued") {
        queued = true;
      } else {
        ADD_FAILURE() << "sent again: " << pub2->payload;
      }
      codec::pubrec_packet rec;
      rec.packet_id = pub2->packet_id;
      back.send(codec::packet{rec});
    } else if (const auto* rel = std::get_if<codec::pubrel_packet>(&p)) {
      if (rel->packet_id == answered) released = true;
      codec::pubcomp_packet comp;
      comp.packet_id = rel->packet_id;
      back.send(codec::packet{comp});
    }
  }
  EXPECT_TRUE(resent) << "the unanswered PUBLISH was not sent again\n" << c.describe();
  EXPECT_TRUE(released) << "the PUBREL of the answered one was not sent again";
  EXPECT_TRUE(queued) << "what was queued meanwhile was not delivered\n" << c.describe();
}

}  // namespace
}  // namespace ringmq::testing

namespace ringmq::testing {
namespace {

// A node whose store holds persistent sessions from before sessions were
// replicated keeps serving them as before (in its store, on this node) once
// replication is on: their acknowledgements do not wait for logs they have
// none of.
TEST(ReplicatedSessions, SessionsFromBeforeReplicationStayOnTheirNode) {
  test_cluster c(1, {"cluster.replicate_sessions=false"});
  ASSERT_TRUE(c.started()) << c.describe();
  {
    cluster_client dev;
    ASSERT_TRUE(dev.connect(c.node(1), "older", codec::protocol_version::v5, false, expiry(600)))
        << dev.error();
    ASSERT_FALSE(dev.subscribe("o/#", qos::at_least_once).empty());
    dev.close();
  }
  ASSERT_TRUE(c.node(1).stop());
  c.node(1).add_override("cluster.replicate_sessions=true");
  ASSERT_TRUE(c.node(1).start()) << c.node(1).describe();
  ASSERT_TRUE(c.node(1).wait_for_log("from before sessions were replicated stay on this node"))
      << c.node(1).describe();
  cluster_client pub;
  ASSERT_TRUE(pub.connect(c.node(1), "pub-o")) << pub.error();
  ASSERT_EQ(pub.publish("o/1", "kept as before"), codec::reason_code::success) << c.describe();
  cluster_client back;
  ASSERT_TRUE(back.connect(c.node(1), "older", codec::protocol_version::v5, false, expiry(600)))
      << back.error();
  EXPECT_TRUE(back.connack().session_present);
  auto got = back.receive(milliseconds(5'000));
  ASSERT_TRUE(got) << c.describe();
  EXPECT_EQ(got->payload, "kept as before");
}

}  // namespace
}  // namespace ringmq::testing

namespace ringmq::testing {
namespace {

// A CONNECT that keeps no session, on another node than the one that served
// the client's persistent session, still follows MQTT: clean start 0 resumes
// that session (then ends it with the connection, expiry 0), clean start 1
// discards it. Either way it is gone everywhere afterwards.
TEST(ReplicatedSessions, AConnectWithoutExpiryResumesOrEndsTheReplicatedSession) {
  test_cluster c(3, replicated(3));
  ASSERT_TRUE(c.started()) << c.describe();
  const auto persistent_with_queued = [&](const std::string& id) {
    {
      cluster_client dev;
      ASSERT_TRUE(dev.connect(c.node(1), id, codec::protocol_version::v5, false, expiry(600)))
          << dev.error();
      ASSERT_FALSE(dev.subscribe(id + "/#", qos::at_least_once).empty());
      dev.close();
    }
    cluster_client pub;
    ASSERT_TRUE(pub.connect(c.node(1), "pub-" + id)) << pub.error();
    ASSERT_EQ(pub.publish(id + "/x", "queued for " + id), codec::reason_code::success);
  };

  persistent_with_queued("resumer");
  {
    cluster_client back;  // 5.0, clean start 0, no expiry: resumes, ends with the connection
    ASSERT_TRUE(back.connect(c.node(2), "resumer", codec::protocol_version::v5, false))
        << back.error() << "\n" << c.describe();
    EXPECT_TRUE(back.connack().session_present) << "the session kept on n1's replicas";
    auto got = back.receive(milliseconds(5'000));
    ASSERT_TRUE(got) << c.describe();
    EXPECT_EQ(got->payload, "queued for resumer");
    back.close();
  }
  persistent_with_queued("discarder");
  {
    cluster_client clean;  // 3.1.1 clean session: discards it
    ASSERT_TRUE(clean.connect(c.node(2), "discarder", codec::protocol_version::v3_1_1, true))
        << clean.error();
    EXPECT_FALSE(clean.connack().session_present);
    EXPECT_FALSE(clean.receive(milliseconds(300))) << "nothing of the discarded session";
    clean.close();
  }
  for (const std::string id : {"resumer", "discarder"}) {
    cluster_client later;
    ASSERT_TRUE(later.connect(c.node(3), id, codec::protocol_version::v5, false, expiry(600)))
        << later.error();
    EXPECT_FALSE(later.connack().session_present) << id << "'s session ended everywhere";
  }
}

// Duplicate detection of QoS 2 across a takeover on another node: the
// publisher's PUBLISH was received (PUBREC) on n1, its client lost the PUBREC
// and moved to n2, where it sends the PUBLISH again with DUP set, as a client
// must. The new owner knows the packet id from the session's log: the
// message is delivered once, and the PUBREL completes it.
TEST(ReplicatedSessions, AQos2PublishSentAgainAfterATakeoverOnAnotherNodeIsDeliveredOnce) {
  test_cluster c(3, replicated(3));
  ASSERT_TRUE(c.started()) << c.describe();
  cluster_client sub;
  ASSERT_TRUE(sub.connect(c.node(3), "dedup-sub")) << sub.error();
  ASSERT_FALSE(sub.subscribe("dedup/#", qos::exactly_once).empty());

  codec::publish_packet p;
  p.topic = "dedup/x";
  p.payload = "exactly once";
  p.qos = qos::exactly_once;
  p.packet_id = 7;
  {
    cluster_client first;
    ASSERT_TRUE(first.connect(c.node(1), "dedup-pub", codec::protocol_version::v5, false, expiry(600)))
        << first.error();
    ASSERT_TRUE(first.socket().send(codec::packet{p}));
    bool recorded = false;
    while (!recorded) {
      codec::packet in;
      ASSERT_EQ(first.socket().receive(in, milliseconds(10'000)), mqtt_socket::read_result::packet);
      if (const auto* rec = std::get_if<codec::pubrec_packet>(&in)) {
        ASSERT_EQ(rec->packet_id, 7);
        ASSERT_EQ(rec->code, codec::reason_code::success);
        recorded = true;
      }
    }
    // The PUBREC "is lost": the client moves on without sending PUBREL.
  }
  auto got = sub.receive(milliseconds(5'000));
  ASSERT_TRUE(got) << c.describe();
  EXPECT_EQ(got->payload, "exactly once");

  cluster_client second;
  ASSERT_TRUE(second.connect(c.node(2), "dedup-pub", codec::protocol_version::v5, false, expiry(600)))
      << second.error();
  ASSERT_TRUE(second.connack().session_present);
  p.dup = true;
  ASSERT_TRUE(second.socket().send(codec::packet{p}));
  for (bool completed = false; !completed;) {
    codec::packet in;
    ASSERT_EQ(second.socket().receive(in, milliseconds(10'000)), mqtt_socket::read_result::packet)
        << c.describe();
    if (const auto* rec = std::get_if<codec::pubrec_packet>(&in)) {
      ASSERT_EQ(rec->packet_id, 7);
      EXPECT_EQ(rec->code, codec::reason_code::success);
      codec::pubrel_packet rel;
      rel.packet_id = 7;
      ASSERT_TRUE(second.socket().send(codec::packet{rel}));
    }
    completed = std::holds_alternative<codec::pubcomp_packet>(in);
  }
  // A message after it shows that nothing else came in between.
  cluster_client marker;
  ASSERT_TRUE(marker.connect(c.node(1), "dedup-marker")) << marker.error();
  ASSERT_EQ(marker.publish("dedup/marker", "after", qos::exactly_once), codec::reason_code::success);
  auto next = sub.receive(milliseconds(5'000));
  ASSERT_TRUE(next) << c.describe();
  EXPECT_EQ(next->payload, "after") << "the resend after the takeover was delivered again";
}

}  // namespace
}  // namespace ringmq::testing
