// mpx/lock.hpp: Python's multiprocessing.Lock and RLock for the ranks of an MPI job.
//
//   mpx::Lock lock;                          // collective: every rank creates it, in order
//   {
//     std::lock_guard guard(lock);           // Python: `with lock:`
//     ... only one thread of one rank at a time runs here ...
//   }
//   if (lock.acquire(true, std::chrono::milliseconds(100))) { ...; lock.release(); }
//
// A lock is owned by one thread of one rank. Releasing a lock that the calling thread does
// not hold throws mpx::UsageError naming the holder; so does every call on a moved-from lock. Lock
// is not re-entrant: acquiring it again on the thread that holds it throws (it would deadlock for
// ever); RLock counts re-entries and must be released as often as it was acquired.
//
// Both meet the C++ Lockable and TimedLockable requirements (lock, unlock, try_lock,
// try_lock_for, try_lock_until), so std::lock_guard, std::unique_lock and std::scoped_lock
// work. When every rank runs on one node the lock is a word in node-local shared memory
// (acquire is one compare-and-swap); otherwise rank 0 of the communicator hosts it and grants
// it in request order. A waiting rank sleeps in mpx's backoff: a 5 s wait costs a few
// percent of a core, not a whole one.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <atomic>

#include "mpx/communicator.hpp"
#include "mpx/detail/thread_token.hpp"
#include "mpx/detail/wait.hpp"

namespace mpx {

namespace detail {
class SyncCore;

/// What Lock and RLock share; Condition uses it to release and re-acquire its lock.
class LockBase {
 public:
  LockBase(LockBase&&) noexcept;
  LockBase& operator=(LockBase&&) noexcept;
  LockBase(const LockBase&) = delete;
  LockBase& operator=(const LockBase&) = delete;

  /// Python's acquire(block=True, timeout=None): takes the lock, waiting as long as it takes
  /// (remote). Returns true.
  bool acquire() { return fast_acquire() || acquire_until(true, no_deadline); }
  /// Python's acquire(block): with blocking == false, takes the lock only if it is free now
  /// and returns whether it did (remote).
  bool acquire(bool blocking) { return fast_acquire() || acquire_until(blocking, no_deadline); }
  /// Python's acquire(block, timeout): waits at most `timeout` (which must not be negative;
  /// ignored when blocking is false); returns whether the lock was taken (remote).
  template <class Rep, class Period>
  bool acquire(bool blocking, std::chrono::duration<Rep, Period> timeout) {
    return acquire_until(blocking, deadline_after(timeout, name(), "acquire"));
  }
  /// acquire(true, timeout) (remote).
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return acquire(true, timeout);
  }
  /// Takes the lock if it is free before `deadline` (remote). The work behind acquire().
  bool acquire_until(bool blocking, Clock::time_point deadline);

  /// Releases the lock (once, for an RLock). Throws UsageError if the calling thread does
  /// not hold it, naming the holder (remote on the host path, local on one node).
  void release() {
    if (fast_release()) return;
    release_slow();
  }

  // C++ Lockable / TimedLockable: std::lock_guard, std::unique_lock, std::scoped_lock.
  /// Same as acquire() (remote).
  void lock() { (void)acquire(); }
  /// Same as release() (remote).
  void unlock() { release(); }
  /// Same as acquire(false) (remote).
  bool try_lock() { return acquire(false); }
  /// Same as acquire(true, timeout) (remote).
  template <class Rep, class Period>
  bool try_lock_for(std::chrono::duration<Rep, Period> timeout) {
    return acquire(true, timeout);
  }
  /// Takes the lock if it becomes free before `time` (remote).
  template <class C, class D>
  bool try_lock_until(std::chrono::time_point<C, D> time) {
    const auto left = time - C::now();
    return acquire(true, left < D::zero() ? D::zero() : left);
  }

  /// The world rank that holds the lock now, or -1 if it is free (remote; a snapshot, for
  /// diagnostics: the answer may be stale by the time you read it).
  [[nodiscard]] int holder() const;
  /// True if some thread holds the lock now (remote; a snapshot).
  [[nodiscard]] bool locked() const { return holder() >= 0; }
  /// True if the calling thread holds the lock (remote).
  [[nodiscard]] bool owned() const;
  /// "Lock#N" or "RLock#N" (local).
  [[nodiscard]] const std::string& name() const noexcept;

  // For Condition: release every level the calling thread holds (returns the count) and
  // take them all back.
  std::int64_t release_all(std::string_view operation);
  void reacquire(std::int64_t levels);

 protected:
  LockBase(const Communicator& comm, bool reentrant);
  ~LockBase();
  /// Levels the calling thread holds (0 if it does not hold the lock).
  [[nodiscard]] std::int64_t held_levels() const;

 private:
  // One node, non-reentrant Lock: the lock is one word in shared memory, taken with a single
  // compare-and-swap and freed with a single store, inline (the uncontended path costs a few
  // nanoseconds). Everything else goes out of line.
  bool fast_acquire() noexcept {
    if (!word_) return false;
    std::uint64_t expected = 0;
    return std::atomic_ref<std::uint64_t>(*word_).compare_exchange_strong(
        expected, this_thread_token(), std::memory_order_acquire, std::memory_order_relaxed);
  }
  bool fast_release() noexcept {
    if (!word_) return false;
    std::atomic_ref<std::uint64_t> owner(*word_);
    if (owner.load(std::memory_order_relaxed) != this_thread_token()) return false;
    owner.store(0, std::memory_order_release);
    return true;
  }
  void release_slow();
  [[noreturn]] void not_held(std::uint64_t holder, std::string_view operation) const;
  std::unique_ptr<SyncCore> core_;
  std::uint64_t* word_ = nullptr;  // the owner word for the inline fast path, or null
  bool reentrant_ = false;
};
}  // namespace detail

/// Python's multiprocessing.Lock: one holder at a time across every rank of the communicator.
/// Move-only (every call on a moved-from one throws UsageError).
class Lock : public detail::LockBase {
 public:
  /// Creates the lock (collective over `comm`: every rank calls it, in the same order as
  /// other mpx objects). The lock starts free.
  explicit Lock(const Communicator& comm = Communicator::world());
  /// Destroys the lock (local on one node; across nodes rank 0 waits until every rank has
  /// destroyed it, so destroy it on every rank).
  ~Lock();
  Lock(Lock&&) noexcept = default;
  Lock& operator=(Lock&&) noexcept = default;
};

/// Python's multiprocessing.RLock: a lock the holding thread may acquire again; it is free once
/// released as many times as it was acquired. Move-only (every call on a moved-from one throws
/// UsageError).
class RLock : public detail::LockBase {
 public:
  /// Creates the lock (collective over `comm`). The lock starts free.
  explicit RLock(const Communicator& comm = Communicator::world());
  /// Destroys the lock (see ~Lock).
  ~RLock();
  RLock(RLock&&) noexcept = default;
  RLock& operator=(RLock&&) noexcept = default;

  /// How many times the calling thread holds it (0 if it does not) (remote).
  [[nodiscard]] std::int64_t level() const;
};

}  // namespace mpx
