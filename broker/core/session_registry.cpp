#include "broker/core/session_registry.hpp"

#include "broker/core/journal.hpp"

namespace ringmq::core {

session_registry::session_registry(const session_limits& limits, journal* journal,
                                   const receive_gate* gate)
    : limits_(limits), journal_(journal), gate_(gate) {}

void session_registry::end_locked(session& s) {
  if (s.end() && journal_) journal_->erase_session({s.client_id(), s.serial()});
}

std::shared_ptr<session> session_registry::restore(recovered_session&& r, time_point now) {
  std::shared_ptr<session> replaced;
  std::shared_ptr<outbox> connection;
  return restore(std::move(r), now, replaced, connection);
}

std::shared_ptr<session> session_registry::restore(recovered_session&& r, time_point now,
                                                   std::shared_ptr<session>& replaced,
                                                   std::shared_ptr<outbox>& connection) {
  auto s = std::make_shared<session>(r.client_id, limits_, journal_, gate_);
  s->restore(std::move(r), now);
  std::lock_guard lock(mutex_);
  auto& slot = sessions_[s->client_id()];
  if (slot) {
    connection = slot->claim(0);
    replaced = std::move(slot);
  }
  slot = s;
  return s;
}

std::shared_ptr<session> session_registry::forget(const std::string& client_id,
                                                  std::shared_ptr<outbox>& connection) {
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(client_id);
  if (it == sessions_.end()) return nullptr;
  auto s = std::move(it->second);
  sessions_.erase(it);
  connection = s->claim(0);
  return s;
}

session_registry::open_result session_registry::open(const std::string& client_id,
                                                     bool clean_start,
                                                     std::uint64_t connection_id) {
  open_result result;
  std::lock_guard lock(mutex_);
  auto& slot = sessions_[client_id];
  if (slot && !clean_start) {
    result.present = true;
  } else {
    if (slot) {
      result.taken_over = slot->claim(0);
      end_locked(*slot);
      result.replaced = slot;
    }
    slot = std::make_shared<session>(client_id, limits_, journal_, gate_);
  }
  result.opened = slot;
  auto previous = slot->claim(connection_id);
  if (previous) result.taken_over = std::move(previous);
  return result;
}

bool session_registry::remove(const std::shared_ptr<session>& s) {
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(s->client_id());
  if (it == sessions_.end() || it->second != s) return false;
  sessions_.erase(it);
  end_locked(*s);
  return true;
}

session_registry::sweep_result session_registry::sweep(time_point now) {
  sweep_result result;
  std::lock_guard lock(mutex_);
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    auto& s = it->second;
    if (auto expiry = s->expires_at(); expiry && now >= *expiry && !s->online()) {
      end_locked(*s);
      result.expired.push_back(std::move(s));
      it = sessions_.erase(it);
      continue;
    }
    if (auto will = s->take_pending_will(now, false)) result.due_wills.push_back(std::move(will));
    ++it;
  }
  return result;
}

std::shared_ptr<session> session_registry::find(const std::string& client_id) const {
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(client_id);
  return it == sessions_.end() ? nullptr : it->second;
}

std::size_t session_registry::size() const {
  std::lock_guard lock(mutex_);
  return sessions_.size();
}

std::size_t session_registry::online_count() const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const auto& [id, s] : sessions_) n += s->online() ? 1 : 0;
  return n;
}

std::vector<std::shared_ptr<session>> session_registry::all() const {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<session>> out;
  out.reserve(sessions_.size());
  for (const auto& [id, s] : sessions_) out.push_back(s);
  return out;
}

}  // namespace ringmq::core
