#include "storage/rocksdb_store.hpp"

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/sst_file_manager.h>
#include <rocksdb/utilities/options_util.h>
#include <rocksdb/write_batch.h>

#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <mutex>
#include <thread>

#include "ringmq/storage/v1/records.pb.h"

namespace ringmq::storage {

namespace {

std::error_code to_error(const rocksdb::Status& s) {
  if (s.ok()) return {};
  if (s.IsNoSpace()) return storage_errc::no_space;
  if (s.subcode() == rocksdb::Status::kSpaceLimit) return storage_errc::over_limit;
  if (s.IsCorruption()) return storage_errc::corruption;
  if (s.IsBusy() || s.IsTryAgain()) return storage_errc::busy;
  if (s.IsInvalidArgument()) return storage_errc::invalid_argument;
  if (s.IsIOError() && s.subcode() == rocksdb::Status::kNoSpace) return storage_errc::no_space;
  return storage_errc::io_error;
}

// The smallest key greater than every key starting with `prefix`, or empty
// when there is none (a prefix of only 0xFF bytes).
std::string prefix_end(std::string prefix) {
  while (!prefix.empty()) {
    auto& last = prefix.back();
    if (static_cast<unsigned char>(last) != 0xFF) {
      ++last;
      return prefix;
    }
    prefix.pop_back();
  }
  return prefix;
}

// RocksDB's messages go to the node's log instead of a LOG file in the data
// directory. On a full disk a failed write to that file made the next one
// abort the process (an assertion in RocksDB's file writer, which Debian
// builds with assertions on): a full disk killed the broker instead of
// making it refuse new messages.
class forwarding_logger final : public rocksdb::Logger {
 public:
  explicit forwarding_logger(std::function<void(bool, std::string_view)> sink)
      : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL), sink_(std::move(sink)) {}

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (!sink_ || level < GetInfoLogLevel() || level == rocksdb::InfoLogLevel::HEADER_LEVEL) {
      return;
    }
    char buffer[1024];
    std::vsnprintf(buffer, sizeof buffer, format, ap);
    sink_(level >= rocksdb::InfoLogLevel::ERROR_LEVEL, buffer);
  }

 private:
  std::function<void(bool, std::string_view)> sink_;
};

// RocksDB's own recovery from a full disk waits until as much space is free
// as a memtable holds (64 MiB) and refuses DB::Resume() meanwhile, so on a
// smaller volume the store never became writable again. The committer resumes
// the database itself at every retry instead.
class resume_by_committer final : public rocksdb::EventListener {
 public:
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status,
                            bool* auto_recovery) override {
    *auto_recovery = false;
  }
};

class rocksdb_store final : public store {
 public:
  rocksdb_store(rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*> handles,
                std::shared_ptr<rocksdb::SstFileManager> files, const rocksdb_options& options)
      : db_(db), handles_(std::move(handles)), files_(std::move(files)), options_(options) {
    committer_ = std::thread([this] { commit_loop(); });
  }

  ~rocksdb_store() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    committer_.join();
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
    delete db_;
  }

  commit_seq append(write_batch&& batch) override {
    std::lock_guard lock(mutex_);
    const auto seq = ++appended_;
    pending_.push_back({seq, std::move(batch)});
    ++stats_.batches;
    // A batch inside an open group waits for the group's end: waking the
    // committer for it would only cost a context switch.
    if (seq < group_limit()) wake_.notify_one();
    return seq;
  }

  void when_durable(commit_seq seq, std::function<void(std::error_code)> done) override {
    {
      std::lock_guard lock(mutex_);
      if (seq > durable_) {
        waiters_.emplace(seq, std::move(done));
        return;
      }
    }
    done({});
  }

  commit_seq begin_group() override {
    std::lock_guard lock(mutex_);
    const auto first = appended_ + 1;
    open_groups_.insert(first);
    return first;
  }

  void end_group(commit_seq token) override {
    bool released = false;
    {
      std::lock_guard lock(mutex_);
      const auto it = open_groups_.find(token);
      if (it == open_groups_.end()) return;
      const auto before = group_limit();
      open_groups_.erase(it);
      // Wake the committer only when the end of this group lets a batch go:
      // most groups (a QoS 2 publish nobody persistent subscribes to) append
      // nothing, and every useless wake-up is a context switch per message.
      released = !pending_.empty() && pending_.front().first >= before &&
                 pending_.front().first < group_limit();
    }
    if (released) wake_.notify_one();
  }

  commit_seq last_appended() const override {
    std::lock_guard lock(mutex_);
    return appended_;
  }

  std::error_code flush() override {
    std::unique_lock lock(mutex_);
    const auto target = appended_;
    // completed_, not durable_: flush also waits for the callbacks of those batches.
    settled_.wait(lock, [&] { return completed_ >= target || stopping_ || last_error_; });
    if (completed_ >= target) return {};
    return last_error_ ? last_error_ : make_error_code(storage_errc::closed);
  }

  bool writable() const override { return writable_.load(std::memory_order_relaxed); }

  std::error_code scan(
      column c, std::string_view prefix,
      const std::function<bool(std::string_view, std::string_view)>& visit) override {
    rocksdb::ReadOptions read;
    read.verify_checksums = true;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, handle(c)));
    for (it->Seek(rocksdb::Slice(prefix.data(), prefix.size())); it->Valid(); it->Next()) {
      const auto key = it->key();
      const std::string_view k(key.data(), key.size());
      if (!k.starts_with(prefix)) break;
      const auto value = it->value();
      if (!visit(k, std::string_view(value.data(), value.size()))) break;
    }
    return to_error(it->status());
  }

  std::optional<std::string> get(column c, std::string_view key) override {
    std::string value;
    const auto s = db_->Get(rocksdb::ReadOptions(), handle(c),
                            rocksdb::Slice(key.data(), key.size()), &value);
    if (!s.ok()) return std::nullopt;
    return value;
  }

  void set_commit_observer(std::function<void(double)> observer) override {
    std::lock_guard lock(mutex_);
    observer_ = std::move(observer);
  }

  void set_failure_handler(std::function<void(std::error_code, std::string_view)> handler) override {
    std::lock_guard lock(mutex_);
    failure_handler_ = std::move(handler);
  }

  store_stats stats() const override {
    store_stats s;
    {
      std::lock_guard lock(mutex_);
      s = stats_;
    }
    s.writable = writable();
    std::uint64_t live = 0;
    for (auto* h : handles_) {
      std::uint64_t v = 0;
      if (db_->GetIntProperty(h, "rocksdb.live-sst-files-size", &v)) live += v;
      if (db_->GetIntProperty(h, "rocksdb.cur-size-all-mem-tables", &v)) live += v;
    }
    s.bytes_on_disk = live;
    return s;
  }

 private:
  rocksdb::ColumnFamilyHandle* handle(column c) const {
    return handles_[static_cast<std::size_t>(c)];
  }

  void add_to(rocksdb::WriteBatch& wb, const write_batch& batch) {
    for (const auto& op : batch.operations()) {
      auto* h = handle(op.col);
      switch (op.what) {
        case write_batch::operation::kind::put:
          wb.Put(h, op.key, op.value);
          break;
        case write_batch::operation::kind::erase:
          wb.Delete(h, op.key);
          break;
        case write_batch::operation::kind::erase_prefix: {
          const auto end = prefix_end(op.key);
          if (end.empty()) {
            // Only for an all-0xFF prefix; never produced by our key layout.
            wb.DeleteRange(h, op.key, std::string(op.key.size() + 1, '\xFF'));
          } else {
            wb.DeleteRange(h, op.key, end);
          }
          break;
        }
      }
    }
  }

  // Batches from this position on belong to a group still open (see begin_group).
  commit_seq group_limit() const {
    return open_groups_.empty() || stopping_ ? std::numeric_limits<commit_seq>::max()
                                             : *open_groups_.begin();
  }

  void commit_loop() {
    std::unique_lock lock(mutex_);
    auto takeable = [&] { return !pending_.empty() && pending_.front().first < group_limit(); };
    while (true) {
      wake_.wait(lock, [&] { return stopping_ || takeable(); });
      if (pending_.empty() && stopping_) break;
      if (stopping_ && last_error_) {
        // Shutting down on a disk that fails: what is still pending was never
        // acknowledged, and retrying forever would keep the process from exiting.
        give_up(lock);
        break;
      }
      // Group commit: everything that queued up while the previous commit ran
      // goes in one write and one fsync. In batch mode the committer also
      // waits a moment for company, so that more writes share the fsync.
      if (options_.durability == durability::batch && options_.batch_window.count() > 0) {
        wake_.wait_for(lock, options_.batch_window, [&] { return stopping_; });
      }
      // Nothing of an open group goes in: it is written whole, later.
      std::deque<std::pair<commit_seq, write_batch>> taking;
      const auto limit = group_limit();
      while (!pending_.empty() && pending_.front().first < limit) {
        taking.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
      if (taking.empty()) continue;
      const auto observer = observer_;
      lock.unlock();

      rocksdb::WriteBatch wb;
      for (const auto& [seq, b] : taking) add_to(wb, b);
      rocksdb::WriteOptions wo;
      wo.sync = options_.durability != durability::none;
      const auto started = std::chrono::steady_clock::now();
      auto status = db_->Write(wo, &wb);
      if (observer) {
        observer(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
      }
      const auto ec = to_error(status);
      const commit_seq last = taking.back().first;

      std::vector<std::function<void(std::error_code)>> ready;
      lock.lock();
      if (!ec) {
        durable_ = last;
        last_error_ = {};
        ++stats_.commits;
        writable_.store(true, std::memory_order_relaxed);
        for (auto it = waiters_.begin(); it != waiters_.end() && it->first <= durable_;) {
          ready.push_back(std::move(it->second));
          it = waiters_.erase(it);
        }
      } else {
        ++stats_.failed_commits;
        last_error_ = ec;
        writable_.store(false, std::memory_order_relaxed);
        // The waiters learn now; the batches stay first in line and are retried,
        // so the store never skips a change that memory already made.
        for (auto it = waiters_.begin(); it != waiters_.end() && it->first <= last;) {
          ready.push_back(std::move(it->second));
          it = waiters_.erase(it);
        }
        while (!taking.empty()) {
          pending_.push_front(std::move(taking.back()));
          taking.pop_back();
        }
      }
      lock.unlock();
      for (auto& done : ready) done(ec);
      lock.lock();
      if (!ec) completed_ = last;
      settled_.notify_all();
      lock.unlock();
      if (ec) {
        if (lasting(ec)) report_failure(ec, status.ToString());
        std::this_thread::sleep_for(options_.retry_interval);
        // After a full disk RocksDB stops writing until told to resume.
        db_->Resume();
      }
      lock.lock();
    }
  }

  // A failed write that a retry cannot mend (see store::set_failure_handler):
  // not a full disk or the size limit, which clear when space returns.
  static bool lasting(std::error_code ec) {
    return ec != storage_errc::no_space && ec != storage_errc::over_limit && ec != storage_errc::busy;
  }

  void report_failure(std::error_code ec, const std::string& why) {
    std::function<void(std::error_code, std::string_view)> handler;
    {
      std::lock_guard lock(mutex_);
      if (failure_reported_) return;
      failure_reported_ = true;
      handler = failure_handler_;
    }
    if (handler) handler(ec, why);
  }

  // Fails every waiter with the last error (the store stops while its disk fails).
  void give_up(std::unique_lock<std::mutex>& lock) {
    auto waiters = std::move(waiters_);
    waiters_.clear();
    const auto ec = last_error_;
    lock.unlock();
    for (auto& [seq, done] : waiters) done(ec);
    lock.lock();
    settled_.notify_all();
  }

  rocksdb::DB* db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::shared_ptr<rocksdb::SstFileManager> files_;
  rocksdb_options options_;
  std::function<void(double)> observer_;
  std::function<void(std::error_code, std::string_view)> failure_handler_;
  bool failure_reported_ = false;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable settled_;
  std::deque<std::pair<commit_seq, write_batch>> pending_;
  std::multiset<commit_seq> open_groups_;  // first position of each open group
  std::multimap<commit_seq, std::function<void(std::error_code)>> waiters_;
  commit_seq appended_ = 0;
  commit_seq durable_ = 0;
  commit_seq completed_ = 0;  // durable and its callbacks have run
  std::error_code last_error_;
  store_stats stats_;
  std::atomic<bool> writable_{true};
  bool stopping_ = false;
  std::thread committer_;
};

}  // namespace

open_result open_rocksdb(const rocksdb_options& options) {
  open_result result;
  std::error_code fs_error;
  std::filesystem::create_directories(options.path, fs_error);
  if (fs_error) {
    result.error = storage_errc::io_error;
    result.message = "cannot create data directory " + options.path + ": " + fs_error.message();
    return result;
  }

  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  // Detect damage instead of serving with holes.
  db_options.paranoid_checks = true;
  // A torn last WAL record (never acknowledged: the process died while
  // writing it) is tolerated; any other damage refuses to open.
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  db_options.max_background_jobs = 2;
  db_options.keep_log_file_num = 4;
  db_options.max_total_wal_size = 256ull << 20;
  db_options.info_log = std::make_shared<forwarding_logger>(options.log);
  db_options.listeners.push_back(std::make_shared<resume_by_committer>());
  std::shared_ptr<rocksdb::SstFileManager> files(
      rocksdb::NewSstFileManager(rocksdb::Env::Default()));
  if (options.max_bytes) files->SetMaxAllowedSpaceUsage(options.max_bytes);
  db_options.sst_file_manager = files;

  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (std::size_t i = 0; i < column_count; ++i) {
    const auto c = static_cast<column>(i);
    // The meta column keeps RocksDB's mandatory "default" name.
    families.emplace_back(c == column::meta ? rocksdb::kDefaultColumnFamilyName : column_name(c),
                          rocksdb::ColumnFamilyOptions(db_options));
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  auto status = rocksdb::DB::Open(db_options, options.path, families, &handles, &db);
  if (!status.ok()) {
    result.error = to_error(status);
    result.message = "cannot open the store in " + options.path + ": " + status.ToString();
    return result;
  }
  auto close = [&] {
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    delete db;
  };
  if (options.verify_on_open) {
    status = db->VerifyChecksum();
    if (!status.ok()) {
      result.error = to_error(status);
      result.message = "the store in " + options.path + " is damaged: " + status.ToString();
      close();
      return result;
    }
  }

  // Schema: written once by the version that creates the store, checked ever after.
  std::string raw;
  status = db->Get(rocksdb::ReadOptions(), handles[0], "schema", &raw);
  if (status.IsNotFound()) {
    ringmq::storage::v1::SchemaRecord schema;
    schema.set_version(schema_version);
    schema.set_created_by("ringmq");
    rocksdb::WriteOptions wo;
    wo.sync = true;
    status = db->Put(wo, handles[0], "schema", schema.SerializeAsString());
  } else if (status.ok()) {
    ringmq::storage::v1::SchemaRecord schema;
    if (!schema.ParseFromString(raw) || schema.version() != schema_version) {
      result.error = storage_errc::schema_mismatch;
      result.message = "the store in " + options.path + " has schema version " +
                       std::to_string(schema.version()) + ", this ringmq reads version " +
                       std::to_string(schema_version);
      close();
      return result;
    }
  }
  if (!status.ok()) {
    result.error = to_error(status);
    result.message = "cannot use the store in " + options.path + ": " + status.ToString();
    close();
    return result;
  }
  result.opened = std::make_unique<rocksdb_store>(db, std::move(handles), std::move(files), options);
  return result;
}

}  // namespace ringmq::storage
