#include "mpx/event.hpp"

#include "mpx/detail/check.hpp"
#include "mpx/detail/sync_core.hpp"

namespace mpx {

namespace {

enum EventOp : std::int32_t { event_set, event_clear, event_query, event_wait };

class EventMachine final : public detail::SyncMachine {
 public:
  [[nodiscard]] std::size_t state_bytes() const noexcept override { return sizeof(std::int64_t); }
  void init(void* state) const noexcept override { *static_cast<std::int64_t*>(state) = 0; }
  detail::SyncReply apply(void* state, const detail::SyncRequest& req) const noexcept override {
    auto& flag = *static_cast<std::int64_t*>(state);
    switch (req.op) {
      case event_set:
        flag = 1;
        return detail::sync_done(1);
      case event_clear:
        flag = 0;
        return detail::sync_done(0);
      case event_wait:
        return flag ? detail::sync_done(1) : detail::sync_blocked();
      default:
        return detail::sync_done(flag);
    }
  }
};

}  // namespace

Event::Event(const Communicator& comm)
    : core_(std::make_unique<detail::SyncCore>(comm, detail::next_object_name("Event"),
                                               std::make_unique<EventMachine>())) {}
Event::~Event() = default;
Event::Event(Event&&) noexcept = default;
Event& Event::operator=(Event&&) noexcept = default;

const std::string& Event::name() const noexcept {
  static const std::string moved = "Event(moved-from)";
  return core_ ? core_->name() : moved;
}

void Event::set() {
  if (!core_) detail::fail(name(), "set", "this event was moved from");
  detail::SyncRequest req;
  req.op = event_set;
  core_->call(req, detail::no_deadline, "set");
}

void Event::clear() {
  if (!core_) detail::fail(name(), "clear", "this event was moved from");
  detail::SyncRequest req;
  req.op = event_clear;
  core_->call(req, detail::no_deadline, "clear");
}

bool Event::is_set() const {
  if (!core_) detail::fail(name(), "is_set", "this event was moved from");
  detail::SyncRequest req;
  req.op = event_query;
  return core_->try_once(req).v0 != 0;
}

bool Event::wait_until(detail::Clock::time_point deadline) {
  if (!core_) detail::fail(name(), "wait", "this event was moved from");
  detail::SyncRequest req;
  req.op = event_wait;
  return core_->call(req, deadline, "wait").status == detail::SyncStatus::done;
}

}  // namespace mpx
