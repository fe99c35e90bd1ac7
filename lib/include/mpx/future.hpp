// mpx/future.hpp: move-only handles of non-blocking operations.
//
//   mpx::Future<void> sent = comm.isend(std::move(big_vector), 1);
//   mpx::Future<std::string> reply = comm.irecv<std::string>(1);
//   ... compute ...
//   std::string text = reply.get();   // waits without burning a core
//
// A Future owns its MPI request and whatever buffer the request uses, so the buffer cannot
// be freed while MPI still reads or writes it. Destroying a pending Future cancels a receive;
// a pending send is handed to mpx, which keeps its buffer alive until MPI is done with it.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "mpx/detail/wait.hpp"

namespace mpx {

/// Where a received message came from (local data, returned by recv and probe).
struct Status {
  int source = -1;          ///< rank of the sender
  int tag = -1;             ///< the sender's tag (user tag, without mpx's type bits)
  std::size_t bytes = 0;    ///< size of the message on the wire
};

namespace detail {

/// A started MPI operation that can be driven to completion without blocking.
class PendingOp {
 public:
  virtual ~PendingOp() = default;
  /// Makes progress; returns true once the operation has completed. May throw (for
  /// example TypeMismatch when the message that arrived has another type).
  virtual bool progress() = 0;
  /// The operation will not be waited for: a receive cancels itself; a send returns true to
  /// say it must be kept (with its buffer) until MPI completes it.
  virtual bool abandon() noexcept = 0;
  /// What the operation waits for, for diagnostics.
  [[nodiscard]] virtual WaitSite site() const noexcept = 0;
};

/// A PendingOp that produces a T.
template <class T>
class Op : public PendingOp {
 public:
  /// Moves the result out; called once, after progress() returned true.
  virtual T take() = 0;
  /// Where the message came from (receives only).
  [[nodiscard]] virtual Status status() const noexcept { return {}; }
};

/// Keeps an abandoned send alive until MPI completes it.
void adopt_orphan(std::unique_ptr<PendingOp> op) noexcept;
/// Completes whatever orphaned sends have finished; frees their buffers.
void sweep_orphans() noexcept;

}  // namespace detail

/// The result of a non-blocking operation: move-only, waits without spinning a core.
template <class T>
class Future {
 public:
  /// An empty future (valid() is false).
  Future() = default;
  /// Wraps a started operation (used by mpx itself).
  explicit Future(std::unique_ptr<detail::Op<T>> op) : op_(std::move(op)) {}
  Future(Future&&) noexcept = default;
  Future& operator=(Future&& other) noexcept {
    if (this != &other) {
      release();
      op_ = std::move(other.op_);
      done_ = other.done_;
    }
    return *this;
  }
  Future(const Future&) = delete;
  Future& operator=(const Future&) = delete;
  ~Future() { release(); }

  /// True while the future refers to an operation whose result has not been taken.
  [[nodiscard]] bool valid() const noexcept { return op_ != nullptr; }

  /// Makes progress and returns true once the operation has completed (local).
  bool test() {
    require_valid("test");
    if (!done_) done_ = op_->progress();
    return done_;
  }
  /// Python's name for test(): true once the operation has completed (local).
  bool ready() { return test(); }

  /// Blocks until the operation completes (remote: waits on the peer).
  void wait() {
    require_valid("wait");
    if (!done_) {
      auto& op = *op_;
      detail::wait_until([&] { return op.progress(); }, detail::no_deadline, op.site());
      done_ = true;
    }
  }
  /// Blocks at most `timeout`; returns whether the operation completed (remote).
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> timeout) {
    require_valid("wait_for");
    if (done_) return true;
    auto& op = *op_;
    const auto site = op.site();
    const auto deadline = detail::deadline_after(timeout, site.object, "Future.wait_for");
    done_ = detail::wait_until([&] { return op.progress(); }, deadline, site);
    return done_;
  }

  /// Waits, then returns the result (moves it out; the future becomes invalid) (remote).
  T get() {
    require_valid("get");
    wait();
    auto op = std::move(op_);
    if constexpr (std::is_void_v<T>)
      op->take();
    else
      return op->take();
  }
  /// Waits, then returns the result and stores the message's origin in `status` (remote).
  T get(Status& status) {
    require_valid("get");
    wait();
    status = op_->status();
    return get();
  }

 private:
  void require_valid(const char* operation) const;
  void release() noexcept {
    if (op_ && !done_ && op_->abandon()) detail::adopt_orphan(std::move(op_));
    op_.reset();
  }
  std::unique_ptr<detail::Op<T>> op_;
  bool done_ = false;
};

namespace detail {
[[noreturn]] void throw_invalid_future();
/// Throws UsageError naming Future.<operation>.
[[noreturn]] void throw_invalid_future(const char* operation);
}  // namespace detail

template <class T>
void Future<T>::require_valid(const char* operation) const {
  if (!op_) detail::throw_invalid_future(operation);
}

}  // namespace mpx
