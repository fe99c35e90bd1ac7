// mpx/detail/sync_core.hpp: the engine under every synchronisation primitive (Lock, RLock,
// Semaphore, Condition, Event, Barrier).
//
// A primitive is a small state machine: a block of plain integers plus operations on it that
// never block ("take the lock if it is free", "is the event set?"). An operation answers
// done, blocked (cannot happen now: the caller waits and tries again) or failed (misuse).
// SyncCore runs those operations where the state lives:
//   * all ranks on one node: the state sits in a SharedSegment, guarded by a tiny spin lock
//     in the same segment; a waiting rank retries with mpx's backoff (spin, yield, sleep),
//     so a rank blocked for seconds costs about one percent of a core;
//   * ranks on several nodes (or MPX_NO_SHARED_MEMORY=1): a host rank (rank 0 of the
//     object's communicator) keeps the state and serves requests on its progress thread;
//     blocked requests wait in a FIFO queue at the host and are answered, in arrival order,
//     as soon as the state lets them succeed. The waiting rank sleeps in wait_until.
// A blocked operation with a deadline that passes is "abandoned": the machine's abandon()
// either completes it after all (the grant raced the timeout) or cancels it cleanly.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mpx/communicator.hpp"
#include "mpx/detail/shared_segment.hpp"
#include "mpx/detail/thread_token.hpp"
#include "mpx/detail/wait.hpp"

namespace mpx::detail {

/// One operation on a primitive's state (trivially copyable: travels as raw bytes).
struct SyncRequest {
  std::int32_t op = 0;     ///< machine-specific operation code (>= 0)
  std::int32_t flags = 0;  ///< sync_no_wait: answer blocked at once instead of queuing
  std::int64_t a = 0;      ///< arguments
  std::int64_t b = 0;
  std::uint64_t id = 0;  ///< request number (per rank and object), set by SyncCore
};

/// What an operation did.
enum class SyncStatus : std::int32_t {
  done = 0,       ///< it happened; values in v0..v2
  blocked = 1,    ///< it cannot happen now
  cancelled = 2,  ///< a blocked operation was abandoned at its deadline
  failed = 3,     ///< misuse or a broken object; `code` says which, values give details
};

/// The answer to a SyncRequest (trivially copyable).
struct SyncReply {
  SyncStatus status = SyncStatus::done;
  std::int32_t code = 0;
  std::int64_t v0 = 0;
  std::int64_t v1 = 0;
  std::int64_t v2 = 0;
  std::uint64_t id = 0;
};

inline constexpr std::int32_t sync_no_wait = 1;

inline SyncReply sync_done(std::int64_t v0 = 0, std::int64_t v1 = 0, std::int64_t v2 = 0) {
  return {SyncStatus::done, 0, v0, v1, v2, 0};
}
inline SyncReply sync_blocked(std::int64_t v0 = 0) { return {SyncStatus::blocked, 0, v0, 0, 0, 0}; }
inline SyncReply sync_failed(std::int32_t code, std::int64_t v0 = 0, std::int64_t v1 = 0) {
  return {SyncStatus::failed, code, v0, v1, 0, 0};
}

/// The logic of one primitive: pure functions over its state. They run under the segment's
/// guard or on the host's progress thread, one at a time; they never block and never throw.
class SyncMachine {
 public:
  virtual ~SyncMachine() = default;
  /// Size of the state in bytes (a multiple of 8).
  [[nodiscard]] virtual std::size_t state_bytes() const noexcept = 0;
  /// Writes the initial state into zeroed memory.
  virtual void init(void* state) const noexcept = 0;
  /// Performs `req`: done, blocked or failed.
  virtual SyncReply apply(void* state, const SyncRequest& req) const noexcept = 0;
  /// `req` was blocked and its deadline passed: complete it if it can happen now, else undo
  /// whatever waiting it registered and answer cancelled (or failed).
  virtual SyncReply abandon(void* state, const SyncRequest& req) const noexcept {
    SyncReply r = apply(state, req);
    if (r.status == SyncStatus::blocked) r.status = SyncStatus::cancelled;
    return r;
  }
};

/// The world rank encoded in a token (-1 for 0).
inline int token_rank(std::uint64_t token) noexcept {
  return token == 0 ? -1 : static_cast<int>(token >> 32) - 1;
}
/// The thread number encoded in a token.
inline unsigned token_thread(std::uint64_t token) noexcept {
  return static_cast<unsigned>(token & 0xffffffffu);
}
/// "rank R (thread T)".
std::string describe_token(std::uint64_t token);

/// Where and how a primitive's state lives, and the one way to operate on it.
class SyncCore {
 public:
  /// Collective over `comm`: checks that every rank creates the same kind of object (the
  /// part of `name` before '#'; skipped when `checked`, because the caller already ran
  /// check_same_everywhere), duplicates `comm` as `name`, puts the state in shared memory when
  /// every rank is on one node (and MPX_NO_SHARED_MEMORY is unset), else on rank 0.
  SyncCore(const Communicator& comm, std::string name, std::unique_ptr<SyncMachine> machine,
           bool checked = false);
  /// Local on one node; on the host path waits (serving) until every rank has reached its
  /// destructor, so no rank is left waiting for a host that is gone.
  ~SyncCore();
  SyncCore(const SyncCore&) = delete;
  SyncCore& operator=(const SyncCore&) = delete;

  /// Performs `req` once: done, blocked or failed (remote on the host path).
  SyncReply try_once(SyncRequest req);
  /// Performs `req`, waiting while it is blocked, until `deadline`: done, cancelled or
  /// failed (remote).
  SyncReply call(SyncRequest req, Clock::time_point deadline, std::string_view operation);

  /// True when the state is in node-local shared memory (local).
  [[nodiscard]] bool shared() const noexcept { return segment_ != nullptr; }
  /// The state itself, for primitives with a lock-free fast path (shared() only).
  [[nodiscard]] void* state() const noexcept;
  /// The object's private communicator (local).
  [[nodiscard]] const Communicator& comm() const noexcept { return comm_; }
  /// The object's name, for example "Lock#3" (local).
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  /// The rank that hosts the state on the host path (local).
  [[nodiscard]] int host() const noexcept { return 0; }

 private:
  class Host;
  SyncReply apply_shared(const SyncRequest& req, bool abandon);
  SyncReply call_remote(SyncRequest req, Clock::time_point deadline, std::string_view operation);

  std::string name_;
  Communicator comm_;
  std::unique_ptr<SyncMachine> machine_;
  std::unique_ptr<SharedSegment> segment_;
  std::unique_ptr<Host> host_;
  std::atomic<std::uint64_t> next_id_{0};
};

/// Per-type object counter: "Lock#1", "Lock#2", ... (every rank creates objects in order).
std::string next_object_name(std::string_view type);

/// Collective over `comm`, the first step of creating an object named `object` ("Lock#3"):
/// gathers every rank's creation parameters. Throws UsageError on every rank together unless
/// every rank creates the same kind of object (the part of the name before '#') with the same
/// number of parameters; throws UsageError on this rank alone if `comm` is null (this rank is
/// not a member). The caller compares the parameters (every rank sees the same table, so every
/// rank decides the same). Used by every object of lock.hpp ... list.hpp.
std::vector<std::vector<std::int64_t>> gather_creation(const Communicator& comm,
                                                       std::string_view object,
                                                       const std::vector<std::int64_t>& params);

/// Collective: gather_creation, then throws UsageError on every rank unless every rank passed
/// the same `values`.
void check_same_everywhere(const Communicator& comm, std::string_view object, std::string_view what,
                           std::int64_t v0, std::int64_t v1 = 0, std::int64_t v2 = 0);

}  // namespace mpx::detail
