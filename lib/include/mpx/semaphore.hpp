// mpx/semaphore.hpp: Python's multiprocessing.Semaphore and BoundedSemaphore across ranks.
//
//   mpx::Semaphore slots(2);                 // collective: at most 2 holders at a time
//   {
//     std::lock_guard guard(slots);          // Python: `with slots:`
//     ... at most two threads (of any ranks) run here at once ...
//   }
//   if (slots.acquire(true, std::chrono::seconds(1))) { ...; slots.release(); }
//
// A semaphore is a counter shared by every rank of the communicator: acquire() takes one
// (waiting while it is zero), release(n) gives n back. Any thread of any rank may release.
// A BoundedSemaphore refuses (mpx::UsageError) a release that would raise the counter
// above its initial value, which is almost always a bug (Python raises ValueError).
// On one node the counter lives in shared memory; across nodes rank 0 hosts it and grants
// waiting acquires in request order. Waiting sleeps in mpx's backoff, costing no core.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "mpx/communicator.hpp"
#include "mpx/detail/wait.hpp"

namespace mpx {

namespace detail {
class SyncCore;
}

/// Python's multiprocessing.Semaphore: a counter that acquire() decrements (waiting while it is
/// 0) and release() increments. Meets Lockable/TimedLockable (std::lock_guard works). Move-only
/// (every call on a moved-from one throws UsageError).
class Semaphore {
 public:
  /// Creates the semaphore with counter `value` >= 0 (collective over `comm`; every rank
  /// passes the same value).
  explicit Semaphore(std::int64_t value = 1, const Communicator& comm = Communicator::world());
  /// Destroys it (local on one node; across nodes rank 0 waits until every rank has).
  virtual ~Semaphore();
  Semaphore(Semaphore&&) noexcept;
  Semaphore& operator=(Semaphore&&) noexcept;
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  /// Takes one unit, waiting as long as needed; returns true (remote).
  bool acquire() { return acquire_until(true, detail::no_deadline); }
  /// With blocking == false, takes one unit only if one is free now; returns whether it did
  /// (remote).
  bool acquire(bool blocking) { return acquire_until(blocking, detail::no_deadline); }
  /// Python's acquire(block, timeout): waits at most `timeout` (>= 0); returns whether a
  /// unit was taken (remote).
  template <class Rep, class Period>
  bool acquire(bool blocking, std::chrono::duration<Rep, Period> timeout) {
    return acquire_until(blocking, detail::deadline_after(timeout, name(), "acquire"));
  }
  /// acquire(true, timeout) (remote).
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return acquire(true, timeout);
  }
  /// Takes one unit if one is free before `deadline` (remote).
  bool acquire_until(bool blocking, detail::Clock::time_point deadline);

  /// Gives back `n` >= 1 units, waking up to n waiters (remote on the host path). A
  /// BoundedSemaphore throws UsageError if that would exceed its initial value.
  void release(std::int64_t n = 1);

  /// The counter now (remote; a snapshot). Python's get_value().
  [[nodiscard]] std::int64_t get_value() const;
  /// "Semaphore#N" or "BoundedSemaphore#N" (local).
  [[nodiscard]] const std::string& name() const noexcept;

  /// Lockable: acquire() (remote).
  void lock() { acquire(); }
  /// Lockable: release() (remote).
  void unlock() { release(); }
  /// Lockable: acquire(false) (remote).
  bool try_lock() { return acquire(false); }
  /// TimedLockable: acquire(true, timeout) (remote).
  template <class Rep, class Period>
  bool try_lock_for(std::chrono::duration<Rep, Period> timeout) {
    return acquire(true, timeout);
  }

 protected:
  Semaphore(std::int64_t value, bool bounded, const Communicator& comm);

 private:
  std::unique_ptr<detail::SyncCore> core_;
  std::int64_t initial_ = 0;
  bool bounded_ = false;
};

/// Python's multiprocessing.BoundedSemaphore: a Semaphore whose release() may not raise the
/// counter above the initial value (UsageError). Move-only (every call on a moved-from one
/// throws UsageError).
class BoundedSemaphore : public Semaphore {
 public:
  /// Creates it with counter and bound `value` >= 0 (collective over `comm`).
  explicit BoundedSemaphore(std::int64_t value = 1,
                            const Communicator& comm = Communicator::world());
};

}  // namespace mpx
