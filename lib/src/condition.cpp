#include "mpx/condition.hpp"

#include <algorithm>
#include <limits>

#include "mpx/detail/check.hpp"
#include "mpx/detail/sync_core.hpp"

namespace mpx {

namespace {

// The wait list: tickets in arrival order; a notified entry stays until its waiter sees it.
struct Waiter {
  std::uint64_t ticket;  // 0: free slot
  std::uint64_t notified;
};
struct ConditionHeader {
  std::uint64_t next_ticket;
  std::uint64_t capacity;
};

enum ConditionOp : std::int32_t { cond_register, cond_check, cond_notify };
constexpr std::int32_t code_full = 1;
constexpr std::int32_t code_unknown = 2;

class ConditionMachine final : public detail::SyncMachine {
 public:
  explicit ConditionMachine(std::uint64_t capacity) : capacity_(capacity) {}
  [[nodiscard]] std::size_t state_bytes() const noexcept override {
    return sizeof(ConditionHeader) + capacity_ * sizeof(Waiter);
  }
  void init(void* state) const noexcept override {
    auto& h = *static_cast<ConditionHeader*>(state);
    h.next_ticket = 0;
    h.capacity = capacity_;
    std::fill_n(waiters(state), capacity_, Waiter{0, 0});
  }
  detail::SyncReply apply(void* state, const detail::SyncRequest& req) const noexcept override {
    return run(state, req, false);
  }
  detail::SyncReply abandon(void* state, const detail::SyncRequest& req) const noexcept override {
    return run(state, req, true);
  }

 private:
  static Waiter* waiters(void* state) {
    return reinterpret_cast<Waiter*>(static_cast<char*>(state) + sizeof(ConditionHeader));
  }
  detail::SyncReply run(void* state, const detail::SyncRequest& req, bool abandon) const noexcept {
    auto& h = *static_cast<ConditionHeader*>(state);
    Waiter* w = waiters(state);
    switch (req.op) {
      case cond_register:
        for (std::uint64_t i = 0; i < capacity_; ++i) {
          if (w[i].ticket != 0) continue;
          w[i] = {++h.next_ticket, 0};
          return detail::sync_done(static_cast<std::int64_t>(w[i].ticket));
        }
        return detail::sync_failed(code_full, static_cast<std::int64_t>(capacity_));
      case cond_check:
        for (std::uint64_t i = 0; i < capacity_; ++i) {
          if (w[i].ticket != static_cast<std::uint64_t>(req.a)) continue;
          if (w[i].notified) {
            w[i] = {0, 0};
            return detail::sync_done(1);
          }
          if (!abandon) return detail::sync_blocked();
          w[i] = {0, 0};  // timed out: leave the list so no notify is spent on us
          return {detail::SyncStatus::cancelled, 0, 0, 0, 0, 0};
        }
        return detail::sync_failed(code_unknown);
      default: {  // cond_notify: a = how many; the oldest un-notified waiters first
        std::int64_t woken = 0;
        while (woken < req.a) {
          Waiter* oldest = nullptr;
          for (std::uint64_t i = 0; i < capacity_; ++i)
            if (w[i].ticket != 0 && !w[i].notified && (!oldest || w[i].ticket < oldest->ticket))
              oldest = &w[i];
          if (!oldest) break;
          oldest->notified = 1;
          ++woken;
        }
        return detail::sync_done(woken);
      }
    }
  }
  std::uint64_t capacity_;
};

std::uint64_t wait_list_capacity(const Communicator& comm) {
  return 8 * static_cast<std::uint64_t>(comm.size()) + 8;  // 8 waiting threads per rank
}

}  // namespace

Condition::Condition(const Communicator& comm)
    : own_lock_(std::make_unique<RLock>(comm)), lock_(own_lock_.get()) {
  core_ = std::make_unique<detail::SyncCore>(
      comm, detail::next_object_name("Condition"),
      std::make_unique<ConditionMachine>(wait_list_capacity(comm)));
}

Condition::Condition(detail::LockBase& lock, const Communicator& comm) : lock_(&lock) {
  core_ = std::make_unique<detail::SyncCore>(
      comm, detail::next_object_name("Condition"),
      std::make_unique<ConditionMachine>(wait_list_capacity(comm)));
}

Condition::~Condition() = default;
// Moves leave the source without a lock, so using it is a clear error (not the new owner's
// lock).
Condition::Condition(Condition&& o) noexcept
    : own_lock_(std::move(o.own_lock_)), lock_(o.lock_), core_(std::move(o.core_)) {
  o.lock_ = nullptr;
}
Condition& Condition::operator=(Condition&& o) noexcept {
  if (this != &o) {
    core_ = std::move(o.core_);
    own_lock_ = std::move(o.own_lock_);
    lock_ = o.lock_;
    o.lock_ = nullptr;
  }
  return *this;
}

detail::LockBase& Condition::checked_lock(std::string_view operation) const {
  if (!lock_) detail::fail(name(), operation, "this condition was moved from");
  return *lock_;
}

const std::string& Condition::name() const noexcept {
  static const std::string moved = "Condition(moved-from)";
  return core_ ? core_->name() : moved;
}

void Condition::require_lock(std::string_view operation) const {
  if (!core_ || !lock_) detail::fail(name(), operation, "this condition was moved from");
  if (!lock_->owned())
    detail::fail(name(), operation,
                 "the calling thread does not hold the condition's lock (" + lock_->name() +
                     "); acquire it first, e.g. std::unique_lock guard(cond); (Python raises "
                     "RuntimeError here)");
}

bool Condition::wait_until(detail::Clock::time_point deadline) {
  require_lock("wait");
  // Join the wait list before letting go of the lock, so a notify that follows our release
  // cannot be missed.
  detail::SyncRequest reg;
  reg.op = cond_register;
  const auto ticket = core_->call(reg, detail::no_deadline, "wait");
  if (ticket.status == detail::SyncStatus::failed)
    detail::fail(name(), "wait",
                 "the wait list is full (" + std::to_string(ticket.v0) +
                     " waiting threads); mpx allows 8 waiting threads per rank");
  const std::int64_t levels = lock_->release_all("wait");
  detail::SyncRequest check;
  check.op = cond_check;
  check.a = ticket.v0;
  detail::SyncReply r;
  try {
    r = core_->call(check, deadline, "wait");
  } catch (...) {
    lock_->reacquire(levels);
    throw;
  }
  lock_->reacquire(levels);
  return r.status == detail::SyncStatus::done;
}

void Condition::notify(std::int64_t n) {
  if (n < 0)
    detail::fail(name(), "notify", "n = " + std::to_string(n) + " is negative; pass n >= 0");
  require_lock("notify");
  detail::SyncRequest req;
  req.op = cond_notify;
  req.a = n;
  core_->call(req, detail::no_deadline, "notify");
}

void Condition::notify_all() {
  require_lock("notify_all");
  detail::SyncRequest req;
  req.op = cond_notify;
  req.a = std::numeric_limits<std::int64_t>::max();
  core_->call(req, detail::no_deadline, "notify_all");
}

}  // namespace mpx
