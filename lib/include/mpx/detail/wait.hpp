// mpx/detail/wait.hpp: the one way mpx waits. A waiting thread polls; between polls it
// spins briefly, then yields, then sleeps with growing pauses (up to MPX_MAX_SLEEP_US,
// default 1000 us). A message that arrives while the waiter is hot is seen within
// microseconds; a wait of seconds costs about one percent of a core instead of the 100%
// that a blocking MPI call burns.
#pragma once

#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace mpx::detail {

using Clock = std::chrono::steady_clock;

/// No deadline: wait for ever.
inline constexpr Clock::time_point no_deadline = Clock::time_point::max();

/// What a waiting thread waits for, for diagnostics (the hang doctor, error messages).
struct WaitSite {
  std::string_view object;        ///< for example "Queue#2"
  std::string_view operation;     ///< for example "get"
  int peer = -1;                  ///< the rank waited on, or -1 when unknown / any
  MPI_Comm comm = MPI_COMM_NULL;  ///< communicator `peer` is a rank of (null: unknown)
  bool collective = false;        ///< a collective over `comm`: waits for every member
};

/// Extra words for the hang doctor's report on the calling thread's waits, for example who
/// holds a lock (local; RAII; nests, the innermost one is reported):
///   detail::WaitDetail detail([&] { return "held by rank " + std::to_string(holder); });
///   wait_until(...);
/// `describe` runs on the waiting thread, only when the doctor reports; it must not wait.
class WaitDetail {
 public:
  explicit WaitDetail(std::function<std::string()> describe) noexcept;
  ~WaitDetail();
  WaitDetail(const WaitDetail&) = delete;
  WaitDetail& operator=(const WaitDetail&) = delete;
  /// What the innermost WaitDetail of this thread says, or "" (local; never throws).
  [[nodiscard]] static std::string current() noexcept;

 private:
  std::function<std::string()> describe_;
  WaitDetail* outer_;
};

/// Adaptive pause between polls: spin, then yield, then sleep with growing pauses.
class Backoff {
 public:
  /// Pause after a poll that found nothing to do.
  void pause() noexcept;
  /// Pause but never past `deadline`.
  void pause_until(Clock::time_point deadline) noexcept;
  /// Work was found: start hot again.
  void reset() noexcept { polls_ = 0; }
  /// Length of the next sleep (0 while still spinning or yielding).
  [[nodiscard]] std::chrono::microseconds next_sleep() noexcept;

 private:
  std::uint32_t polls_ = 0;
  Clock::time_point idle_since_{};
  std::uint32_t sleep_us_ = 0;
};

/// Longest pause of the backoff, in microseconds (MPX_MAX_SLEEP_US, default 1000).
std::uint32_t max_sleep_us() noexcept;

/// Turns a user timeout into a deadline; a negative timeout is a UsageError that names the
/// object and operation.
template <class Rep, class Period>
Clock::time_point deadline_after(std::chrono::duration<Rep, Period> timeout, std::string_view object,
                                 std::string_view operation);

void reject_negative_timeout(std::string_view object, std::string_view operation);

template <class Rep, class Period>
Clock::time_point deadline_after(std::chrono::duration<Rep, Period> timeout, std::string_view object,
                                 std::string_view operation) {
  if (!(timeout >= timeout.zero())) reject_negative_timeout(object, operation);  // also NaN
  const auto now = Clock::now();
  if (timeout >= std::chrono::duration_cast<std::chrono::duration<Rep, Period>>(
                     std::chrono::hours(24 * 365 * 100)))
    return no_deadline;
  return now + std::chrono::duration_cast<Clock::duration>(timeout);
}

/// Calls `ready()` until it returns true (then returns true) or `deadline` passes (then
/// returns false), backing off between polls. `site` names the wait for diagnostics.
template <class Ready>
bool wait_until(Ready&& ready, Clock::time_point deadline, const WaitSite& site);

/// Interruption hook of mpx::Process: set only on a thread that runs a Process target.
/// wait_until calls it after every pause; it throws (mpx::ProcessTerminated) to unwind a
/// target that was terminated. Null everywhere else, so it costs one thread-local load.
extern thread_local void (*interrupt_hook)();

/// Called by wait_until on every slow poll (about four times a second): reports a wait that
/// has lasted longer than MPX_HANG_TIMEOUT (the hang doctor), and ends the job when the rank
/// waited for has already left (see detail/fault.hpp). Cheap when neither applies.
void note_long_wait(const WaitSite& site, Clock::time_point since);

template <class Ready>
bool wait_until(Ready&& ready, Clock::time_point deadline, const WaitSite& site) {
  if (ready()) return true;
  Backoff backoff;
  const auto since = Clock::now();
  for (std::uint32_t n = 1;; ++n) {
    if (deadline != no_deadline && Clock::now() >= deadline) return ready();
    backoff.pause_until(deadline);
    if (interrupt_hook) interrupt_hook();
    if (ready()) return true;
    if ((n & 255u) == 0) note_long_wait(site, since);
  }
}

}  // namespace mpx::detail
