#include "mpx/detail/wait.hpp"

#include <mpi.h>
#include <sched.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "mpx/detail/check.hpp"

namespace mpx::detail {

namespace {

constexpr std::uint32_t spin_polls = 64;
constexpr auto yield_phase = std::chrono::microseconds(200);
constexpr std::uint32_t first_sleep_us = 10;

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

std::uint32_t read_env_us(const char* name, std::uint32_t fallback) noexcept {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (end == v || n <= 0) return fallback;
  return static_cast<std::uint32_t>(n);
}

double hang_timeout_seconds() noexcept {
  static const double seconds = [] {
    const char* v = std::getenv("MPX_HANG_TIMEOUT");
    if (!v || !*v) return 0.0;
    return std::strtod(v, nullptr);
  }();
  return seconds;
}

}  // namespace

thread_local void (*interrupt_hook)() = nullptr;

std::uint32_t max_sleep_us() noexcept {
  static const std::uint32_t us = read_env_us("MPX_MAX_SLEEP_US", 1000);
  return us;
}

std::chrono::microseconds Backoff::next_sleep() noexcept {
  ++polls_;
  if (polls_ < spin_polls) {
    cpu_relax();
    return std::chrono::microseconds(0);
  }
  if (polls_ == spin_polls) {
    idle_since_ = Clock::now();
    sleep_us_ = 0;
  }
  if (sleep_us_ == 0) {
    if (Clock::now() - idle_since_ < yield_phase) {
      sched_yield();
      return std::chrono::microseconds(0);
    }
    sleep_us_ = first_sleep_us;
  } else {
    sleep_us_ = std::min(sleep_us_ * 2, max_sleep_us());
  }
  return std::chrono::microseconds(sleep_us_);
}

void Backoff::pause() noexcept { pause_until(no_deadline); }

void Backoff::pause_until(Clock::time_point deadline) noexcept {
  auto d = next_sleep();
  if (d.count() == 0) return;
  if (deadline != no_deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now());
    if (left < d) d = left;
    if (d.count() <= 0) return;
  }
  timespec ts{static_cast<time_t>(d.count() / 1000000), static_cast<long>((d.count() % 1000000) * 1000)};
  nanosleep(&ts, nullptr);
}

void reject_negative_timeout(std::string_view object, std::string_view operation) {
  fail(object, operation, "timeout must not be negative; pass a duration >= 0");
}

void note_long_wait(const WaitSite& site, Clock::time_point since) {
  const double limit = hang_timeout_seconds();
  if (limit <= 0) return;
  const double waited = std::chrono::duration<double>(Clock::now() - since).count();
  if (waited < limit) return;
  std::string report = "mpx hang doctor: rank " + std::to_string(world_rank_or_minus_one()) +
                       " has waited " + std::to_string(static_cast<int>(waited)) + " s in " +
                       std::string(site.object) + "." + std::string(site.operation);
  if (site.peer >= 0) report += " for rank " + std::to_string(site.peer);
  report += " (MPX_HANG_TIMEOUT=" + std::to_string(limit) + "); ending the job\n";
  std::fputs(report.c_str(), stderr);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 3);
}

}  // namespace mpx::detail
