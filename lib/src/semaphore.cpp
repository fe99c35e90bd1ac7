#include "mpx/semaphore.hpp"

#include <limits>

#include "mpx/detail/check.hpp"
#include "mpx/detail/sync_core.hpp"

namespace mpx {

namespace {

struct SemaphoreState {
  std::int64_t value;
  std::int64_t bound;  // -1: unbounded
};

enum SemaphoreOp : std::int32_t { sem_acquire, sem_release, sem_value };
constexpr std::int32_t code_over_release = 1;
constexpr std::int32_t code_overflow = 2;

class SemaphoreMachine final : public detail::SyncMachine {
 public:
  SemaphoreMachine(std::int64_t value, std::int64_t bound) : value_(value), bound_(bound) {}
  [[nodiscard]] std::size_t state_bytes() const noexcept override { return sizeof(SemaphoreState); }
  void init(void* state) const noexcept override {
    *static_cast<SemaphoreState*>(state) = {value_, bound_};
  }
  detail::SyncReply apply(void* state, const detail::SyncRequest& req) const noexcept override {
    auto& s = *static_cast<SemaphoreState*>(state);
    switch (req.op) {
      case sem_acquire:
        if (s.value <= 0) return detail::sync_blocked();
        --s.value;
        return detail::sync_done(s.value);
      case sem_release:  // value <= bound and req.a >= 1, so neither test overflows
        if (s.bound >= 0 && req.a > s.bound - s.value)
          return detail::sync_failed(code_over_release, s.value);
        if (req.a > std::numeric_limits<std::int64_t>::max() - s.value)
          return detail::sync_failed(code_overflow, s.value);
        s.value += req.a;
        return detail::sync_done(s.value);
      default:
        return detail::sync_done(s.value);
    }
  }

 private:
  std::int64_t value_;
  std::int64_t bound_;
};

}  // namespace

Semaphore::Semaphore(std::int64_t value, const Communicator& comm)
    : Semaphore(value, false, comm) {}

Semaphore::Semaphore(std::int64_t value, bool bounded, const Communicator& comm)
    : initial_(value), bounded_(bounded) {
  const std::string name = detail::next_object_name(bounded ? "BoundedSemaphore" : "Semaphore");
  // First the collective comparison, then the checks of the (now common) value: a bad value
  // on one rank only fails every rank together, none is left waiting for it.
  detail::check_same_everywhere(comm, name, "the initial value", value);
  if (value < 0)
    detail::fail(name, "create",
                 "initial value " + std::to_string(value) + " is negative; pass a value >= 0");
  core_ = std::make_unique<detail::SyncCore>(
      comm, name, std::make_unique<SemaphoreMachine>(value, bounded ? value : -1), true);
}

Semaphore::~Semaphore() = default;
Semaphore::Semaphore(Semaphore&&) noexcept = default;
Semaphore& Semaphore::operator=(Semaphore&&) noexcept = default;

BoundedSemaphore::BoundedSemaphore(std::int64_t value, const Communicator& comm)
    : Semaphore(value, true, comm) {}

const std::string& Semaphore::name() const noexcept {
  static const std::string moved = "Semaphore(moved-from)";
  static const std::string moved_bounded = "BoundedSemaphore(moved-from)";
  return core_ ? core_->name() : bounded_ ? moved_bounded : moved;
}

bool Semaphore::acquire_until(bool blocking, detail::Clock::time_point deadline) {
  if (!core_) detail::fail(name(), "acquire", "this semaphore was moved from");
  detail::SyncRequest req;
  req.op = sem_acquire;
  const auto r = blocking ? core_->call(req, deadline, "acquire") : core_->try_once(req);
  return r.status == detail::SyncStatus::done;
}

void Semaphore::release(std::int64_t n) {
  if (!core_) detail::fail(name(), "release", "this semaphore was moved from");
  if (n < 1)
    detail::fail(name(), "release",
                 "n = " + std::to_string(n) + " is less than one; release one or more units");
  detail::SyncRequest req;
  req.op = sem_release;
  req.a = n;
  const auto r = core_->call(req, detail::no_deadline, "release");
  if (r.status == detail::SyncStatus::failed && r.code == code_overflow)
    detail::fail(name(), "release",
                 "releasing " + std::to_string(n) + " units would overflow the counter (now " +
                     std::to_string(r.v0) + "); release only what was acquired");
  if (r.status == detail::SyncStatus::failed)
    detail::fail(name(), "release",
                 "released too many times: the counter is " + std::to_string(r.v0) +
                     " and releasing " + std::to_string(n) + " would exceed the bound " +
                     std::to_string(initial_) +
                     "; release only what was acquired (Python raises ValueError here)");
}

std::int64_t Semaphore::get_value() const {
  if (!core_) detail::fail(name(), "get_value", "this semaphore was moved from");
  detail::SyncRequest req;
  req.op = sem_value;
  return core_->try_once(req).v0;
}

}  // namespace mpx
