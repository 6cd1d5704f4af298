#pragma once
// Every session of this node by client id. Opening a session for a CONNECT is
// one atomic step under the registry's lock (find or create, claim), so two
// connections racing with the same client id resolve to one winner and one
// takeover. Expiry and delayed wills are found here by a periodic sweep.

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker/core/session.hpp"

namespace ringmq::core {

class session_registry {
 public:
  // Sessions record their state in `journal` (null: nothing is durable) and
  // check queued messages at `gate` when they leave the queue.
  explicit session_registry(const session_limits& limits, journal* journal = nullptr,
                            const receive_gate* gate = nullptr);

  struct open_result {
    std::shared_ptr<core::session> opened;
    bool present = false;                      // an existing session was resumed
    std::shared_ptr<outbox> taken_over;        // connection that held it: close it (0x8E)
    std::shared_ptr<core::session> replaced;   // ended by clean start: unsubscribe, publish its will
  };

  // Finds or creates the session of `client_id` and claims it for connection
  // `connection_id`. With `clean_start` an existing session is ended and replaced.
  open_result open(const std::string& client_id, bool clean_start, std::uint64_t connection_id);

  // Removes `s` if it is still the registered session of its client id.
  // Returns true when it was removed.
  bool remove(const std::shared_ptr<session>& s);

  struct sweep_result {
    std::vector<std::shared_ptr<session>> expired;  // removed: unsubscribe, publish pending will
    std::vector<message_ptr> due_wills;             // delayed wills whose time has come
  };
  sweep_result sweep(time_point now);

  // Adds a session recovered from the store (at start, before clients
  // connect), or from its replicated log: it replaces any session of the
  // client id, returned in `replaced` with the connection that held it.
  std::shared_ptr<session> restore(recovered_session&& r, time_point now);
  std::shared_ptr<session> restore(recovered_session&& r, time_point now,
                                   std::shared_ptr<session>& replaced,
                                   std::shared_ptr<outbox>& connection);

  // Lets go of the session of `client_id` without ending it (its records are
  // not erased: another node serves it now). Returns it, with the connection
  // that held it in `connection`; null when there is none.
  std::shared_ptr<session> forget(const std::string& client_id,
                                  std::shared_ptr<outbox>& connection);

  std::shared_ptr<session> find(const std::string& client_id) const;
  std::size_t size() const;
  std::size_t online_count() const;
  // A snapshot of every session, in no particular order.
  std::vector<std::shared_ptr<session>> all() const;

 private:
  // Ends `s` and erases its records, under the registry's lock so that a new
  // session with the same client id cannot write in between.
  void end_locked(session& s);

  session_limits limits_;
  journal* journal_;
  const receive_gate* gate_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<session>> sessions_;
};

}  // namespace ringmq::core
