// mpx/barrier.hpp: Python's multiprocessing.Barrier over any subset of an MPI job's ranks.
//
//   mpx::Barrier sync(2);                    // collective; 2 parties: the ranks that wait()
//   if (rank == 1 || rank == 2) {
//     int index = sync.wait();               // returns when both have arrived; 0 or 1
//   }                                        // ranks 0 and 3 never wait
//
// Unlike MPI_Barrier, which needs every rank of a communicator, an mpx::Barrier releases
// its waiters as soon as `parties` threads (of any ranks) have called wait(): exactly
// Python's semantics. wait() returns an index distinct for every party of a generation
// (0 for the first to arrive, parties - 1 for the last); the optional `action` runs once per
// generation, on the last party to arrive, before anyone is released. A wait that times
// out, abort(), or an action that throws breaks the barrier: every waiter and every later
// wait() throws mpx::BrokenBarrierError until reset(). Waiting costs no core.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "mpx/communicator.hpp"
#include "mpx/detail/wait.hpp"

namespace mpx {

namespace detail {
class SyncCore;
}

/// Python's multiprocessing.Barrier(parties, action, timeout). Move-only (every call on a
/// moved-from one throws UsageError).
class Barrier {
 public:
  /// A barrier for `parties` waiters, 1 <= parties <= comm.size() (collective over `comm`;
  /// every rank passes the same parties, UsageError otherwise).
  explicit Barrier(int parties, const Communicator& comm = Communicator::world())
      : Barrier(parties, nullptr, no_timeout, comm) {}
  /// Same, running `action` once per generation on the last party to arrive (collective).
  Barrier(int parties, std::function<void()> action,
          const Communicator& comm = Communicator::world())
      : Barrier(parties, std::move(action), no_timeout, comm) {}
  /// Same, with a default timeout for wait() (>= 0) (collective).
  template <class Rep, class Period>
  Barrier(int parties, std::function<void()> action, std::chrono::duration<Rep, Period> timeout,
          const Communicator& comm = Communicator::world())
      : Barrier(parties, std::move(action), to_timeout(timeout), comm) {}
  /// Destroys it (local on one node; across nodes rank 0 waits until every rank has).
  ~Barrier();
  Barrier(Barrier&&) noexcept;
  Barrier& operator=(Barrier&&) noexcept;
  Barrier(const Barrier&) = delete;
  Barrier& operator=(const Barrier&) = delete;

  /// Waits until `parties` threads have arrived, with the barrier's default timeout, and
  /// returns this party's index in 0..parties-1 (remote). Throws BrokenBarrierError if the
  /// barrier is or becomes broken (including by this wait timing out).
  int wait();
  /// Same with an explicit timeout (>= 0) (remote).
  template <class Rep, class Period>
  int wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_until(detail::deadline_after(timeout, name(), "wait"));
  }
  /// Same with a deadline (remote).
  int wait_until(detail::Clock::time_point deadline);

  /// Breaks the barrier: current and later waiters get BrokenBarrierError (remote).
  void abort();
  /// Returns the barrier to its empty, unbroken state; threads waiting now get
  /// BrokenBarrierError (remote).
  void reset();
  /// True if the barrier is broken (remote; a snapshot).
  [[nodiscard]] bool broken() const;
  /// Number of threads waiting now (remote; a snapshot).
  [[nodiscard]] int n_waiting() const;
  /// Number of threads needed to pass (local).
  [[nodiscard]] int parties() const noexcept { return parties_; }
  /// "Barrier#N" (local).
  [[nodiscard]] const std::string& name() const noexcept;

 private:
  static constexpr detail::Clock::duration no_timeout = detail::Clock::duration(-1);
  template <class Rep, class Period>
  static detail::Clock::duration to_timeout(std::chrono::duration<Rep, Period> t) {
    if (t < t.zero()) return detail::Clock::duration(-2);  // rejected in the constructor
    if (t >= std::chrono::duration_cast<std::chrono::duration<Rep, Period>>(
                 std::chrono::hours(24 * 365 * 100)))
      return no_timeout;
    return std::chrono::duration_cast<detail::Clock::duration>(t);
  }
  Barrier(int parties, std::function<void()> action, detail::Clock::duration timeout,
          const Communicator& comm);
  [[noreturn]] void throw_broken(std::string_view why) const;

  std::unique_ptr<detail::SyncCore> core_;
  std::function<void()> action_;
  detail::Clock::duration timeout_{};
  int parties_ = 0;
};

}  // namespace mpx
