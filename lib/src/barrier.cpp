#include "mpx/barrier.hpp"

#include <exception>

#include "mpx/detail/check.hpp"
#include "mpx/detail/sync_core.hpp"

namespace mpx {

namespace {

struct BarrierState {
  std::int64_t parties;
  std::int64_t count;       // arrivals in the current generation
  std::int64_t generation;  // bumped when a generation ends (released or reset)
  std::int64_t broken;
  std::uint64_t outcome;  // bit g % 64: generation g ended broken (by reset)
};

enum BarrierOp : std::int32_t {
  bar_arrive,   // b = 1: no action -> v0 index, v1 generation, v2 1 if last (2: and released)
  bar_release,  // a = generation: the last party ends it after the action
  bar_wait,     // a = generation: done once it ended normally
  bar_abort,
  bar_reset,
  bar_query,  // -> v0 n_waiting, v1 broken
};
constexpr std::int32_t code_broken = 1;
constexpr std::int32_t code_timed_out = 2;

std::uint64_t bit(std::int64_t generation) {
  return std::uint64_t{1} << (static_cast<std::uint64_t>(generation) % 64u);
}

class BarrierMachine final : public detail::SyncMachine {
 public:
  explicit BarrierMachine(std::int64_t parties) : parties_(parties) {}
  [[nodiscard]] std::size_t state_bytes() const noexcept override { return sizeof(BarrierState); }
  void init(void* state) const noexcept override {
    *static_cast<BarrierState*>(state) = {parties_, 0, 0, 0, 0};
  }
  detail::SyncReply apply(void* state, const detail::SyncRequest& req) const noexcept override {
    return run(state, req, false);
  }
  detail::SyncReply abandon(void* state, const detail::SyncRequest& req) const noexcept override {
    return run(state, req, true);
  }

 private:
  static detail::SyncReply run(void* state, const detail::SyncRequest& req, bool abandon) noexcept {
    auto& s = *static_cast<BarrierState*>(state);
    switch (req.op) {
      case bar_arrive: {
        if (s.broken) return detail::sync_failed(code_broken);
        if (s.count == s.parties) {  // the last party is running the action: next generation
          if (!abandon) return detail::sync_blocked();
          s.broken = 1;
          return detail::sync_failed(code_timed_out);
        }
        const std::int64_t index = s.count++;
        if (s.count < s.parties) return detail::sync_done(index, s.generation, 0);
        if (!req.b) return detail::sync_done(index, s.generation, 1);  // runs the action first
        // No action: the last party ends the generation at once (one message fewer).
        const std::int64_t generation = s.generation;
        s.outcome &= ~bit(s.generation);
        ++s.generation;
        s.count = 0;
        return detail::sync_done(index, generation, 2);
      }
      case bar_release:
        if (s.generation != req.a || s.broken) return detail::sync_failed(code_broken);
        s.outcome &= ~bit(s.generation);
        ++s.generation;
        s.count = 0;
        return detail::sync_done();
      case bar_wait:
        if (s.generation > req.a)
          return (s.outcome & bit(req.a)) ? detail::sync_failed(code_broken) : detail::sync_done();
        if (s.broken) return detail::sync_failed(code_broken);
        if (!abandon) return detail::sync_blocked();
        s.broken = 1;  // Python: a wait that times out breaks the barrier
        return detail::sync_failed(code_timed_out);
      case bar_abort:
        s.broken = 1;
        return detail::sync_done();
      case bar_reset:
        if (s.count > 0 || s.broken) {
          s.outcome |= bit(s.generation);  // whoever waits in this generation: broken
          ++s.generation;
        }
        s.count = 0;
        s.broken = 0;
        return detail::sync_done();
      default:
        return detail::sync_done(s.broken ? 0 : s.count, s.broken);
    }
  }
  std::int64_t parties_;
};

}  // namespace

Barrier::Barrier(int parties, std::function<void()> action, detail::Clock::duration timeout,
                 const Communicator& comm)
    : action_(std::move(action)), timeout_(timeout), parties_(parties) {
  const std::string name = detail::next_object_name("Barrier");
  // First the collective comparison, then the checks of the (now common) arguments: a bad
  // argument on one rank only fails every rank together, none is left waiting for it.
  detail::check_same_everywhere(
      comm, name, "(parties, has action, timeout in ns)", parties, action_ ? 1 : 0,
      std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count());
  if (parties < 1 || parties > comm.size())
    detail::fail(name, "create",
                 "parties = " + std::to_string(parties) + " but the communicator '" + comm.name() +
                     "' has " + std::to_string(comm.size()) +
                     " rank(s); a barrier needs 1 <= parties <= number of ranks (each party is "
                     "a rank, or a thread of a rank, that calls wait())");
  if (timeout < no_timeout)
    detail::fail(name, "create", "timeout must not be negative; pass a duration >= 0");
  core_ = std::make_unique<detail::SyncCore>(comm, name, std::make_unique<BarrierMachine>(parties),
                                             true);
}

Barrier::~Barrier() = default;
Barrier::Barrier(Barrier&&) noexcept = default;
Barrier& Barrier::operator=(Barrier&&) noexcept = default;

const std::string& Barrier::name() const noexcept {
  static const std::string moved = "Barrier(moved-from)";
  return core_ ? core_->name() : moved;
}

void Barrier::throw_broken(std::string_view why) const {
  detail::fail<BrokenBarrierError>(name(), "wait", why);
}

int Barrier::wait() {
  if (timeout_ == no_timeout) return wait_until(detail::no_deadline);
  return wait_until(detail::Clock::now() + timeout_);
}

int Barrier::wait_until(detail::Clock::time_point deadline) {
  if (!core_) detail::fail(name(), "wait", "this barrier was moved from");
  const char* broken_text =
      "the barrier is broken (a wait timed out, abort() or reset() was called, or the action "
      "threw); reset() it before using it again";
  const char* timeout_text =
      "timed out waiting for the other parties; the barrier is now broken for every waiter "
      "(Python's BrokenBarrierError); reset() it before using it again";
  detail::SyncRequest arrive;
  arrive.op = bar_arrive;
  arrive.b = action_ ? 0 : 1;  // 1: the last party may release everyone at once
  const auto a = core_->call(arrive, deadline, "wait");
  if (a.status != detail::SyncStatus::done)
    throw_broken(a.code == code_timed_out ? timeout_text : broken_text);
  const auto index = static_cast<int>(a.v0);
  if (a.v2 == 2) return index;  // last to arrive, no action: everyone is released
  if (a.v2 == 1) {  // last to arrive: run the action, then release everyone
    if (action_) {
      try {
        action_();
      } catch (...) {
        detail::SyncRequest abort_req;
        abort_req.op = bar_abort;
        core_->call(abort_req, detail::no_deadline, "wait");
        throw;
      }
    }
    detail::SyncRequest release;
    release.op = bar_release;
    release.a = a.v1;
    if (core_->call(release, detail::no_deadline, "wait").status != detail::SyncStatus::done)
      throw_broken(broken_text);
    return index;
  }
  detail::SyncRequest wait_req;
  wait_req.op = bar_wait;
  wait_req.a = a.v1;
  const auto r = core_->call(wait_req, deadline, "wait");
  if (r.status != detail::SyncStatus::done)
    throw_broken(r.code == code_timed_out ? timeout_text : broken_text);
  return index;
}

void Barrier::abort() {
  if (!core_) detail::fail(name(), "abort", "this barrier was moved from");
  detail::SyncRequest req;
  req.op = bar_abort;
  core_->call(req, detail::no_deadline, "abort");
}

void Barrier::reset() {
  if (!core_) detail::fail(name(), "reset", "this barrier was moved from");
  detail::SyncRequest req;
  req.op = bar_reset;
  core_->call(req, detail::no_deadline, "reset");
}

bool Barrier::broken() const {
  if (!core_) detail::fail(name(), "broken", "this barrier was moved from");
  detail::SyncRequest req;
  req.op = bar_query;
  return core_->try_once(req).v1 != 0;
}

int Barrier::n_waiting() const {
  if (!core_) detail::fail(name(), "n_waiting", "this barrier was moved from");
  detail::SyncRequest req;
  req.op = bar_query;
  return static_cast<int>(core_->try_once(req).v0);
}

}  // namespace mpx
