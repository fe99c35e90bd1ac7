#include "mpx/detail/wait.hpp"

#include <mpi.h>
#include <sched.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "mpx/detail/check.hpp"
#include "mpx/detail/fault.hpp"

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

namespace {
thread_local WaitDetail* t_wait_detail = nullptr;
}  // namespace

WaitDetail::WaitDetail(std::function<std::string()> describe) noexcept
    : describe_(std::move(describe)), outer_(t_wait_detail) {
  t_wait_detail = this;
}

WaitDetail::~WaitDetail() { t_wait_detail = outer_; }

std::string WaitDetail::current() noexcept {
  try {
    if (t_wait_detail && t_wait_detail->describe_) return t_wait_detail->describe_();
  } catch (...) {
  }
  return {};
}

void note_long_wait(const WaitSite& site, Clock::time_point since) {
  check_departed_peers(site);
  const double limit = hang_timeout_seconds();
  if (limit <= 0) return;
  const double waited = std::chrono::duration<double>(Clock::now() - since).count();
  if (waited < limit) return;
  // "mpx hang doctor: rank 1 (host h2) has waited 5 s in Lock#1.acquire for rank 0 (world
  //  rank 2): held by rank 2 (MPX_HANG_TIMEOUT=5); ending the job"
  std::string report = "mpx hang doctor: rank " + std::to_string(world_rank_or_minus_one()) +
                       " (host " + host_name_for_reports() + ") has waited " +
                       std::to_string(static_cast<int>(waited)) + " s in " +
                       std::string(site.object) + "." + std::string(site.operation);
  if (site.peer >= 0) {
    report += " for rank " + std::to_string(site.peer);
    const int world = world_rank_of(site.comm, site.peer);
    if (world >= 0 && world != site.peer) report += " (world rank " + std::to_string(world) + ")";
  } else if (site.collective) {
    int size = 0;
    if (site.comm != MPI_COMM_NULL) MPI_Comm_size(site.comm, &size);
    report += size > 0 ? " (a collective: for all " + std::to_string(size) + " ranks of " +
                             std::string(site.object) + ")"
                       : std::string(" (a collective)");
  } else {
    report += " (for any rank)";
  }
  const std::string detail = WaitDetail::current();
  if (!detail.empty()) report += ": " + detail;
  char limit_text[32];
  std::snprintf(limit_text, sizeof limit_text, "%g", limit);
  report += std::string(" (MPX_HANG_TIMEOUT=") + limit_text + "); ending the job\n";
  std::fputs(report.c_str(), stderr);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 3);
}

}  // namespace mpx::detail
