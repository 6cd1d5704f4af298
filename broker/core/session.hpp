#pragma once
// A client's session: what outlives a network connection (MQTT 5.0 section
// 4.1). Its subscriptions, the outbound messages in flight and queued behind
// them, the inbound QoS 2 packet ids awaiting PUBREL, and a will waiting out
// its delay. The rules of QoS 1/2 delivery live here and nowhere else.
//
// A session is a monitor: every public method takes its mutex. Publishers on
// any worker deliver into it directly; the connection it is attached to (one
// at a time) drains the encoded packets from its outbox. Never call into the
// router or the registry while holding a session's lock (lock order: router
// stripe -> session -> outbox).

#include <atomic>
#include <boost/container/devector.hpp>
#include <boost/unordered/unordered_flat_map.hpp>
#include <boost/unordered/unordered_flat_set.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "broker/codec/packets.hpp"
#include "broker/core/ack_sequencer.hpp"
#include "broker/core/auth.hpp"
#include "broker/core/dedup_window.hpp"
#include "broker/core/message.hpp"
#include "broker/core/outbox.hpp"
#include "broker/core/session_types.hpp"

namespace ringmq::core {

// What the broker allows every session (from the configuration).
struct session_limits {
  std::uint16_t max_inflight = 20;
  std::uint32_t max_queued_messages = 1000;
  bool queue_qos0_offline = false;
};

// What the client asked for in CONNECT (5.0 properties; defaults for 3.x).
struct peer_limits {
  std::uint16_t receive_maximum = 65535;
  std::uint32_t maximum_packet_size = 0;  // 0 = no limit beyond the protocol's
};

class journal;
class receive_gate;
struct recovered_session;

class session {
 public:
  // With a journal, the session records its durable state whenever its
  // Session Expiry Interval is above 0 (a persistent session).
  // With a gate, a queued message is checked again when it leaves the queue.
  session(std::string client_id, const session_limits& limits, journal* journal = nullptr,
          const receive_gate* gate = nullptr);
  ~session();

  const std::string& client_id() const noexcept { return client_id_; }
  // This object's place among every session object made in this process
  // (later ones are higher): a keeper refuses changes of a session object
  // older than the copy it last loaded (session_keeper::append).
  std::uint64_t serial() const noexcept { return serial_; }

  // --- connection lifecycle -------------------------------------------------
  // Reserves the session for connection `connection_id` (under the registry's
  // lock, so two racing CONNECTs cannot both win). Returns the outbox of the
  // connection that held it, which the caller closes (takeover).
  std::shared_ptr<outbox> claim(std::uint64_t connection_id);
  // Attaches the claiming connection once its CONNACK is queued: resends every
  // unacknowledged message with DUP set, then fills the window from the queue.
  // False when another connection claimed the session in between.
  bool attach(std::uint64_t connection_id, std::shared_ptr<outbox> out, const peer_limits& peer,
              time_point now);
  // Detaches connection `connection_id` (no-op if another holds the session).
  // Messages of shared subscriptions that are queued, or QoS 1 and not yet
  // acknowledged, are removed and returned, so the router can give them to
  // another member.
  std::vector<outgoing> detach(std::uint64_t connection_id, time_point now);
  bool online() const noexcept { return online_.load(std::memory_order_relaxed); }
  // Closes the attached connection from any thread (admin kick, takeover from
  // another node): 5.0 clients get DISCONNECT `code`; `why` is for the log.
  // With `connection`, only if that connection holds the session. False when
  // no (such) connection is attached.
  bool disconnect(codec::reason_code code,
                  const std::string& why = "disconnected by an administrator",
                  std::uint64_t connection = 0);
  std::uint64_t owner() const;

  // Session Expiry Interval in seconds; 0 ends the session with the connection.
  void set_expiry_interval(std::uint32_t seconds);
  std::uint32_t expiry_interval() const;
  // When an offline session expires; nullopt while online or never.
  std::optional<time_point> expires_at() const;

  // Marks the session as ended (replaced by clean start, expired or removed).
  // Returns true when the store holds records of it (the caller erases them:
  // after end() no more are written).
  bool end();
  bool ended() const noexcept { return ended_.load(std::memory_order_relaxed); }

  // --- will with delay ---------------------------------------------------------
  void set_pending_will(message_ptr will, time_point due);
  // The pending will if it is due (or `force`), removing it.
  message_ptr take_pending_will(time_point now, bool force);
  std::optional<time_point> pending_will_due() const;
  // The will of the connection now open, kept with the session (journaled
  // sessions) so that it is sent if this node dies before the connection
  // closes; disarm_will() when the connection ends or a new one has none.
  void arm_will(const message& will, std::uint32_t delay_s);
  void disarm_will();

  // --- outbound ----------------------------------------------------------------
  // Delivers one message: sent now, queued, or dropped (counted). Any thread.
  void deliver(outgoing&& m, time_point now);
  void on_puback(std::uint16_t packet_id, time_point now);
  void on_pubrec(std::uint16_t packet_id, codec::reason_code code, time_point now);
  void on_pubcomp(std::uint16_t packet_id, time_point now);

  // --- inbound QoS 2 -----------------------------------------------------------
  struct inbound_begin {
    bool added = false;         // false: already awaiting PUBREL (a retransmission)
    std::uint64_t number = 0;   // the message's number (numbered sessions), new or as before
  };
  // Records the packet id until PUBREL. With `numbered`, a new one gets the
  // next number of this publisher (docs/cluster.md, "Exactly once"), and a
  // retransmission answers the number it had: it is routed again under it.
  inbound_begin begin_inbound_qos2(std::uint16_t packet_id, bool numbered = false);
  // True when this session's QoS 2 messages are numbered: its records are
  // kept by a session keeper (replicated), so the copies a message makes in
  // other sessions are not written together with its packet id.
  bool numbers_qos2() const;
  // Everything written so far for this session: to wait for it (nothing to
  // wait for when it is not journaled).
  written sync_point();
  // The number of the QoS 2 message awaiting PUBREL under `packet_id` (0: none).
  std::uint64_t inbound_number(std::uint16_t packet_id) const;
  // False when the id was not awaiting PUBREL.
  bool release_inbound_qos2(std::uint16_t packet_id);
  std::size_t inbound_qos2_count() const;

  // --- subscriptions -------------------------------------------------------------
  enum class add_result { added, replaced, limit_reached };
  // Adds or replaces; a new filter beyond `limit` subscriptions (0 = none) is refused.
  add_result add_subscription(const std::string& filter, const stored_subscription& sub,
                              std::size_t limit = 0);
  bool remove_subscription(const std::string& filter);
  std::map<std::string, stored_subscription> subscriptions() const;
  std::size_t subscription_count() const;
  // Removes and returns every subscription (session end).
  std::map<std::string, stored_subscription> take_subscriptions();

  // --- who -------------------------------------------------------------------------
  // The identity of the connection that last attached (user name for ACLs).
  void set_identity(std::shared_ptr<const client_identity> who);
  // Null until a connection attached since the node started.
  std::shared_ptr<const client_identity> identity() const {
    return identity_.load(std::memory_order_acquire);
  }

  // --- durability ------------------------------------------------------------------
  // Rebuilds an offline session from the store at start.
  void restore(recovered_session&& r, time_point now);
  // True when this session's state is written to the store.
  bool persistent() const;

  // --- views -----------------------------------------------------------------------
  std::size_t inflight_count() const;
  std::size_t queued_count() const;

 private:
  using stage = inflight_stage;
  struct inflight {
    outgoing m;
    std::uint16_t packet_id = 0;
    stage at = stage::awaiting_puback;
    std::uint64_t order = 0;  // its key in the store; increasing in send order
  };
  struct queued {
    outgoing m;
    std::uint64_t order = 0;
  };

  std::size_t window() const noexcept;
  std::uint16_t next_packet_id();
  // Encodes and sends; false when it is larger than the client accepts (counted
  // as a drop). A closing connection still counts as sent (resent on resume).
  // With `after`, the packet waits in held_ until that write is durable.
  bool transmit(const outgoing& m, std::uint16_t packet_id, bool dup, time_point now,
                const written& after = {});
  void fill_window(time_point now);
  void enqueue(outgoing&& m);
  // Puts a message in flight (after transmit), recording it when persistent;
  // returns where the record stands (nothing pending: not recorded).
  written add_inflight(outgoing&& m, std::uint16_t packet_id,
                       std::optional<std::uint64_t> queued_as);
  // Sends a QoS 1/2 message with a new packet id and puts it in flight; false
  // when it is too large for the client (dropped).
  bool send_new(outgoing&& m, std::uint16_t packet_id, std::optional<std::uint64_t> queued_as,
                time_point now);
  bool journaled() const noexcept { return journal_ && expiry_interval_ > 0; }
  // True when QoS 2 packets of this session wait for the store (see held_).
  bool holds_qos2() const noexcept { return out_ && journaled() && !ended(); }
  // The sequencer of held packets for the attached connection, made on first
  // use. While a write fails (full disk), held packets wait for it: they
  // cannot be refused.
  ack_sequencer& held();
  // Writes the session record (expiry, last disconnect, user name).
  void save_record(std::int64_t disconnected_at_ms);
  // devector, not deque: it allocates nothing until used, and most sessions
  // have nothing in flight or queued (memory per idle client).
  using inflight_list = boost::container::devector<inflight>;
  inflight_list::iterator find_inflight(std::uint16_t packet_id, stage at);

  const std::string client_id_;
  const std::uint64_t serial_;
  session_key key() const noexcept { return {client_id_, serial_}; }
  const session_limits limits_;
  journal* const journal_;
  const receive_gate* const gate_;

  mutable std::mutex mutex_;
  std::shared_ptr<outbox> out_;
  // A persistent session's QoS 2 PUBLISH and PUBREL packets leave, in order,
  // only once the store keeps the state they announce. A receiver remembers a
  // QoS 2 packet id from PUBLISH to PUBREL and forgets it at PUBREL; if a
  // crash lost what the broker had said, the restarted broker would send
  // the message again under a packet id the client no longer (or still) holds:
  // delivered twice, or taken for a resend of another message and lost.
  std::shared_ptr<ack_sequencer> held_;
  peer_limits peer_;
  std::uint64_t owner_ = 0;
  std::atomic<bool> online_{false};
  std::atomic<bool> ended_{false};
  std::uint32_t expiry_interval_ = 0;
  std::optional<time_point> disconnected_at_;

  inflight_list inflight_;
  boost::container::devector<queued> queue_;
  std::uint64_t next_order_ = 1;
  bool ever_journaled_ = false;  // the store holds records of this session
  std::uint16_t last_packet_id_ = 0;
  boost::unordered_flat_set<std::uint16_t> inbound_qos2_;
  // Numbered QoS 2 messages, made on first use (most sessions never have one).
  struct numbered_state {
    std::uint64_t counter = 0;  // as publisher: the last number given
    boost::unordered_flat_map<std::uint16_t, std::uint64_t> numbers;  // packet id -> number
    struct taken_from {
      dedup_window window;
      std::uint64_t used = 0;  // for evicting the publisher heard from longest ago
    };
    std::unordered_map<std::string, taken_from> taken;  // as subscriber, by publisher
    std::uint64_t uses = 0;
  };
  // Publishers whose numbered messages a session remembers: beyond this, the
  // one heard from longest ago is forgotten (its resends would be taken again).
  static constexpr std::size_t max_numbered_publishers = 1024;
  numbered_state& numbered();
  // False when `m` is a numbered message this session took before; else
  // remembers it and sets `record` to what must be journaled after the copy.
  bool take_numbered(const message& m, const dedup_window*& record);
  void deliver_locked(outgoing&& m, time_point now);
  std::unique_ptr<numbered_state> numbered_;
  // While deliver() hands a numbered message on: what the journal writes
  // with its copy.
  const dedup_note* taking_ = nullptr;
  // Numbers taken whose copies were not kept (the write failed, perhaps
  // while this node handed the session over): taken back before the next
  // delivery, so that a resend is not dropped as a duplicate of a copy that
  // is nowhere. Filled from any thread, hence its own lock.
  struct lost_takes {
    std::atomic<bool> any{false};  // read on every numbered delivery, without the lock
    std::mutex mutex;
    std::vector<std::tuple<std::string, std::uint64_t, std::uint16_t>> takes;
  };
  std::shared_ptr<lost_takes> lost_takes_ = std::make_shared<lost_takes>();
  const dedup_note::lost_handler note_lost_ =
      [lost = lost_takes_](const std::string& publisher, std::uint64_t number, std::uint16_t id) {
        std::lock_guard lock(lost->mutex);
        lost->takes.emplace_back(publisher, number, id);
        lost->any.store(true, std::memory_order_release);
      };
  void take_back_lost_locked();
  std::map<std::string, stored_subscription> subscriptions_;

  std::atomic<std::shared_ptr<const client_identity>> identity_;
  message_ptr pending_will_;
  time_point pending_will_due_{};
  bool will_armed_ = false;  // the store holds an armed will of this session
};

}  // namespace ringmq::core
