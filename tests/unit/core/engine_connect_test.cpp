// CONNECT and the life of a connection: protocol levels, client identifiers,
// CONNACK, session present, takeover, the CONNECT deadline, Keep Alive, decode
// errors, packets a client may not send, and session expiry. Statement numbers
// are MQTT 5.0's unless marked 3.1.1.

#include <gtest/gtest.h>

#include "tests/unit/core/engine_harness.hpp"

namespace ringmq::core {
namespace {

using namespace harness;

// --- protocol levels -----------------------------------------------------------------------------

TEST(EngineConnect, AcceptsEveryProtocolLevel) {
  for (const auto v : {v3_1, v3_1_1, v5}) {
    SCOPED_TRACE(codec::to_string(v));
    bench b;
    auto& c = b.add(v);
    const auto ack = c.connect("client-1");
    EXPECT_EQ(ack.code, reason_code::success);  // [MQTT-3.1.4-5]; 3.1.1 [MQTT-3.1.4-4]
    EXPECT_FALSE(ack.session_present);
    EXPECT_TRUE(c.engine().connected());
    EXPECT_EQ(c.engine().version(), v);
    EXPECT_EQ(c.out().version(), v);
    EXPECT_FALSE(c.closing());
    c.expect_nothing();
  }
}

TEST(EngineConnect, V5ConnackAnnouncesDefaults) {
  bench b;
  auto& c = b.add(v5);
  const auto ack = c.connect("client-1");
  EXPECT_EQ(ack.props.receive_maximum, std::optional<std::uint16_t>(20));
  EXPECT_EQ(ack.props.topic_alias_maximum, std::optional<std::uint16_t>(64));
  // Defaults a client assumes when the property is absent: all supported.
  EXPECT_FALSE(ack.props.retain_available);
  EXPECT_FALSE(ack.props.maximum_qos);
  EXPECT_FALSE(ack.props.maximum_packet_size);
  EXPECT_FALSE(ack.props.assigned_client_identifier);
  EXPECT_FALSE(ack.props.server_keep_alive);
  EXPECT_FALSE(ack.props.session_expiry_interval);
  EXPECT_FALSE(ack.props.response_information);
  EXPECT_FALSE(ack.props.reason_string);
  // [MQTT-4.12.0-6]: no Authentication Method when the client gave none.
  EXPECT_FALSE(ack.props.authentication_method);
}

TEST(EngineConnect, FirstPacketOtherThanConnectClosesWithoutReply) {
  // [MQTT-3.1.0-1]; [MQTT-3.14.0-1]: no DISCONNECT before a CONNACK.
  for (const auto v : {v3_1_1, v5}) {
    bench b;
    auto& c = b.add(v);
    c.send(codec::pingreq_packet{});
    EXPECT_TRUE(c.closing());
    EXPECT_FALSE(c.engine().connected());
    c.expect_nothing();
  }
  bench b;
  auto& c = b.add(v5);
  c.publish("t", "x", qos::at_least_once, 1);
  EXPECT_TRUE(c.closing());
  c.expect_nothing();
}

TEST(EngineConnect, SecondConnectIsProtocolError) {
  // [MQTT-3.1.0-2], [MQTT-3.2.0-2]: one CONNACK per connection, a second CONNECT closes it.
  bench b;
  auto& c = b.connected("client-1", v5);
  c.send(c.connect_packet("client-1"));
  const auto d = c.expect<codec::disconnect_packet>();
  EXPECT_EQ(d.code, reason_code::protocol_error);
  EXPECT_TRUE(d.props.reason_string);
  EXPECT_TRUE(c.closing());
  c.expect_nothing();

  auto& old = b.connected("client-2", v3_1_1);
  old.send(old.connect_packet("client-2"));
  EXPECT_TRUE(old.closing());
  old.expect_nothing();  // 3.1.1 has no DISCONNECT from the server
}

TEST(EngineConnect, DataAfterRefusedConnectIsIgnored) {
  // [MQTT-3.1.4-6]; 3.1.1 [MQTT-3.1.4-5].
  broker_settings s;
  s.allow_zero_length_clientid = false;
  bench b(s);
  auto& watcher = b.connected("watcher");
  watcher.subscribe("t");
  auto& c = b.add(v5);
  c.send(c.connect_packet(""));
  c.publish("t", "x");
  c.send(codec::pingreq_packet{});
  const auto ack = c.expect<codec::connack_packet>();
  EXPECT_EQ(ack.code, reason_code::client_identifier_not_valid);
  EXPECT_FALSE(ack.session_present);  // [MQTT-3.2.2-6]
  c.expect_nothing();
  watcher.expect_nothing();
}

// --- client identifiers --------------------------------------------------------------------------

TEST(EngineConnect, EmptyClientIdRefusedInV31) {
  bench b;
  auto& c = b.add(v3_1);
  const auto ack = c.connect("");
  // Return code 2, Identifier rejected (decoded back as 0x85).
  EXPECT_EQ(ack.code, reason_code::client_identifier_not_valid);
  EXPECT_TRUE(c.closing());  // 3.1.1 [MQTT-3.2.2-5]
}

TEST(EngineConnect, EmptyClientIdWithoutCleanSessionRefusedInV311) {
  // 3.1.1 [MQTT-3.1.3-8]: return code 0x02 and close.
  bench b;
  auto& c = b.add(v3_1_1);
  const auto ack = c.connect("", false);
  EXPECT_EQ(ack.code, reason_code::client_identifier_not_valid);
  EXPECT_FALSE(ack.session_present);
  EXPECT_TRUE(c.closing());
  c.expect_nothing();
}

TEST(EngineConnect, EmptyClientIdGetsUniqueAssignedIdentifierInV311) {
  // 3.1.1 [MQTT-3.1.3-6]: the server assigns a unique id (not told to a 3.1.1 client).
  bench b;
  auto& c1 = b.add(v3_1_1);
  auto& c2 = b.add(v3_1_1);
  EXPECT_EQ(c1.connect("").code, reason_code::success);
  EXPECT_EQ(c2.connect("").code, reason_code::success);
  const auto& id1 = c1.engine().identity().client_id;
  const auto& id2 = c2.engine().identity().client_id;
  EXPECT_FALSE(id1.empty());
  EXPECT_NE(id1, id2);
  EXPECT_EQ(b.broker().sessions().size(), 2u);
}

TEST(EngineConnect, EmptyClientIdGetsAssignedClientIdentifierInV5) {
  // [MQTT-3.1.3-6], [MQTT-3.1.3-7], [MQTT-3.2.2-16].
  bench b;
  auto& c1 = b.add(v5);
  auto& c2 = b.add(v5);
  const auto a1 = c1.connect("");
  const auto a2 = c2.connect("", false);  // 5.0 allows it with Clean Start 0 too
  ASSERT_EQ(a1.code, reason_code::success);
  ASSERT_EQ(a2.code, reason_code::success);
  ASSERT_TRUE(a1.props.assigned_client_identifier);
  ASSERT_TRUE(a2.props.assigned_client_identifier);
  EXPECT_EQ(*a1.props.assigned_client_identifier, c1.engine().identity().client_id);
  EXPECT_NE(*a1.props.assigned_client_identifier, *a2.props.assigned_client_identifier);
  EXPECT_FALSE(a2.session_present);
  EXPECT_TRUE(b.broker().sessions().find(*a1.props.assigned_client_identifier));
}

TEST(EngineConnect, EmptyClientIdRefusedWhenNotAllowed) {
  broker_settings s;
  s.allow_zero_length_clientid = false;
  bench b(s);
  auto& c5 = b.add(v5);
  const auto a5 = c5.connect("");
  EXPECT_EQ(a5.code, reason_code::client_identifier_not_valid);  // [MQTT-3.1.3-8]
  EXPECT_TRUE(a5.props.reason_string);
  EXPECT_TRUE(c5.closing());  // [MQTT-3.2.2-7]
  auto& c3 = b.add(v3_1_1);
  EXPECT_EQ(c3.connect("").code, reason_code::client_identifier_not_valid);  // return code 2
  EXPECT_TRUE(c3.closing());
  EXPECT_EQ(b.broker().sessions().size(), 0u);
}

TEST(EngineConnect, ClientIdLongerThanTheLimitRefused) {
  broker_settings s;
  s.max_client_id_length = 8;
  bench b(s);
  auto& ok = b.add(v5);
  EXPECT_EQ(ok.connect("12345678").code, reason_code::success);
  auto& long5 = b.add(v5);
  EXPECT_EQ(long5.connect("123456789").code, reason_code::client_identifier_not_valid);
  EXPECT_TRUE(long5.closing());
  auto& long3 = b.add(v3_1_1);
  EXPECT_EQ(long3.connect("123456789").code, reason_code::client_identifier_not_valid);
}

TEST(EngineConnect, AcceptsTheClientIdsEveryServerMust) {
  // [MQTT-3.1.3-5]: 1 to 23 bytes of [0-9a-zA-Z] are always allowed.
  bench b;
  auto& c = b.add(v3_1_1);
  EXPECT_EQ(c.connect("0123456789abcdefghijABC").code, reason_code::success);
}

// --- authentication ------------------------------------------------------------------------------

class deny_all final : public authenticator {
 public:
  explicit deny_all(reason_code code) : code_(code) {}
  reason_code authenticate(const client_identity& who,
                           const std::optional<std::string>& password) override {
    last_user = who.username;
    last_password = password;
    return code_;
  }
  std::optional<std::string> last_user;
  std::optional<std::string> last_password;

 private:
  reason_code code_;
};

TEST(EngineConnect, AuthenticatorRefusalIsCarriedToConnack) {
  // [MQTT-3.1.4-2]: a failed check closes the connection after a CONNACK >= 0x80.
  bench b;
  deny_all deny(reason_code::bad_user_name_or_password);
  b.broker().set_auth(&deny, nullptr);
  auto& c5 = b.add(v5);
  auto p = c5.connect_packet("client-1");
  p.username = "user";
  p.password = "secret";
  const auto a5 = c5.connect(std::move(p));
  EXPECT_EQ(a5.code, reason_code::bad_user_name_or_password);
  EXPECT_EQ(deny.last_user, std::optional<std::string>("user"));
  EXPECT_EQ(deny.last_password, std::optional<std::string>("secret"));
  EXPECT_TRUE(c5.closing());
  auto& c3 = b.add(v3_1_1);
  EXPECT_EQ(c3.connect("client-2").code, reason_code::bad_user_name_or_password);  // rc 4
  EXPECT_EQ(b.broker().sessions().size(), 0u);
  b.broker().set_auth(nullptr, nullptr);
}

TEST(EngineConnect, AuthenticationMethodRefusedWithBadAuthenticationMethod) {
  // [MQTT-4.12.0-1]: an unsupported method gets 0x8C and the connection is closed.
  bench b;
  auto& c = b.add(v5);
  codec::properties props;
  props.authentication_method = "SCRAM-SHA-1";
  const auto ack = c.connect("client-1", true, props);
  EXPECT_EQ(ack.code, reason_code::bad_authentication_method);
  EXPECT_FALSE(ack.session_present);
  EXPECT_TRUE(c.closing());
  c.expect_nothing();
  EXPECT_FALSE(b.broker().sessions().find("client-1"));
}

TEST(EngineConnect, AuthPacketWithoutMethodIsProtocolError) {
  // [MQTT-4.12.0-7] binds the client; the server answers with 0x82 and never sends AUTH.
  bench b;
  auto& c = b.connected("client-1");
  codec::auth_packet a;
  a.code = reason_code::continue_authentication;
  a.props.authentication_method = "x";
  c.send(std::move(a));
  EXPECT_EQ(c.expect<codec::disconnect_packet>().code, reason_code::protocol_error);
  EXPECT_TRUE(c.closing());
}

TEST(EngineConnect, PacketsOnlyAServerSendsAreProtocolErrors) {
  const std::vector<codec::packet> server_only = {
      codec::connack_packet{}, codec::suback_packet{1, {reason_code::success}, {}},
      codec::unsuback_packet{1, {reason_code::success}, {}}, codec::pingresp_packet{}};
  for (const auto& p : server_only) {
    SCOPED_TRACE(describe(p));
    bench b;
    auto& c = b.connected("client-1");
    c.send(p);
    EXPECT_EQ(c.expect<codec::disconnect_packet>().code, reason_code::protocol_error);
    EXPECT_TRUE(c.closing());
  }
}

TEST(EngineConnect, PingreqGetsPingresp) {
  // [MQTT-3.12.4-1].
  for (const auto v : {v3_1, v3_1_1, v5}) {
    bench b;
    auto& c = b.connected("client-1", v);
    c.send(codec::pingreq_packet{});
    c.expect<codec::pingresp_packet>();
    c.expect_nothing();
  }
}

// --- CONNACK properties --------------------------------------------------------------------------

TEST(EngineConnect, ConnackAnnouncesConfiguredLimits) {
  broker_settings s;
  s.receive_maximum = 7;
  s.max_topic_alias = 5;
  s.max_packet_size = 1000;
  s.retain_available = false;
  bench b(s);
  auto& c = b.add(v5);
  const auto ack = c.connect("client-1");
  EXPECT_EQ(ack.props.receive_maximum, std::optional<std::uint16_t>(7));
  EXPECT_EQ(ack.props.topic_alias_maximum, std::optional<std::uint16_t>(5));
  EXPECT_EQ(ack.props.maximum_packet_size, std::optional<std::uint32_t>(1000));
  EXPECT_EQ(ack.props.retain_available, std::optional<std::uint8_t>(0));
}

TEST(EngineConnect, NoTopicAliasMaximumWhenAliasesAreOff) {
  broker_settings s;
  s.max_topic_alias = 0;
  bench b(s);
  auto& c = b.add(v5);
  EXPECT_FALSE(c.connect("client-1").props.topic_alias_maximum);
}

TEST(EngineConnect, ServerKeepAliveWhenMaxKeepaliveIsLower) {
  broker_settings s;
  s.max_keepalive = 30;
  bench b(s);
  auto& high = b.add(v5);
  const auto a1 = high.connect("c1", true, {}, 60);
  EXPECT_EQ(a1.props.server_keep_alive, std::optional<std::uint16_t>(30));
  EXPECT_EQ(high.engine().keep_alive(), 30);
  auto& zero = b.add(v5);
  const auto a2 = zero.connect("c2", true, {}, 0);
  EXPECT_EQ(a2.props.server_keep_alive, std::optional<std::uint16_t>(30));
  EXPECT_EQ(zero.engine().keep_alive(), 30);
  // [MQTT-3.2.2-22]: without Server Keep Alive the client's value is used.
  auto& low = b.add(v5);
  const auto a3 = low.connect("c3", true, {}, 10);
  EXPECT_FALSE(a3.props.server_keep_alive);
  EXPECT_EQ(low.engine().keep_alive(), 10);
}

TEST(EngineConnect, ServerKeepAliveIsEnforced) {
  // [MQTT-3.1.2-21] makes the client use it, so the server times out on it.
  broker_settings s;
  s.max_keepalive = 30;
  bench b(s);
  auto& c = b.add(v5);
  c.connect("c1", true, {}, 600);
  b.advance(44'999ms);
  c.tick();
  EXPECT_FALSE(c.closing());
  b.advance(1ms);
  c.tick();
  EXPECT_EQ(c.expect<codec::disconnect_packet>().code, reason_code::keep_alive_timeout);
}

TEST(EngineConnect, KeepAliveAboveMaximumRefusedInV311) {
  // 3.1.1 cannot be told another Keep Alive: refused with return code 2, as mosquitto does.
  broker_settings s;
  s.max_keepalive = 30;
  bench b(s);
  auto& c = b.add(v3_1_1);
  EXPECT_EQ(c.connect("c1", true, {}, 60).code, reason_code::client_identifier_not_valid);
  EXPECT_TRUE(c.closing());
  auto& ok = b.add(v3_1_1);
  EXPECT_EQ(ok.connect("c2", true, {}, 30).code, reason_code::success);
}

TEST(EngineConnect, SessionExpiryCappedByMaximum) {
  broker_settings s;
  s.max_session_expiry = 100;
  bench b(s);
  auto& c = b.add(v5);
  const auto a1 = c.connect_persistent("c1", 1000);
  EXPECT_EQ(a1.props.session_expiry_interval, std::optional<std::uint32_t>(100));
  EXPECT_EQ(c.current_session()->expiry_interval(), 100u);
  auto& d = b.add(v5);
  const auto a2 = d.connect_persistent("c2", 50);
  EXPECT_FALSE(a2.props.session_expiry_interval);  // granted as asked: not repeated
  EXPECT_EQ(d.current_session()->expiry_interval(), 50u);
}

TEST(EngineConnect, ResponseInformationOnlyWhenRequested) {
  bench b;
  auto& asked = b.add(v5);
  codec::properties props;
  props.request_response_information = 1;
  const auto a1 = asked.connect("c1", true, props);
  EXPECT_EQ(a1.props.response_information, std::optional<std::string>("response/c1"));
  // [MQTT-3.1.2-28]: 0 means no Response Information.
  auto& declined = b.add(v5);
  props.request_response_information = 0;
  EXPECT_FALSE(declined.connect("c2", true, props).props.response_information);
  auto& silent = b.add(v5);
  EXPECT_FALSE(silent.connect("c3").props.response_information);
}

TEST(EngineConnect, ReasonStringLeftOutWhenItWouldExceedTheClientsMaximumPacketSize) {
  // [MQTT-3.2.2-19], [MQTT-3.14.2-3], [MQTT-3.1.2-24].
  broker_settings s;
  s.allow_zero_length_clientid = false;
  bench b(s);
  codec::properties small;
  small.maximum_packet_size = 16;

  auto& refused = b.add(v5);
  const auto ack = refused.connect("", true, small);
  EXPECT_EQ(ack.code, reason_code::client_identifier_not_valid);
  EXPECT_FALSE(ack.props.reason_string);

  auto& c = b.add(v5);
  ASSERT_EQ(c.connect("c1", true, small).code, reason_code::success);
  c.send(c.connect_packet("c1"));
  const auto d = c.expect<codec::disconnect_packet>();
  EXPECT_EQ(d.code, reason_code::protocol_error);
  EXPECT_FALSE(d.props.reason_string);

  // With room for it, the reason is given.
  codec::properties roomy;
  roomy.maximum_packet_size = 1000;
  auto& r = b.add(v5);
  ASSERT_EQ(r.connect("c2", true, roomy).code, reason_code::success);
  r.send(r.connect_packet("c2"));
  EXPECT_TRUE(r.expect<codec::disconnect_packet>().props.reason_string);
}

// --- session present -----------------------------------------------------------------------------

TEST(EngineConnect, SessionPresentV311) {
  bench b;
  {
    auto& c = b.add(v3_1_1);
    EXPECT_FALSE(c.connect("c1", false).session_present);  // 3.1.1 [MQTT-3.2.2-3]
    c.subscribe("t", qos::at_least_once);
    c.lose();
  }
  {
    auto& c = b.add(v3_1_1);
    EXPECT_TRUE(c.connect("c1", false).session_present);  // 3.1.1 [MQTT-3.2.2-2]
    EXPECT_EQ(c.current_session()->subscription_count(), 1u);
    c.lose();
  }
  {
    auto& c = b.add(v3_1_1);
    const auto ack = c.connect("c1", true);  // 3.1.1 [MQTT-3.2.2-1], [MQTT-3.1.2-6]
    EXPECT_FALSE(ack.session_present);
    EXPECT_EQ(c.current_session()->subscription_count(), 0u);
    c.lose();
  }
  // The clean session ended with its connection.
  auto& c = b.add(v3_1_1);
  EXPECT_FALSE(c.connect("c1", false).session_present);
}

TEST(EngineConnect, SessionPresentV5) {
  bench b;
  {
    auto& c = b.add(v5);
    EXPECT_FALSE(c.connect_persistent("c1", 100).session_present);  // [MQTT-3.2.2-3]
    c.subscribe("t", qos::at_least_once);
    c.lose();
  }
  {
    auto& c = b.add(v5);
    const auto ack = c.connect_persistent("c1", 100);  // [MQTT-3.1.2-5]
    EXPECT_TRUE(ack.session_present);
    EXPECT_EQ(c.current_session()->subscription_count(), 1u);
    c.lose();
  }
  auto& watcher = b.connected("pub");
  auto& c = b.add(v5);
  const auto ack = c.connect_persistent("c1", 100, true);  // [MQTT-3.1.2-4], [MQTT-3.2.2-2]
  EXPECT_FALSE(ack.session_present);
  EXPECT_EQ(c.current_session()->subscription_count(), 0u);
  watcher.publish("t", "x", qos::at_least_once, 1);
  c.expect_nothing();  // the old subscription went with the old session
}

TEST(EngineConnect, NoSessionPresentFlagInV31) {
  // MQTT 3.1 has no Session Present flag: the byte is reserved.
  bench b;
  auto& first = b.add(v3_1);
  first.connect("c1", false);
  first.lose();
  auto& second = b.add(v3_1);
  EXPECT_FALSE(second.connect("c1", false).session_present);
  EXPECT_EQ(b.broker().sessions().size(), 1u);
}

// --- takeover ------------------------------------------------------------------------------------

TEST(EngineConnect, TakeoverV5SendsSessionTakenOverAndResumes) {
  // [MQTT-3.1.4-3]: the existing connection gets DISCONNECT 0x8E and is closed.
  bench b;
  auto& old = b.add(v5);
  old.connect("c1", false);  // Session Expiry 0: the session lives as long as a connection does
  old.subscribe("t", qos::at_least_once);
  auto& fresh = b.add(v5);
  const auto ack = fresh.connect("c1", false);
  EXPECT_EQ(ack.code, reason_code::success);
  EXPECT_TRUE(ack.session_present);
  EXPECT_EQ(old.expect<codec::disconnect_packet>().code, reason_code::session_taken_over);
  EXPECT_TRUE(old.closing());
  old.expect_nothing();
  // The old connection's end does not end the session the new one holds.
  old.lose();
  EXPECT_EQ(b.broker().sessions().find("c1"), fresh.current_session());
  auto& pub = b.connected("pub");
  pub.publish("t", "x", qos::at_least_once, 1);
  const auto got = fresh.publishes();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, "x");
  old.expect_nothing();
}

TEST(EngineConnect, TakeoverV311ClosesTheOldConnection) {
  // 3.1.1 [MQTT-3.1.4-2].
  bench b;
  auto& old = b.add(v3_1_1);
  old.connect("c1", false);
  old.subscribe("t", qos::at_least_once);
  auto& fresh = b.add(v3_1_1);
  EXPECT_TRUE(fresh.connect("c1", false).session_present);
  EXPECT_TRUE(old.closing());
  old.expect_nothing();
  old.lose();
  auto& pub = b.connected("pub", v3_1_1);
  pub.publish("t", "x", qos::at_least_once, 1);
  EXPECT_EQ(fresh.publishes().size(), 1u);
}

TEST(EngineConnect, TakeoverResendsWhatTheOldConnectionLeftUnacknowledged) {
  bench b;
  auto& old = b.persistent("c1");
  old.subscribe("t", qos::at_least_once);
  auto& pub = b.connected("pub");
  pub.publish("t", "x", qos::at_least_once, 1);
  const auto first = old.publishes();
  ASSERT_EQ(first.size(), 1u);
  auto& fresh = b.add(v5);
  EXPECT_TRUE(fresh.connect_persistent("c1", 3600).session_present);
  const auto again = fresh.publishes();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].packet_id, first[0].packet_id);
  EXPECT_TRUE(again[0].dup);
}

TEST(EngineConnect, TakeoverWithCleanStartEndsTheOldSession) {
  bench b;
  auto& old = b.persistent("c1");
  old.subscribe("t", qos::at_least_once);
  auto& fresh = b.add(v5);
  EXPECT_FALSE(fresh.connect_persistent("c1", 3600, true).session_present);
  EXPECT_EQ(old.expect<codec::disconnect_packet>().code, reason_code::session_taken_over);
  old.lose();
  EXPECT_EQ(b.broker().routes().subscription_count(), 0u);
  auto& pub = b.connected("pub");
  pub.publish("t", "x", qos::at_least_once, 1);
  fresh.expect_nothing();
}

// --- timers --------------------------------------------------------------------------------------

TEST(EngineConnect, ConnectMustArriveBeforeTheTimeout) {
  broker_settings s;
  s.connect_timeout = 5s;
  bench b(s);
  const auto start = b.clock.now;
  auto& c = b.add(v5);
  EXPECT_EQ(c.engine().next_deadline(), std::optional<time_point>(start + 5s));
  b.advance(4'999ms);
  c.tick();
  EXPECT_FALSE(c.closing());
  b.advance(1ms);
  c.tick();
  EXPECT_TRUE(c.closing());
  c.expect_nothing();  // nothing to say to a peer that never spoke MQTT
}

TEST(EngineConnect, ConnectInTimeStopsTheConnectTimer) {
  broker_settings s;
  s.connect_timeout = 5s;
  bench b(s);
  auto& c = b.add(v5);
  b.advance(1s);
  c.connect("c1");
  EXPECT_EQ(c.engine().next_deadline(), std::nullopt);  // Keep Alive 0
  b.advance(1h);
  c.tick();
  EXPECT_FALSE(c.closing());
}

TEST(EngineConnect, KeepAliveClosesAfterOneAndAHalfTimes) {
  // [MQTT-3.1.2-22]; 3.1.1 [MQTT-3.1.2-24].
  bench b;
  auto& c = b.add(v5);
  c.connect("c1", true, {}, 10);
  EXPECT_EQ(c.engine().next_deadline(), std::optional<time_point>(b.clock.now + 15s));
  b.advance(10s);
  c.send(codec::pingreq_packet{});  // any packet restarts the period
  c.expect<codec::pingresp_packet>();
  b.advance(14'999ms);
  c.tick();
  EXPECT_FALSE(c.closing());
  c.expect_nothing();
  b.advance(1ms);
  c.tick();
  const auto d = c.expect<codec::disconnect_packet>();
  EXPECT_EQ(d.code, reason_code::keep_alive_timeout);
  EXPECT_TRUE(c.closing());
  EXPECT_EQ(c.engine().close_reason(), "keep alive timeout");
}

TEST(EngineConnect, KeepAliveTimeoutIsAPlainCloseInV311) {
  bench b;
  auto& c = b.add(v3_1_1);
  c.connect("c1", true, {}, 2);
  b.advance(2'999ms);
  c.tick();
  EXPECT_FALSE(c.closing());
  b.advance(1ms);
  c.tick();
  EXPECT_TRUE(c.closing());
  c.expect_nothing();
}

TEST(EngineConnect, AnyPacketCountsForKeepAlive) {
  bench b;
  auto& c = b.add(v5);
  c.connect("c1", true, {}, 4);
  for (int i = 0; i < 10; ++i) {
    b.advance(5s);  // within 6 s of the previous packet every time
    c.publish("t", "x");
    c.tick();
    EXPECT_FALSE(c.closing());
  }
}

TEST(EngineConnect, KeepAliveZeroNeverTimesOut) {
  bench b;
  auto& c = b.add(v5);
  c.connect("c1", true, {}, 0);
  b.advance(24h * 30);
  c.tick();
  EXPECT_FALSE(c.closing());
  EXPECT_EQ(c.engine().next_deadline(), std::nullopt);
}

// --- decode errors -------------------------------------------------------------------------------

TEST(EngineConnect, DecodeErrorBeforeConnectV5GetsConnackWithTheCode) {
  // [MQTT-3.1.4-1] and section 4.13: CONNACK >= 0x80, then close.
  for (const auto code : {reason_code::malformed_packet, reason_code::protocol_error,
                          reason_code::packet_too_large}) {
    bench b;
    auto& c = b.add(v5);
    c.decode_error(code, v5);
    const auto ack = c.expect<codec::connack_packet>();
    EXPECT_EQ(ack.code, code);
    EXPECT_FALSE(ack.session_present);
    EXPECT_TRUE(c.closing());
    EXPECT_FALSE(c.engine().connected());
  }
}

TEST(EngineConnect, ConnackUsesOnlyConnectReasonCodes) {
  // [MQTT-3.2.2-8]: a code CONNACK does not define becomes 0x80 Unspecified error.
  bench b;
  auto& c = b.add(v5);
  c.decode_error(reason_code::topic_alias_invalid, v5);
  EXPECT_EQ(c.expect<codec::connack_packet>().code, reason_code::unspecified_error);
  EXPECT_TRUE(c.closing());
}

TEST(EngineConnect, DecodeErrorBeforeConnectV311ClosesWithoutReply) {
  // 3.1.1 [MQTT-3.1.4-1]; 3.1.1 [MQTT-3.2.2-6]: no return code fits a malformed CONNECT.
  bench b;
  auto& c = b.add(v3_1_1);
  c.decode_error(reason_code::malformed_packet, v3_1_1);
  EXPECT_TRUE(c.closing());
  c.expect_nothing();
}

TEST(EngineConnect, UnsupportedProtocolVersionIsAnswered) {
  // 3.1.1 [MQTT-3.1.2-2]: return code 0x01; [MQTT-3.1.2-2]: 5.0 may send 0x84.
  {
    bench b;
    auto& c = b.add(v3_1_1);
    c.decode_error(reason_code::unsupported_protocol_version, v3_1_1);
    EXPECT_EQ(c.expect<codec::connack_packet>().code, reason_code::unsupported_protocol_version);
    EXPECT_TRUE(c.closing());
  }
  {
    bench b;
    auto& c = b.add(v5);
    c.decode_error(reason_code::unsupported_protocol_version, v5);
    EXPECT_EQ(c.expect<codec::connack_packet>().code, reason_code::unsupported_protocol_version);
    EXPECT_TRUE(c.closing());
  }
}

TEST(EngineConnect, DecodeErrorAfterConnectV5GetsDisconnectWithTheCode) {
  // [MQTT-4.13.1-1].
  for (const auto code : {reason_code::malformed_packet, reason_code::protocol_error,
                          reason_code::packet_too_large, reason_code::topic_alias_invalid}) {
    bench b;
    auto& c = b.connected("c1", v5);
    c.decode_error(code, v5);
    EXPECT_EQ(c.expect<codec::disconnect_packet>().code, code);
    EXPECT_TRUE(c.closing());
    c.send(codec::pingreq_packet{});  // nothing more is read
    c.expect_nothing();
  }
}

TEST(EngineConnect, DecodeErrorAfterConnectV311IsAPlainClose) {
  // 3.1.1 [MQTT-4.8.0-1].
  bench b;
  auto& c = b.connected("c1", v3_1_1);
  c.decode_error(reason_code::malformed_packet, v3_1_1);
  EXPECT_TRUE(c.closing());
  c.expect_nothing();
}

TEST(EngineConnect, ServerShutdownTellsV5ClientsWhy) {
  bench b;
  auto& c5 = b.connected("c5", v5);
  c5.engine().shutdown(reason_code::server_shutting_down, "server shutting down");
  const auto d = c5.expect<codec::disconnect_packet>();
  EXPECT_EQ(d.code, reason_code::server_shutting_down);
  EXPECT_EQ(d.props.reason_string, std::optional<std::string>("server shutting down"));
  EXPECT_TRUE(c5.closing());
  auto& c3 = b.connected("c3", v3_1_1);
  c3.engine().shutdown(reason_code::server_shutting_down, "server shutting down");
  EXPECT_TRUE(c3.closing());
  c3.expect_nothing();
  // Before CONNACK there is nobody to tell ([MQTT-3.14.0-1]).
  auto& early = b.add(v5);
  early.engine().shutdown(reason_code::server_shutting_down, "server shutting down");
  EXPECT_TRUE(early.closing());
  early.expect_nothing();
}

TEST(EngineConnect, ANodeThatRefusesNewClientsSendsThemToAnotherServer) {
  bench b;
  auto& before = b.connected("before", v5);
  b.broker().refuse_new_clients("ringmq-2.example:1883");
  auto& c5 = b.add(v5);
  const auto ack5 = c5.connect("late-5");
  EXPECT_EQ(ack5.code, reason_code::use_another_server);
  EXPECT_EQ(ack5.props.server_reference, std::optional<std::string>("ringmq-2.example:1883"));
  EXPECT_TRUE(c5.closing());
  auto& c3 = b.add(v3_1_1);
  EXPECT_EQ(c3.connect("late-3").code, reason_code::server_unavailable);  // 3.x: return code 3
  EXPECT_TRUE(c3.closing());
  EXPECT_FALSE(before.closing()) << "clients already connected stay";
  b.broker().refuse_new_clients("another:1883");  // the first reference counts
  EXPECT_EQ(b.add(v5).connect("late").props.server_reference,
            std::optional<std::string>("ringmq-2.example:1883"));
}

TEST(EngineConnect, WithoutAServerReferenceTheRefusalHasNone) {
  bench b;
  b.broker().refuse_new_clients({});
  const auto ack = b.add(v5).connect("late");
  EXPECT_EQ(ack.code, reason_code::use_another_server);
  EXPECT_FALSE(ack.props.server_reference);
}

// --- DISCONNECT and session expiry ---------------------------------------------------------------

TEST(EngineConnect, ClientDisconnectClosesWithoutReply) {
  for (const auto v : {v3_1_1, v5}) {
    bench b;
    auto& c = b.connected("c1", v);
    c.disconnect();
    EXPECT_TRUE(c.closing());
    EXPECT_EQ(c.engine().close_reason(), "client disconnected");
    c.send(codec::pingreq_packet{});
    c.expect_nothing();
  }
}

TEST(EngineConnect, SessionExpiryZeroEndsTheSessionWithTheConnection) {
  bench b;
  auto& c = b.connected("c1", v5, false);
  c.subscribe("t", qos::at_least_once);
  c.lose();
  EXPECT_FALSE(b.broker().sessions().find("c1"));
  EXPECT_EQ(b.broker().routes().subscription_count(), 0u);
  auto& again = b.add(v5);
  EXPECT_FALSE(again.connect("c1", false).session_present);
}

TEST(EngineConnect, SessionKeptUntilItsExpiryInterval) {
  // [MQTT-3.1.2-23], [MQTT-4.1.0-2].
  bench b;
  {
    auto& c = b.persistent("c1", 10);
    c.subscribe("t", qos::at_least_once);
    c.lose();
  }
  b.advance(9'999ms);
  b.sweep();
  ASSERT_TRUE(b.broker().sessions().find("c1"));
  EXPECT_EQ(b.broker().routes().subscription_count(), 1u);
  b.advance(1ms);
  b.sweep();
  EXPECT_FALSE(b.broker().sessions().find("c1"));
  EXPECT_EQ(b.broker().routes().subscription_count(), 0u);
  auto& again = b.add(v5);
  EXPECT_FALSE(again.connect_persistent("c1", 10).session_present);
}

TEST(EngineConnect, OnlineSessionDoesNotExpire) {
  // [MQTT-4.1.0-1].
  bench b;
  auto& c = b.persistent("c1", 1);
  b.advance(1h);
  b.sweep();
  EXPECT_EQ(b.broker().sessions().find("c1"), c.current_session());
}

TEST(EngineConnect, V3PersistentSessionNeverExpires) {
  bench b;
  auto& c = b.add(v3_1_1);
  c.connect("c1", false);
  c.lose();
  b.advance(24h * 365 * 10);
  b.sweep();
  EXPECT_TRUE(b.broker().sessions().find("c1"));
}

TEST(EngineConnect, DisconnectMayChangeTheSessionExpiry) {
  bench b;
  {
    auto& c = b.persistent("shorter", 100);
    codec::properties props;
    props.session_expiry_interval = 0;
    c.disconnect(reason_code::success, props);
    EXPECT_TRUE(c.closing());
    c.expect_nothing();
    c.lose();
    EXPECT_FALSE(b.broker().sessions().find("shorter"));
  }
  {
    auto& c = b.persistent("longer", 10);
    codec::properties props;
    props.session_expiry_interval = 1000;
    c.disconnect(reason_code::success, props);
    c.lose();
    b.advance(500s);
    b.sweep();
    EXPECT_TRUE(b.broker().sessions().find("longer"));
    b.advance(500s);
    b.sweep();
    EXPECT_FALSE(b.broker().sessions().find("longer"));
  }
}

TEST(EngineConnect, DisconnectSettingExpiryAfterZeroIsProtocolError) {
  // Section 3.14.2.2.2.
  bench b;
  auto& c = b.connected("c1", v5, false);
  codec::properties props;
  props.session_expiry_interval = 60;
  c.disconnect(reason_code::success, props);
  EXPECT_EQ(c.expect<codec::disconnect_packet>().code, reason_code::protocol_error);
  EXPECT_TRUE(c.closing());
  c.lose();
  EXPECT_FALSE(b.broker().sessions().find("c1"));
}

TEST(EngineConnect, DisconnectExpiryAllowedWhenOnlyTheServerLoweredItToZero) {
  // The client asked for 100 and was granted 0: the rule looks at what CONNECT carried.
  broker_settings s;
  s.max_session_expiry = 0;
  bench b(s);
  auto& c = b.add(v5);
  EXPECT_EQ(c.connect_persistent("c1", 100).props.session_expiry_interval,
            std::optional<std::uint32_t>(0));
  codec::properties props;
  props.session_expiry_interval = 100;
  c.disconnect(reason_code::success, props);
  EXPECT_TRUE(c.closing());
  c.expect_nothing();
  c.lose();
  EXPECT_FALSE(b.broker().sessions().find("c1"));  // still capped to 0
}

TEST(EngineConnect, ConnectedClientsAreCounted) {
  bench b;
  auto& c1 = b.connected("c1");
  auto& c2 = b.connected("c2");
  EXPECT_EQ(b.broker().clients_connected(), 2u);
  c1.lose();
  c1.lose();  // idempotent
  EXPECT_EQ(b.broker().clients_connected(), 1u);
  EXPECT_EQ(b.broker().clients_maximum(), 2u);
  EXPECT_EQ(b.broker().clients_total(), 2u);
  c2.lose();
  EXPECT_EQ(b.broker().clients_connected(), 0u);
}

}  // namespace
}  // namespace ringmq::core
