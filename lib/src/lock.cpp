#include "mpx/lock.hpp"

#include <atomic>

#include "mpx/detail/check.hpp"
#include "mpx/detail/sync_core.hpp"

namespace mpx {

namespace detail {

namespace {

// The state: who holds the lock (a thread token, 0 = free) and how many times.
struct LockState {
  std::uint64_t owner;
  std::int64_t count;
};

enum LockOp : std::int32_t { lock_acquire, lock_release, lock_query, lock_release_all };
enum LockCode : std::int32_t { code_not_held = 1, code_already_held = 2 };

class LockMachine final : public SyncMachine {
 public:
  explicit LockMachine(bool reentrant) : reentrant_(reentrant) {}
  [[nodiscard]] std::size_t state_bytes() const noexcept override { return sizeof(LockState); }
  void init(void* state) const noexcept override { *static_cast<LockState*>(state) = {0, 0}; }
  SyncReply apply(void* state, const SyncRequest& req) const noexcept override {
    auto& s = *static_cast<LockState*>(state);
    const auto me = static_cast<std::uint64_t>(req.a);
    switch (req.op) {
      case lock_acquire:  // b = levels to hold once taken
        if (s.owner == 0) {
          s.owner = me;
          s.count = req.b;
          return sync_done(s.count);
        }
        if (s.owner == me) {
          if (reentrant_) return sync_done(++s.count);
          if (req.flags & sync_no_wait) return sync_blocked(static_cast<std::int64_t>(s.owner));
          return sync_failed(code_already_held);
        }
        return sync_blocked(static_cast<std::int64_t>(s.owner));
      case lock_release:
        if (s.owner != me) return sync_failed(code_not_held, static_cast<std::int64_t>(s.owner));
        if (--s.count <= 0) {
          s.owner = 0;
          s.count = 0;
        }
        return sync_done(s.count);
      case lock_release_all: {
        if (s.owner != me) return sync_failed(code_not_held, static_cast<std::int64_t>(s.owner));
        const std::int64_t levels = s.count;
        s.owner = 0;
        s.count = 0;
        return sync_done(levels);
      }
      default:  // lock_query
        return sync_done(static_cast<std::int64_t>(s.owner), s.owner == me ? s.count : 0);
    }
  }

 private:
  bool reentrant_;
};

std::atomic_ref<std::uint64_t> owner_word(SyncCore& core) {
  return std::atomic_ref<std::uint64_t>(static_cast<LockState*>(core.state())->owner);
}
std::int64_t& count_word(SyncCore& core) { return static_cast<LockState*>(core.state())->count; }

}  // namespace

LockBase::LockBase(const Communicator& comm, bool reentrant) : reentrant_(reentrant) {
  const std::string name = next_object_name(reentrant ? "RLock" : "Lock");
  core_ = std::make_unique<SyncCore>(comm, name, std::make_unique<LockMachine>(reentrant));
  if (core_->shared() && !reentrant) word_ = &static_cast<LockState*>(core_->state())->owner;
}
LockBase::~LockBase() = default;
LockBase::LockBase(LockBase&& o) noexcept
    : core_(std::move(o.core_)), word_(o.word_), reentrant_(o.reentrant_) {
  o.word_ = nullptr;
}
LockBase& LockBase::operator=(LockBase&& o) noexcept {
  if (this != &o) {
    core_ = std::move(o.core_);
    word_ = o.word_;
    reentrant_ = o.reentrant_;
    o.word_ = nullptr;
  }
  return *this;
}

const std::string& LockBase::name() const noexcept {
  static const std::string moved = "Lock(moved-from)";
  static const std::string moved_r = "RLock(moved-from)";
  return core_ ? core_->name() : reentrant_ ? moved_r : moved;
}

void LockBase::not_held(std::uint64_t holder, std::string_view operation) const {
  const std::string kind = reentrant_ ? "RLock" : "Lock";
  if (holder == 0)
    fail(name(), operation,
         "the lock is not held by anyone; " + std::string(operation) +
             "() only after acquire() on the same thread (Python raises ValueError here)");
  fail(name(), operation,
       "the lock is held by " + describe_token(holder) + ", not by the calling thread " +
           describe_token(this_thread_token()) + "; only the holder may release it");
}

bool LockBase::acquire_until(bool blocking, Clock::time_point deadline) {
  if (!core_) fail(name(), "acquire", "this lock was moved from");
  const std::uint64_t me = this_thread_token();
  if (core_->shared()) {
    auto owner = owner_word(*core_);
    const std::uint64_t now = owner.load(std::memory_order_relaxed);
    if (now == me) {
      if (reentrant_) {
        ++count_word(*core_);
        return true;
      }
      if (!blocking) return false;
      fail(name(), "acquire",
           "the calling thread already holds this lock; acquiring it again would wait for "
           "ever (use mpx::RLock for a lock a thread may take again)");
    }
    auto take = [&] {
      std::uint64_t expected = 0;
      return owner.load(std::memory_order_relaxed) == 0 &&
             owner.compare_exchange_strong(expected, me, std::memory_order_acquire,
                                           std::memory_order_relaxed);
    };
    // The hang doctor names the holder seen when the wait began.
    const bool got =
        blocking
            ? wait_until(take, deadline,
                         {name(), "acquire", token_rank(owner.load(std::memory_order_relaxed))})
            : take();
    if (got && reentrant_) count_word(*core_) = 1;  // a Lock's count is never used
    return got;
  }
  SyncRequest req;
  req.op = lock_acquire;
  req.a = static_cast<std::int64_t>(me);
  req.b = 1;
  const SyncReply r = blocking ? core_->call(req, deadline, "acquire") : core_->try_once(req);
  if (r.status == SyncStatus::failed)
    fail(name(), "acquire",
         "the calling thread already holds this lock; acquiring it again would wait for ever "
         "(use mpx::RLock for a lock a thread may take again)");
  return r.status == SyncStatus::done;
}

void LockBase::release_slow() {
  if (!core_) fail(name(), "release", "this lock was moved from");
  const std::uint64_t me = this_thread_token();
  if (core_->shared()) {
    auto owner = owner_word(*core_);
    const std::uint64_t now = owner.load(std::memory_order_relaxed);
    if (now != me) not_held(now, "release");
    if (reentrant_ && --count_word(*core_) > 0) return;
    count_word(*core_) = 0;
    owner.store(0, std::memory_order_release);
    return;
  }
  SyncRequest req;
  req.op = lock_release;
  req.a = static_cast<std::int64_t>(me);
  const SyncReply r = core_->call(req, no_deadline, "release");
  if (r.status == SyncStatus::failed) not_held(static_cast<std::uint64_t>(r.v0), "release");
}

std::int64_t LockBase::release_all(std::string_view operation) {
  if (!core_) fail(name(), operation, "this lock was moved from");
  const std::uint64_t me = this_thread_token();
  if (core_->shared()) {
    auto owner = owner_word(*core_);
    const std::uint64_t now = owner.load(std::memory_order_relaxed);
    if (now != me) not_held(now, operation);
    const std::int64_t levels = reentrant_ ? count_word(*core_) : 1;
    count_word(*core_) = 0;
    owner.store(0, std::memory_order_release);
    return levels;
  }
  SyncRequest req;
  req.op = lock_release_all;
  req.a = static_cast<std::int64_t>(me);
  const SyncReply r = core_->call(req, no_deadline, operation);
  if (r.status == SyncStatus::failed) not_held(static_cast<std::uint64_t>(r.v0), operation);
  return r.v0;
}

void LockBase::reacquire(std::int64_t levels) {
  if (!core_) fail(name(), "acquire", "this lock was moved from");
  if (core_->shared()) {
    acquire_until(true, no_deadline);
    if (reentrant_) count_word(*core_) = levels;
    return;
  }
  SyncRequest req;
  req.op = lock_acquire;
  req.a = static_cast<std::int64_t>(this_thread_token());
  req.b = levels;
  core_->call(req, no_deadline, "acquire");
}

int LockBase::holder() const {
  if (!core_) fail(name(), "holder", "this lock was moved from");
  if (core_->shared()) return token_rank(owner_word(*core_).load(std::memory_order_acquire));
  SyncRequest req;
  req.op = lock_query;
  req.a = static_cast<std::int64_t>(this_thread_token());
  return token_rank(static_cast<std::uint64_t>(core_->try_once(req).v0));
}

std::int64_t LockBase::held_levels() const {
  if (!core_) fail(name(), "level", "this lock was moved from");
  const std::uint64_t me = this_thread_token();
  if (core_->shared()) {
    // Only the holder writes the count, so the holder reads it exactly.
    if (owner_word(*core_).load(std::memory_order_acquire) != me) return 0;
    return reentrant_ ? count_word(*core_) : 1;
  }
  SyncRequest req;
  req.op = lock_query;
  req.a = static_cast<std::int64_t>(me);
  return core_->try_once(req).v1;
}

bool LockBase::owned() const {
  if (!core_) fail(name(), "owned", "this lock was moved from");
  const std::uint64_t me = this_thread_token();
  if (core_->shared()) return owner_word(*core_).load(std::memory_order_acquire) == me;
  SyncRequest req;
  req.op = lock_query;
  req.a = static_cast<std::int64_t>(me);
  return static_cast<std::uint64_t>(core_->try_once(req).v0) == me;
}

}  // namespace detail

Lock::Lock(const Communicator& comm) : LockBase(comm, false) {}
Lock::~Lock() = default;

RLock::RLock(const Communicator& comm) : LockBase(comm, true) {}
RLock::~RLock() = default;

std::int64_t RLock::level() const { return held_levels(); }

}  // namespace mpx
