// mpx/queue.hpp: Python's multiprocessing.Queue and JoinableQueue for the ranks of an MPI
// job (one machine or many).
//
//   mpx::Queue<int> q;                        // collective: every rank creates it, in order
//   if (rank is a producer) { for (...) q.put(item); }
//   if (rank is the closer) q.close();        // once every producer is done
//   if (rank is a consumer) {
//     for (int item : q) use(item);           // ends once the queue is closed and drained
//   }
//
// What it guarantees
//   * Any rank may put and get, many producers and many consumers at once. Every item is
//     delivered exactly once; items put by one thread come out in the order it put them.
//   * Items are any type mpx can send: trivially copyable types and std::string /
//     std::vector of them travel as raw bytes, anything else through Boost.Serialization;
//     items of megabytes are fine.
//   * maxsize > 0 bounds the queue: put() blocks while it is full (back-pressure), put with a
//     timeout throws mpx::Full when it stays full, put_nowait() throws mpx::Full at once.
//     maxsize == 0 (the default) means unbounded, as in Python; negative is a UsageError.
//   * get() blocks until an item arrives; get(timeout) throws mpx::Empty when none arrives in
//     time, get_nowait() throws mpx::Empty at once. A negative timeout is a UsageError.
//   * close() ends the stream for every rank: a put() after close() throws mpx::ClosedError;
//     consumers still get every item put before the close, and then get() throws
//     mpx::EOFError (a ClosedError), next() returns std::nullopt and iteration ends. So no
//     sentinel ('DONE') is needed, and the race of Python's `if q.empty(): break` (a
//     consumer that looks before the producer has put anything quits too early) cannot
//     happen: a consumer stops only when the queue is closed *and* drained.
//   * Waiting costs no core: a rank blocked in get() or in a full put() uses about 1-2% of
//     one core (progress thread included), measured by the tests with getrusage.
//
// How it works, and how progress happens without a helping hand
//   The queue's state lives on one host rank (rank 0 of the communicator unless you choose
//   another). The host's progress thread (detail::ProgressEngine, one per rank) serves the
//   other ranks' requests, so puts and gets complete while the host's main thread computes
//   and never calls mpx. On the other ranks the progress thread answers the host's close and
//   join rounds. A thread waiting in get()/put()/join() also drives the queue itself while
//   it waits, so replies are seen within microseconds during traffic; after an idle spell
//   every poller backs off to sleeps of at most MPX_MAX_SLEEP_US (default 1000 us), which
//   bounds the wake-up latency of the first item after a pause.
//   Message costs: a put on an unbounded queue is one message and does not wait for a reply
//   (like Python's, it returns before the item is in the queue; it is never lost). While a
//   thread streams puts of small items (each put within ~20 us of the previous one, with no
//   other queue operation in between) they are coalesced into one message of up to 4 KB;
//   the batch leaves when full, before any other request of this rank to the host, when a
//   thread of this rank waits on a queue, or from the progress thread once it is ~20 us old.
//   An isolated put, and a put in a request/reply exchange, is sent at once. On a bounded
//   queue the host hands out credits with its replies, so a producer waits for a round trip
//   only once per batch of puts, or when the queue is full. A get is one round trip, or one
//   message from the host when a getter is already waiting as the item arrives (the host
//   forwards it directly). On the host rank itself put and get touch only local memory.
//   See bench/bench_queue.cpp and docs/queue.md for measured numbers.
//
// How exact qsize(), empty() and full() are
//   They report the host's count when it answers, as Python's "approximate size": items
//   put by other ranks that are still on the wire are not counted yet. Every put *this
//   rank* made before the call is counted (same channel, in order), and so is every put
//   that another rank made before a close() that has returned. full() is qsize() >= maxsize.
//   On a bounded queue a put can wait while qsize() < maxsize: credits handed to other ranks
//   reserve room for puts they have not made yet (never more than maxsize / 2 in total).
//
// Lifetime: creation and destruction are collective over the communicator (the destructor
// waits, without spinning and while still serving, until every rank has let go), so every
// rank must destroy its queues in the same order (automatic for local variables). Items
// still in the queue when it is destroyed are dropped, as in Python.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "mpx/communicator.hpp"
#include "mpx/detail/queue_core.hpp"
#include "mpx/detail/serialize.hpp"
#include "mpx/detail/wait.hpp"
#include "mpx/error.hpp"

namespace mpx {

/// A FIFO queue shared by the ranks of a communicator (Python's multiprocessing.Queue).
/// Thread-safe; move-only. See the file comment for the guarantees.
template <class T>
class Queue {
 public:
  /// The item type.
  using value_type = T;

  /// Creates the queue (collective over `comm`: every rank calls it with the same
  /// arguments and item type, in the same order as its other queues; a rank that differs
  /// makes every rank throw UsageError). `maxsize` 0 means unbounded; `host` is the rank
  /// that keeps the queue's state.
  explicit Queue(std::int64_t maxsize = 0, const Communicator& comm = Communicator::world(),
                 int host = 0)
      : Queue("Queue", maxsize, comm, host, false) {}

  Queue(Queue&&) noexcept = default;
  Queue& operator=(Queue&&) noexcept = default;
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;
  /// Collective (see the file comment). Never throws.
  ~Queue() = default;

  /// Puts `item`, waiting while a bounded queue is full (remote). Throws ClosedError after
  /// close().
  void put(const T& item) {
    if constexpr (detail::wire_kind<T>() == detail::WireKind::raw) {
      if (core().try_put_small(&item, sizeof(T))) return;  // streamed into the batch: no copy
    }
    core().put(encode(item), detail::no_deadline, true, "put");
  }

  /// Puts `item`, waiting at most `timeout` for room; throws Full when the queue stays full,
  /// ClosedError after close(), UsageError for a negative timeout (remote).
  template <class Rep, class Period>
  void put(const T& item, std::chrono::duration<Rep, Period> timeout) {
    const auto deadline = detail::deadline_after(timeout, core().name(), "put");
    core().put(encode(item), deadline, true, "put");
  }

  /// Puts `item` only if there is room now; throws Full otherwise (remote: one round trip
  /// when this rank holds no credit).
  void put_nowait(const T& item) {
    core().put(encode(item), detail::no_deadline, false, "put_nowait");
  }

  /// Removes and returns the next item, waiting for one (remote). Throws EOFError once the
  /// queue is closed and drained.
  T get() { return take(detail::no_deadline, true, "get"); }

  /// Same, waiting at most `timeout`; throws Empty when nothing arrives in time (remote).
  template <class Rep, class Period>
  T get(std::chrono::duration<Rep, Period> timeout) {
    const auto deadline = detail::deadline_after(timeout, core().name(), "get");
    return take(deadline, true, "get");
  }

  /// Removes and returns an item if one is there now; throws Empty otherwise, EOFError when
  /// closed and drained (remote: one round trip unless this rank hosts the queue).
  T get_nowait() { return take(detail::no_deadline, false, "get_nowait"); }

  /// The next item, or std::nullopt once the queue is closed and drained (remote). The
  /// exception-free form of get() for consumer loops: `while (auto x = q.next()) use(*x);`
  std::optional<T> next() {
    detail::Blob blob;
    if (!core().get(blob, detail::no_deadline, true, "next")) return std::nullopt;
    return decode(blob);
  }

  /// Number of items in the queue, approximately (remote; see "How exact" above).
  [[nodiscard]] std::int64_t qsize() const { return core().state().size; }
  /// qsize() == 0 (remote).
  [[nodiscard]] bool empty() const { return qsize() == 0; }
  /// True when a bounded queue holds maxsize items (remote).
  [[nodiscard]] bool full() const { return maxsize() > 0 && qsize() >= maxsize(); }

  /// Closes the queue for every rank (remote; any rank may call it, more than once). When it
  /// returns, a put() on any rank throws ClosedError, and every item put before is in the
  /// queue for the consumers to drain.
  void close() { core().close(); }
  /// True once this rank knows the queue is closed (local).
  [[nodiscard]] bool closed() const { return core().closed_here(); }

  /// The bound given at creation; 0 when unbounded (local).
  [[nodiscard]] std::int64_t maxsize() const { return core().maxsize(); }
  /// The rank that keeps the queue's state (local).
  [[nodiscard]] int host() const { return core().host(); }
  /// "Queue#N", used in error messages (local).
  [[nodiscard]] const std::string& name() const { return core().name(); }

  /// Input iterator over the items until the queue is closed and drained (remote).
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using pointer = T*;
    using reference = T&;
    /// The end iterator (local).
    iterator() = default;
    /// Takes the first item of `q` (remote).
    explicit iterator(Queue* q) : q_(q) { ++*this; }
    /// The current item (local).
    reference operator*() { return *item_; }
    /// The current item (local).
    pointer operator->() { return &*item_; }
    /// Takes the next item, or becomes the end iterator once the queue is closed and drained
    /// (remote).
    iterator& operator++() {
      item_ = q_->next();
      if (!item_) q_ = nullptr;
      return *this;
    }
    /// Same as ++it (remote).
    void operator++(int) { ++*this; }
    /// Equal when both are the end (local).
    friend bool operator==(const iterator& a, const iterator& b) { return a.q_ == b.q_; }

   private:
    Queue* q_ = nullptr;
    std::optional<T> item_;
  };
  /// Starts consuming: takes the first item (remote).
  iterator begin() { return iterator(this); }
  /// The end of the stream (closed and drained).
  iterator end() { return iterator(); }

 protected:
  Queue(const char* kind, std::int64_t maxsize, const Communicator& comm, int host, bool joinable) {
    detail::check_sendable<T>();
    static_assert(!detail::send_sequence<T>::value || detail::raw_sequence<T>::value,
                  "a queue item must own its data: use std::vector<E> or std::string, not a "
                  "span or string_view");
    detail::QueueParams params;
    params.maxsize = maxsize;
    params.host = host;
    params.joinable = joinable ? 1 : 0;
    params.fingerprint = detail::fingerprint_of<T>();
    core_ = std::make_unique<detail::QueueCore>(comm, kind, params);
  }
  [[nodiscard]] detail::QueueCore& core() const {
    if (!core_)
      detail::fail("Queue", "use", "this queue was moved from; use the queue it was moved to");
    return *core_;
  }

 private:
  static detail::Blob encode(const T& item) {
    detail::Blob blob(detail::queue_header_bytes);
    detail::encode(blob, item);
    return blob;
  }
  static T decode(const detail::Blob& blob) {
    return detail::decode<T>(std::span<const char>(blob).subspan(detail::queue_header_bytes));
  }
  T take(detail::Clock::time_point deadline, bool block, const char* operation) {
    detail::Blob blob;
    if (!core().get(blob, deadline, block, operation))
      detail::fail<EOFError>(core().name(), operation,
                             "the queue is closed and every item has been taken; stop "
                             "consuming (or use next(), which returns std::nullopt here)");
    return decode(blob);
  }

  std::unique_ptr<detail::QueueCore> core_;
};

/// A Queue whose consumers report each item done, so a rank can wait until every item put
/// has been processed (Python's multiprocessing.JoinableQueue).
template <class T>
class JoinableQueue : public Queue<T> {
 public:
  /// Creates the queue (collective, as Queue).
  explicit JoinableQueue(std::int64_t maxsize = 0, const Communicator& comm = Communicator::world(),
                         int host = 0)
      : Queue<T>("JoinableQueue", maxsize, comm, host, true) {}

  /// Marks one item got from the queue as processed (remote: one round trip). Throws
  /// UsageError when called more times than items were put (Python's ValueError).
  void task_done() { this->core().task_done(); }

  /// Waits until every item put so far (by any rank, before this call) has been got and
  /// marked with task_done() (remote).
  void join() { this->core().join(); }
};

}  // namespace mpx
