#pragma once
// What the broker writes to its durable store, and reads back at start. The
// journal turns core changes (a message queued for an offline session, a
// PUBACK, a subscription, a retained message) into keyed Protobuf records and
// appends them to the store in the order they happen. Only persistent sessions
// (Session Expiry Interval > 0) are journaled; messages for the others never
// touch the disk.
//
// Every append made by a thread while it handles one packet raises that
// thread's commit watermark; the acknowledgement of the packet waits until the
// store says everything up to the watermark is durable (see ack_sequencer).

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "broker/core/dedup_window.hpp"
#include "broker/core/message.hpp"
#include "broker/core/retained_index.hpp"
#include "broker/core/session_keeper.hpp"
#include "broker/core/session_types.hpp"
#include "storage/store.hpp"

namespace ringmq::core {

// The highest store sequence this thread appended since the last take.
storage::commit_seq take_commit_watermark() noexcept;
// Raises the calling thread's watermark (appends made on behalf of a packet).
void raise_commit_watermark(storage::commit_seq seq) noexcept;
// The same for changes handed to a session keeper: the wait for every one
// this thread handed over since the last take (null: none).
std::shared_ptr<keeper_wait> take_keeper_wait() noexcept;
// The calling thread's wait, made when there is none: what else the packet
// being handled must wait for (a peer settling a message forwarded to it)
// is added to it.
std::shared_ptr<keeper_wait> thread_keeper_wait();

// Wall-clock conversions for what must survive a restart.
std::int64_t to_unix_ms(time_point t) noexcept;
time_point from_unix_ms(std::int64_t ms) noexcept;
std::int64_t unix_now_ms() noexcept;

struct recovered_inflight {
  std::uint64_t order = 0;
  std::uint16_t packet_id = 0;
  inflight_stage stage = inflight_stage::awaiting_puback;
  outgoing delivery;
};

struct recovered_queued {
  std::uint64_t order = 0;
  outgoing delivery;
};

struct recovered_session {
  std::string client_id;
  std::uint32_t expiry_interval = 0;
  std::int64_t disconnected_at_ms = 0;  // 0: it was connected when the node stopped
  std::optional<std::string> username;  // of the connection that last held it
  std::vector<std::pair<std::string, stored_subscription>> subscriptions;
  std::vector<recovered_queued> queue;
  std::vector<recovered_inflight> inflight;
  std::vector<std::uint16_t> inbound_qos2;
  // Numbered QoS 2 messages (replicated sessions): the numbers of the packet
  // ids above that have one, the publisher's last number, and what the
  // session took from each publisher (dedup_window.hpp).
  std::vector<std::pair<std::uint16_t, std::uint64_t>> inbound_numbers;
  std::uint64_t publish_counter = 0;
  std::vector<std::pair<std::string, dedup_window>> taken;
  message_ptr will;
  std::int64_t will_due_ms = 0;
  // The will of the connection that was open (WillRecord.armed): due this
  // long after that connection is found gone.
  std::optional<std::uint32_t> will_armed_delay_s;
};

// A retained message, or a tombstone (empty payload), with its version.
struct recovered_retained {
  message_ptr msg;
  retained_version version;
};

struct recovered_state {
  std::vector<recovered_session> sessions;
  std::vector<recovered_retained> retained;
};

class journal {
 public:
  explicit journal(storage::store& store) : store_(store) {}

  // From now on, the changes of the sessions `keeper` keeps go to it instead
  // of the store (set before connections start; null: none).
  void set_keeper(session_keeper* keeper) noexcept { keeper_ = keeper; }
  session_keeper* keeper() const noexcept { return keeper_; }

  storage::store& store() noexcept { return store_; }
  bool writable() const { return store_.writable(); }

  void save_session(const session_key& client, std::uint32_t expiry_interval,
                    std::int64_t disconnected_at_ms,
                    const std::optional<std::string>& username = std::nullopt);
  // Removes every record of the session (it ended).
  void erase_session(const session_key& client);

  void save_subscription(const session_key& client, const std::string& filter,
                         const stored_subscription& sub);
  void erase_subscription(const session_key& client, const std::string& filter);

  void queue_put(const session_key& client, std::uint64_t order, const outgoing& m,
                 const dedup_note* taken = nullptr);
  void queue_erase(const session_key& client, std::uint64_t order);
  // A queued message goes in flight: one change, so a crash sees it in exactly one place.
  // These two say where their write stands (to wait for it).
  written queue_to_inflight(const session_key& client, std::uint64_t queue_order,
                            std::uint64_t inflight_order, std::uint16_t packet_id,
                            inflight_stage stage, const outgoing& m);
  written inflight_put(const session_key& client, std::uint64_t order, std::uint16_t packet_id,
                       inflight_stage stage, const outgoing* m,
                       const dedup_note* taken = nullptr);
  // Everything written so far for `client`: to wait for it.
  written sync_point(const session_key& client);
  void inflight_erase(const session_key& client, std::uint64_t order);

  // `number` (0: none): the message's number in the publisher's sequence,
  // which is also written as the publisher's counter.
  void inbound_put(const session_key& client, std::uint16_t packet_id, std::uint64_t number = 0);
  void inbound_erase(const session_key& client, std::uint16_t packet_id);

  // What `client` took of `publisher`'s numbered messages; erased when the
  // session forgets that publisher.
  void dedup_put(const session_key& client, const std::string& publisher, const dedup_window& w);
  static void dedup_put(storage::write_batch& b, const std::string& client,
                        const std::string& publisher, const dedup_window& w);
  void dedup_erase(const session_key& client, const std::string& publisher);

  void will_put(const session_key& client, const message& will, time_point due);
  // The will of the open connection, so that it outlives this node.
  void will_arm(const session_key& client, const message& will, std::uint32_t delay_s);
  void will_erase(const session_key& client);

  void retained_put(const message& m, const retained_version& v);
  // A cleared retained message is remembered by its version (see retained_index.hpp).
  void retained_tombstone(const std::string& topic, const retained_version& v);
  void retained_erase(const std::string& topic);

  // Reads everything back (at start, before listeners open).
  std::error_code load(recovered_state& out, time_point now);

 private:
  storage::commit_seq append(storage::write_batch&& batch);
  // A change of one session: to the keeper when it keeps the session.
  written append(const session_key& client, storage::write_batch&& batch);
  // Tells `taken` (if any) when the change `w` that wrote it was not kept.
  static written note_lost(written w, const dedup_note* taken);

  storage::store& store_;
  session_keeper* keeper_ = nullptr;
};

}  // namespace ringmq::core
