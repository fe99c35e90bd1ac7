// mpx/detail/queue_core.hpp: the type-erased engine behind mpx::Queue<T> and
// mpx::JoinableQueue<T>. It moves items as byte blobs (a 24-byte header, then the item's
// wire image); the templates in mpx/queue.hpp only encode and decode.
//
// Roles. One rank of the queue's communicator, the host, owns the state: the FIFO of items,
// the FIFO of waiting getters (local or remote), the FIFO of puts blocked on a full queue,
// the credit account of a bounded queue, the close state and the count of unfinished tasks.
// Every other rank is a client: it sends requests to the host and receives replies. Both
// roles are a detail::Service on the rank's progress thread, so the host answers while its
// main thread computes, and a client acknowledges a close while its main thread computes.
//
// Protocol (all on the queue's private communicator; the host matches with
// MPI_Improbe(ANY_SOURCE, ANY_TAG), a client with MPI_Improbe(host, ANY_TAG), so messages
// from one rank are handled in the order that rank sent them):
//   * put on an unbounded queue, or on a bounded one while the client holds credits:
//     fire-and-forget (one message, no reply). The host grants credits in its reply to a
//     blocking put when there is room (never more than half of maxsize outstanding in
//     total), so a producer pays one round trip per batch of puts, not per put.
//   * put without credit: the item travels with the request; the host stores it or, when
//     the queue is full, keeps it in the FIFO of blocked puts and replies once there is room
//     (back-pressure), or at once with "full" for put_nowait.
//   * get: a request; the host replies with the item, or parks the getter and forwards the
//     next item that arrives straight to it (one hop, no second request).
//   * timeouts: the waiting rank sends a cancel and then waits for the host's verdict (the
//     item or ack already on its way, or "cancelled"), so nothing is lost or doubled.
//   * close and join start a flush round: the host asks every client to acknowledge; a
//     client answers from its progress thread after every put it sent before (same
//     channel, so in order). For close, the client marks the queue closed before
//     answering, so a later put there throws ClosedError and no put can arrive after close
//     completes. Join then sees every item put before it was called.
// A waiting thread drives the queue's progress itself while it waits (and the progress
// thread does too), so replies are seen within microseconds while the traffic is hot, and
// after an idle spell within the backoff's longest sleep (MPX_MAX_SLEEP_US, 1 ms).
#pragma once

#include <mpi.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mpx/communicator.hpp"
#include "mpx/detail/progress.hpp"
#include "mpx/detail/wait.hpp"

namespace mpx::detail {

/// A message of the queue protocol: header, then (for items) the item's wire image.
using Blob = std::vector<char>;
/// Bytes in front of every item's wire image.
inline constexpr std::size_t queue_header_bytes = 24;

/// What every rank passes when it creates a queue; compared across ranks.
struct QueueParams {
  std::int64_t maxsize = 0;  ///< 0: unbounded
  std::int32_t host = 0;
  std::int32_t joinable = 0;
  std::int32_t fingerprint = 0;  ///< fingerprint of the item type
  std::int32_t serial = 0;       ///< N of "Queue#N": creation order on this rank
};

/// Shared engine of Queue<T> and JoinableQueue<T> (see the file comment).
class QueueCore final : public Service {
 public:
  /// Collective over `comm`: compares `params` across ranks (all ranks throw UsageError
  /// together on a mismatch or bad value), duplicates the communicator, starts serving.
  QueueCore(const Communicator& comm, std::string kind, QueueParams params);
  /// Collective: waits (without spinning, still serving) until every rank destroys its
  /// handle, then stops serving. Never throws.
  ~QueueCore() override;
  QueueCore(const QueueCore&) = delete;
  QueueCore& operator=(const QueueCore&) = delete;

  /// Puts `item` (header space in front). Blocks while a bounded queue is full unless
  /// `block` is false; throws Full (timeout or put_nowait), ClosedError (remote).
  void put(Blob&& item, Clock::time_point deadline, bool block, const char* operation);
  /// Client fast path for a small item while this thread streams puts into the queue: adds
  /// the item's wire image to the batch and returns true, or returns false (nothing done)
  /// when put() must handle it (local).
  bool try_put_small(const void* data, std::size_t bytes);
  /// Takes the next item into `out` (header in front). Returns false when the queue is
  /// closed and drained; throws Empty on timeout or get_nowait (remote).
  bool get(Blob& out, Clock::time_point deadline, bool block, const char* operation);

  struct State {
    std::int64_t size = 0;
    bool closed = false;
  };
  /// The host's counts, with every put this rank made before counted (remote).
  State state();
  /// Closes the queue for every rank; returns when no rank can put any more (remote).
  void close();
  /// True once this rank knows the queue is closed (local).
  [[nodiscard]] bool closed_here() const;
  /// JoinableQueue.task_done (remote).
  void task_done();
  /// JoinableQueue.join (remote).
  void join();

  bool progress() override;
  [[nodiscard]] const char* service_name() const noexcept override { return name_.c_str(); }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] std::int64_t maxsize() const noexcept { return params_.maxsize; }
  [[nodiscard]] int host() const noexcept { return params_.host; }

 private:
  enum class SlotState { waiting, item, ack, empty, closed, cancelled, state, error };
  struct Slot {
    SlotState state = SlotState::waiting;
    Blob blob;
    std::int64_t a = 0;
    std::int64_t b = 0;
  };
  struct Waiter {
    int rank = -1;
    std::uint64_t id = 0;
  };
  struct PendingPut {
    Waiter who;
    Blob item;
  };
  struct Incoming {
    int source = -1;
    int tag = 0;
    Blob blob;
    MPI_Request request = MPI_REQUEST_NULL;
  };
  enum class Phase { open, closing, closed };

  static QueueParams numbered(std::string_view kind, QueueParams params);
  static Communicator checked_duplicate(const Communicator& comm, std::string_view kind,
                                        const QueueParams& params, const std::string& name);
  [[nodiscard]] bool bounded() const noexcept { return params_.maxsize > 0; }
  bool progress_locked();
  void flush_batch_locked();
  bool streaming_put() noexcept;
  [[nodiscard]] bool would_stream() const noexcept;
  void append_to_batch(const char* data, std::size_t bytes);
  void poll_other_queues();
  void handle_host(Incoming& m);
  void handle_client(Incoming& m);
  void post(int dest, int tag, Blob blob);
  void post_header(int dest, int tag, std::uint64_t id, std::int64_t a = 0, std::int64_t b = 0);
  void send_now(int dest, int tag, Blob& blob);
  std::uint64_t new_slot();
  void fill_slot(std::uint64_t id, SlotState state, Blob blob = {}, std::int64_t a = 0,
                 std::int64_t b = 0);
  Slot take_slot(std::uint64_t id);
  Slot* find_slot(std::uint64_t id);
  bool slot_done(std::uint64_t id) const;
  bool wait_slot(std::uint64_t id, Clock::time_point deadline, const char* operation);
  /// Client: sends a request and waits for its final reply, cancelling at the deadline.
  Slot client_request(int tag, Blob blob, Clock::time_point deadline, const char* operation);

  // host side (mutex held)
  [[nodiscard]] bool room() const noexcept;
  void accept(Blob&& item);
  void give(const Waiter& w, Blob&& item);
  void after_pop();
  void admit_putters();
  std::int64_t grant(int rank);
  void reply(const Waiter& w, SlotState state, std::int64_t a = 0, std::int64_t b = 0);
  void request_flush(const Waiter& w, bool closing);
  void maybe_start_round();
  void finish_round();
  void fail_waiting_getters();
  bool remove_waiter(std::deque<Waiter>& list, const Waiter& w);

  QueueParams params_;
  std::string name_;
  Communicator comm_;
  int rank_ = 0;
  int size_ = 1;
  bool is_host_ = false;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  int sleepers_ = 0;

  std::deque<Incoming> inbox_;
  std::vector<MPI_Request> out_requests_;
  std::vector<Blob> out_blobs_;
  std::vector<int> out_indices_;

  std::vector<std::pair<std::uint64_t, Slot>> slots_;
  std::uint64_t next_id_ = 1;

  // client
  bool client_closed_ = false;
  std::int64_t credits_ = 0;
  Blob batch_;  // coalesced puts not yet sent (see queue.cpp)
  std::size_t batch_count_ = 0;
  std::uint64_t batch_started_ = 0;

  // host
  Phase phase_ = Phase::open;
  std::deque<Blob> items_;
  std::deque<Waiter> getters_;
  std::deque<PendingPut> putters_;
  std::int64_t reserved_ = 0;
  std::int64_t unfinished_ = 0;
  std::vector<Waiter> joiners_;
  bool round_active_ = false;
  bool round_closing_ = false;
  int acks_needed_ = 0;
  std::int64_t epoch_ = 0;
  std::vector<Waiter> round_closers_, round_joiners_, next_closers_, next_joiners_;
  bool next_closing_ = false;

  bool attached_ = false;
};

}  // namespace mpx::detail
