// mpx/condition.hpp: Python's multiprocessing.Condition across the ranks of an MPI job.
//
//   mpx::Lock lock;                          // collective
//   mpx::Condition cond(lock);               // collective
//   // consumer                              // producer
//   std::unique_lock guard(cond);            // { std::lock_guard g(cond);
//   cond.wait_for([&] { return ready(); });  //   make_ready(); cond.notify(); }
//
// wait() must be called holding the condition's lock: it releases the lock (every level of
// an RLock), sleeps until notify()/notify_all() wakes it or the timeout passes, and takes the
// lock back before returning, as Python's does. notify(n) wakes the n longest-waiting
// threads of any rank; it too must be called holding the lock. The wait list lives in shared
// memory on one node, on rank 0 across nodes. Waiting costs no core.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "mpx/communicator.hpp"
#include "mpx/detail/wait.hpp"
#include "mpx/lock.hpp"

namespace mpx {

namespace detail {
class SyncCore;
}

/// Python's multiprocessing.Condition: a wait list bound to a Lock or RLock. Lockable itself
/// (locking the condition locks its lock). Move-only (every call on a moved-from one throws
/// UsageError).
class Condition {
 public:
  /// Creates a condition with its own RLock, as Python's Condition() (collective over
  /// `comm`).
  explicit Condition(const Communicator& comm = Communicator::world());
  /// Creates a condition bound to `lock` (a Lock or an RLock), which must outlive it
  /// (collective over `comm`, which should be the lock's communicator).
  explicit Condition(detail::LockBase& lock, const Communicator& comm = Communicator::world());
  /// Destroys it (local on one node; across nodes rank 0 waits until every rank has).
  ~Condition();
  Condition(Condition&&) noexcept;
  Condition& operator=(Condition&&) noexcept;
  Condition(const Condition&) = delete;
  Condition& operator=(const Condition&) = delete;

  /// Releases the lock, waits for a notify, takes the lock back (remote). UsageError if the
  /// calling thread does not hold the lock.
  void wait() { (void)wait_until(detail::no_deadline); }
  /// Same, giving up after `timeout` (>= 0); returns false if it timed out (the lock is
  /// held again either way) (remote).
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_until(detail::deadline_after(timeout, name(), "wait"));
  }
  /// Same, with a deadline (remote).
  bool wait_until(detail::Clock::time_point deadline);

  /// Waits until `predicate()` is true, re-checking after every wake-up; returns true
  /// (remote). The predicate runs with the lock held.
  template <class Predicate>
  bool wait_for(Predicate predicate) {
    while (!predicate()) wait();
    return true;
  }
  /// Same, giving up after `timeout`; returns the predicate's last result (remote).
  template <class Predicate, class Rep, class Period>
  bool wait_for(Predicate predicate, std::chrono::duration<Rep, Period> timeout) {
    const auto deadline = detail::deadline_after(timeout, name(), "wait_for");
    bool result = predicate();
    while (!result) {
      if (detail::Clock::now() >= deadline) break;
      wait_until(deadline);
      result = predicate();
    }
    return result;
  }

  /// Wakes up to `n` >= 0 of the longest-waiting threads (remote). UsageError if the
  /// calling thread does not hold the lock.
  void notify(std::int64_t n = 1);
  /// Wakes every waiting thread (remote). UsageError if the calling thread does not hold the
  /// lock.
  void notify_all();

  // The lock's own errors name the lock ("RLock#4.release: ..."); on a moved-from condition
  // these calls throw UsageError naming the condition.
  /// Lockable: takes the condition's lock (remote).
  void lock() { checked_lock("lock").lock(); }
  /// Lockable: releases the condition's lock (remote).
  void unlock() { checked_lock("unlock").unlock(); }
  /// Lockable: tries to take the condition's lock (remote).
  bool try_lock() { return checked_lock("try_lock").try_lock(); }
  /// Python's acquire(): the condition's lock (remote).
  bool acquire() { return checked_lock("acquire").acquire(); }
  /// Python's acquire(blocking) on the condition's lock (remote).
  bool acquire(bool blocking) { return checked_lock("acquire").acquire(blocking); }
  /// Python's acquire(blocking, timeout) on the condition's lock (remote).
  template <class Rep, class Period>
  bool acquire(bool blocking, std::chrono::duration<Rep, Period> timeout) {
    return checked_lock("acquire").acquire(blocking, timeout);
  }
  /// Python's release(): the condition's lock (remote).
  void release() { checked_lock("release").release(); }
  /// The lock the condition is bound to (local).
  [[nodiscard]] detail::LockBase& get_lock() { return checked_lock("get_lock"); }
  /// "Condition#N" (local).
  [[nodiscard]] const std::string& name() const noexcept;

 private:
  void require_lock(std::string_view operation) const;
  [[nodiscard]] detail::LockBase& checked_lock(std::string_view operation) const;
  std::unique_ptr<RLock> own_lock_;
  detail::LockBase* lock_ = nullptr;
  std::unique_ptr<detail::SyncCore> core_;
};

}  // namespace mpx
