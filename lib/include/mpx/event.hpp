// mpx/event.hpp: Python's multiprocessing.Event across the ranks of an MPI job.
//
//   mpx::Event ready;                        // collective: every rank creates it, in order
//   if (rank == 0) { prepare(); ready.set(); }
//   else if (!ready.wait(std::chrono::seconds(5))) std::puts("gave up waiting");
//
// A flag every rank sees: set() raises it and wakes every waiter, clear() lowers it, wait()
// returns once it is raised (true) or when the timeout passes (false). On one node the flag
// lives in shared memory; across nodes rank 0 hosts it. Waiting costs no core.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "mpx/communicator.hpp"
#include "mpx/detail/wait.hpp"

namespace mpx {

namespace detail {
class SyncCore;
}

/// Python's multiprocessing.Event: a shared flag ranks can wait for. Move-only (every call on a
/// moved-from one throws UsageError).
class Event {
 public:
  /// Creates the event, not set (collective over `comm`).
  explicit Event(const Communicator& comm = Communicator::world());
  /// Destroys it (local on one node; across nodes rank 0 waits until every rank has).
  ~Event();
  Event(Event&&) noexcept;
  Event& operator=(Event&&) noexcept;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  /// Raises the flag; every waiter returns (remote on the host path).
  void set();
  /// Lowers the flag (remote on the host path).
  void clear();
  /// True if the flag is raised (remote; a snapshot).
  [[nodiscard]] bool is_set() const;
  /// Waits until the flag is raised; returns true (remote).
  bool wait() { return wait_until(detail::no_deadline); }
  /// Waits at most `timeout` (>= 0); returns whether the flag was raised (remote).
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_until(detail::deadline_after(timeout, name(), "wait"));
  }
  /// Waits until the flag is raised or `deadline` passes; returns whether it was raised
  /// (remote).
  bool wait_until(detail::Clock::time_point deadline);
  /// "Event#N" (local).
  [[nodiscard]] const std::string& name() const noexcept;

 private:
  std::unique_ptr<detail::SyncCore> core_;
};

}  // namespace mpx
