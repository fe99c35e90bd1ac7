// mpx/pool.hpp: Python's multiprocessing.Pool over the ranks of an MPI job.
//
//   int function_square(int x) { return x * x; }
//   MPX_REGISTER(function_square);                  // free functions cross ranks by name
//
//   int main(int argc, char** argv) {
//     mpx::Environment env(argc, argv);
//     if (auto pool = mpx::Pool::serve()) {         // collective; rank 0 drives, others work
//       auto squares = pool.map(function_square, std::views::iota(0, 100));
//       for (int r : pool.imap_unordered([](int x) { return x + 10; }, std::vector{1, 2, 3}))
//         std::printf("%d\n", r);
//     }                                             // the pool ends: every rank goes on here
//   }
//
// serve() is the SPMD entry point, as mpi4py's MPICommExecutor: on the driver (rank 0 by
// default) it returns a live pool, which converts to true; on every other rank it serves
// tasks until the driver's pool is closed and joined, terminated or destroyed, then returns
// an empty pool (false), so the body of the `if` runs on the driver only. Run alone (no
// mpiexec, or a communicator of one rank) a worker thread runs the tasks in-process: the same
// program works unchanged.
//
// How work moves: workers pull. The driver hands each worker a chunk and one more in
// advance; a worker's result is its request for the next chunk, so fast workers take more
// and slow tasks never leave others idle. map/imap return results in input order. Chunks of
// plain data travel as raw bytes: a long one straight from the caller's input, its results
// straight into the output vector; a registered function (MPX_REGISTER) runs over a chunk
// in a compiled loop, as fast as a hand-written one. The driver's waits (get(), map(),
// iterating imap) and its progress thread sleep with backoff, so a driver rank costs about
// 1% of a core: start one rank more than you have cores. A worker stays quick to react for
// a few milliseconds after each task (it yields, then sleeps with backoff too).
//
// Failures: a task that throws reaches get() as mpx::RemoteError naming the worker's rank,
// the exception's type and message; the pool stays usable. A worker that dies (crash,
// abort) makes mpiexec end the whole job within about a second with a message naming the
// rank, so the driver never waits for ever; a worker stuck in an endless task is not
// detected (set MPX_HANG_TIMEOUT to have waits end the job).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <span>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "mpx/communicator.hpp"
#include "mpx/detail/pool_registry.hpp"
#include "mpx/detail/wait.hpp"
#include "mpx/error.hpp"

namespace mpx {

/// How a Pool is set up (the same on every rank).
struct PoolOptions {
  /// Rank of the communicator that drives the pool (submits tasks, receives results).
  int driver = 0;
  /// Number of workers to use, as Python's Pool(processes=...); 0 means every rank but the
  /// driver (or one in-process worker thread when the communicator has a single rank).
  int processes = 0;
};

/// Options of one map / starmap / imap call.
struct MapOptions {
  /// Items per task message; 0 chooses automatically as Python does (len / (4 x workers),
  /// rounded up; imap caps it at 1024 so memory stays bounded).
  std::size_t chunksize = 0;
  /// Show a live progress bar on stderr of the driver while the call runs.
  bool progress = false;
};

namespace detail {

using Deferred = std::vector<std::function<void()>>;

/// One submitted call (map, apply_async, imap...), as the driver's service sees it. The typed
/// layer below fills the hooks; the service calls them on the progress thread with its lock
/// held (user callbacks are pushed to `later` and run after the lock is released).
struct JobCore {
  std::string operation;  // "map", "imap_unordered", ...
  InvokerId invoker;
  std::vector<char> state;        // the callable's bytes
  std::uint64_t total_items = 0;  // for the progress bar; 0 when unknown
  bool progress_bar = false;
  /// False: the first failed chunk fails the whole job (map); true: every chunk reports
  /// (imap).
  bool keep_going_after_error = false;
  /// Appends the next chunk's arguments (put_items) to `args`; false when the input is
  /// exhausted. Null for jobs fed from the caller's thread (imap). Given a `view`, a chunk of
  /// plain-data items may instead append only their count and point *view at the items,
  /// which stay valid while the job lives: the driver sends them from there.
  std::function<bool(std::vector<char>& args, std::span<const char>* view)> generate;
  /// Where the `n` plain-data results of `chunk` can be received in place (their bytes), or
  /// an empty span. Null when results must go through on_result.
  std::function<std::span<char>(std::uint64_t chunk, std::uint64_t n)> landing;
  /// Run once by submit() after the first chunks have left (before any result is taken
  /// in): prepares the output while the workers start. May be null.
  std::function<void()> prepare;
  std::function<void(std::uint64_t chunk, Reader& results, Deferred& later)> on_result;
  /// A chunk failed; chunk is UINT64_MAX when the pool was terminated under the job.
  std::function<void(std::uint64_t chunk, std::exception_ptr error, Deferred& later)> on_error;
  /// Every chunk is back (or the job failed and its chunks in flight are back).
  std::function<void(Deferred& later)> on_finished;

  // Bookkeeping of the service (guarded by its lock).
  std::uint64_t id = 0;
  std::deque<std::pair<std::uint64_t, std::vector<char>>> fed;  // chunks waiting to be sent
  std::uint64_t produced = 0;  // chunks created so far (their indices are 0..produced-1)
  std::uint64_t returned = 0;  // chunks whose result or error came back
  bool input_done = false;
  bool failed = false;              // stop sending this job's chunks
  std::uint64_t views_pending = 0;  // sends from the job's own input not yet complete
  std::exception_ptr held_error;    // a failure reported once views_pending is 0
  std::uint64_t items_done = 0;
  double started = 0, last_drawn = 0;
};

class PoolCore;

/// Wakes threads that wait for results. The progress thread calls notify() when a result
/// arrives; a waiter sleeps on a condition variable (no core used, woken at once) in slices
/// of a few milliseconds, between which it runs mpx's wait hooks (the Process interruption
/// hook and the hang doctor), as detail::wait_until does.
struct Signal {
  std::mutex mutex;
  std::condition_variable cv;
  std::uint64_t generation = 0;
  void notify() {
    {
      std::lock_guard lock(mutex);
      ++generation;
    }
    cv.notify_all();
  }
  /// Waits until the next notify() after `seen`, or `until` (local).
  void sleep(std::uint64_t seen, Clock::time_point until);
  [[nodiscard]] std::uint64_t current() {
    std::lock_guard lock(mutex);
    return generation;
  }
};

/// Calls `ready()` until it returns true (true) or `deadline` passes (false), sleeping on
/// `signal` in between.
template <class Ready>
bool wait_for_signal(Signal& signal, Ready&& ready, Clock::time_point deadline,
                     const WaitSite& site) {
  const auto since = Clock::now();
  for (std::uint32_t n = 1;; ++n) {
    const auto seen = signal.current();
    if (ready()) return true;
    const auto now = Clock::now();
    if (deadline != no_deadline && now >= deadline) return false;
    const auto slice = now + std::chrono::milliseconds(5);
    signal.sleep(seen, deadline < slice ? deadline : slice);
    if (interrupt_hook) interrupt_hook();
    if ((n & 63u) == 0) note_long_wait(site, since);
  }
}

/// Shared state of an AsyncResult.
template <class T>
struct ResultState {
  Signal signal;
  std::atomic<bool> ready{false};
  bool success = false;
  std::optional<T> value;
  std::exception_ptr error;
  std::string name;  // "Pool#1.map_async"
};

template <class T>
struct is_std_vector : std::false_type {};
template <class E, class A>
struct is_std_vector<std::vector<E, A>> : std::true_type {};

}  // namespace detail

/// The result of an asynchronous Pool call (Python's AsyncResult): a cheap copyable handle.
/// Lives on the driver only.
template <class T>
class AsyncResult {
  using Stored = std::conditional_t<std::is_void_v<T>, detail::NoValue, T>;

 public:
  /// An AsyncResult that refers to no call (valid() is false).
  AsyncResult() = default;

  /// True if this handle refers to a call (local).
  [[nodiscard]] bool valid() const noexcept { return state_ != nullptr; }
  /// True once the call has completed, successfully or not (local).
  [[nodiscard]] bool ready() const {
    require("ready");
    return state_->ready.load(std::memory_order_acquire);
  }
  /// True if the call completed without an exception; UsageError while it is not ready, as
  /// Python's ValueError (local).
  [[nodiscard]] bool successful() const {
    if (!ready())
      detail::fail(state_->name, "successful",
                   "the result is not ready yet; call wait() or check ready() first");
    return state_->success;
  }
  /// Waits until the call has completed (remote: waits on the workers, without spinning).
  void wait() const { wait_until(detail::no_deadline); }
  /// Waits at most `timeout`; returns ready() (remote). Negative timeouts are a UsageError.
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) const {
    require("wait");
    return wait_until(detail::deadline_after(timeout, state_->name, "wait"));
  }
  /// Waits, then returns the result or throws the task's mpx::RemoteError (or ClosedError if
  /// the pool was terminated first) (remote). May be called again: returns a copy.
  T get() const {
    wait();
    return take_copy();
  }
  /// Same, but throws mpx::TimeoutError if the result is not ready within `timeout`; the
  /// call keeps running and get() may be called again (remote).
  template <class Rep, class Period>
  T get(std::chrono::duration<Rep, Period> timeout) const {
    require("get");
    if (!wait_until(detail::deadline_after(timeout, state_->name, "get")))
      detail::fail<TimeoutError>(state_->name, "get",
                                 "the result was not ready within the timeout; the task keeps "
                                 "running, call get() again to wait longer");
    return take_copy();
  }

  /// Used by mpx: wraps a shared state.
  explicit AsyncResult(std::shared_ptr<detail::ResultState<Stored>> state)
      : state_(std::move(state)) {}
  /// Used by Pool::map: waits, then moves the value out (the handle is spent).
  T take() {
    wait();
    if (!state_->success) std::rethrow_exception(state_->error);
    if constexpr (!std::is_void_v<T>) return std::move(*state_->value);
  }

 private:
  void require(const char* operation) const {
    if (!state_) detail::fail("AsyncResult", operation, "this AsyncResult refers to no call");
  }
  bool wait_until(detail::Clock::time_point deadline) const {
    require("wait");
    auto* s = state_.get();
    return detail::wait_for_signal(s->signal,
                                   [s] { return s->ready.load(std::memory_order_acquire); },
                                   deadline, {s->name, "get", -1});
  }
  T take_copy() const {
    if (!state_->success) std::rethrow_exception(state_->error);
    if constexpr (!std::is_void_v<T>) return *state_->value;
  }
  std::shared_ptr<detail::ResultState<Stored>> state_;
};

/// The results of imap / imap_unordered (Python's IMapIterator): an input range whose items
/// arrive as workers finish. The input is read lazily and only a bounded window of chunks is
/// in flight, so huge or endless inputs work. Move-only; lives on the driver.
template <class R>
class IMapIterator {
 public:
  struct State {
    detail::Signal signal;
    std::mutex mutex;
    std::map<std::uint64_t, std::vector<R>> done;        // ordered: chunk -> results
    std::map<std::uint64_t, std::exception_ptr> errors;  // ordered: chunk -> error
    std::deque<std::vector<R>> arrived;                  // unordered: in arrival order
    std::deque<std::exception_ptr> arrived_errors;
    std::exception_ptr terminated;  // set when the pool was terminated
  };

  /// Next result, or std::nullopt after the last one; throws the task's RemoteError for a
  /// failed chunk, then continues with the next one (remote: waits for workers).
  std::optional<R> next() { return next_until(detail::no_deadline); }
  /// Same, but throws mpx::TimeoutError when nothing arrives within `timeout` (remote).
  template <class Rep, class Period>
  std::optional<R> next(std::chrono::duration<Rep, Period> timeout) {
    return next_until(detail::deadline_after(timeout, name_, "next"));
  }

  class iterator {
   public:
    using value_type = R;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(IMapIterator* owner) : owner_(owner) { advance(); }
    const R& operator*() const { return *current_; }
    const R* operator->() const { return &*current_; }
    iterator& operator++() {
      advance();
      return *this;
    }
    void operator++(int) { advance(); }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return !it.current_; }

   private:
    void advance() { current_ = owner_->next(); }
    IMapIterator* owner_ = nullptr;
    std::optional<R> current_;
  };
  /// Starts iterating (remote: waits for the first result). Iterate once.
  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() const noexcept { return {}; }

  IMapIterator(IMapIterator&&) noexcept = default;
  IMapIterator& operator=(IMapIterator&&) noexcept = default;
  IMapIterator(const IMapIterator&) = delete;
  IMapIterator& operator=(const IMapIterator&) = delete;
  ~IMapIterator() = default;

  /// Used by mpx.
  IMapIterator(std::shared_ptr<detail::PoolCore> core, std::shared_ptr<detail::JobCore> job,
               std::shared_ptr<State> state, std::function<bool(std::vector<char>&)> read_chunk,
               bool ordered, std::size_t window, std::string name)
      : core_(std::move(core)),
        job_(std::move(job)),
        state_(std::move(state)),
        read_chunk_(std::move(read_chunk)),
        ordered_(ordered),
        window_(window),
        name_(std::move(name)) {
    feed();
  }

 private:
  void feed();
  std::optional<R> next_until(detail::Clock::time_point deadline);

  std::shared_ptr<detail::PoolCore> core_;  // kept alive: the iterator may outlive the Pool
  std::shared_ptr<detail::JobCore> job_;
  std::shared_ptr<State> state_;
  std::function<bool(std::vector<char>&)> read_chunk_;
  bool ordered_ = true;
  std::size_t window_ = 1;
  std::string name_;
  std::uint64_t fed_ = 0;       // chunks handed to the pool
  std::uint64_t consumed_ = 0;  // chunks taken out by next()
  bool input_done_ = false;
  std::vector<R> current_;
  std::size_t position_ = 0;
};

/// Python's multiprocessing.Pool over the ranks of a communicator (see the top of this
/// file). Move-only. Every call below is for the driver; on a worker rank the pool is empty
/// and calls are a UsageError.
class Pool {
 public:
  /// Creates the pool (collective over `comm`): checks that every rank runs the identical
  /// binary and passed the same options, then on the driver returns a live pool and on
  /// every other rank serves tasks until the driver's pool ends, then returns an empty one.
  static Pool serve(const PoolOptions& options = {},
                    const Communicator& comm = Communicator::world());

  /// Same, running `initializer(initargs...)` once on every worker before it takes tasks
  /// (Python's initializer/initargs). Every rank passes the initializer; the arguments of
  /// the driver are the ones used. If it throws on any worker, serve() throws RemoteError
  /// on every rank.
  template <class Init, class... Args>
  static Pool serve(const PoolOptions& options, Init initializer, std::tuple<Args...> initargs,
                    const Communicator& comm = Communicator::world());

  /// An empty pool (what workers get).
  Pool() noexcept;
  Pool(Pool&&) noexcept;
  Pool& operator=(Pool&&) noexcept;
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  /// Terminates the pool if it is still running (Python's `with` block); never throws.
  ~Pool();

  /// True on the driver of a running or joined pool (local).
  explicit operator bool() const noexcept { return core_ != nullptr; }
  /// Number of workers (local).
  [[nodiscard]] int processes() const;
  /// "Pool#N" (local).
  [[nodiscard]] const std::string& name() const;

  /// Applies `f` to every item of `inputs`; results in input order (remote). Throws the
  /// first failed task's RemoteError.
  template <class F, std::ranges::input_range Range>
  auto map(F f, Range&& inputs, MapOptions options = {});
  /// map() without waiting; `callback(const std::vector<R>&)` or
  /// `error_callback(const mpx::Error&)` runs on the driver's progress thread before the
  /// result becomes ready (local).
  template <class F, std::ranges::input_range Range, class Callback = std::nullptr_t,
            class ErrorCallback = std::nullptr_t>
  auto map_async(F f, Range&& inputs, MapOptions options = {}, Callback callback = nullptr,
                 ErrorCallback error_callback = nullptr);

  /// Like map(), each item a std::tuple / std::pair unpacked into f's arguments (remote).
  template <class F, std::ranges::input_range Range>
  auto starmap(F f, Range&& inputs, MapOptions options = {});
  /// starmap() without waiting (local).
  template <class F, std::ranges::input_range Range, class Callback = std::nullptr_t,
            class ErrorCallback = std::nullptr_t>
  auto starmap_async(F f, Range&& inputs, MapOptions options = {}, Callback callback = nullptr,
                     ErrorCallback error_callback = nullptr);

  /// Lazy map: results in input order as they become available (local; iterating waits).
  template <class F, std::ranges::input_range Range>
  auto imap(F f, Range&& inputs, MapOptions options = {});
  /// Lazy map: results in completion order (local; iterating waits).
  template <class F, std::ranges::input_range Range>
  auto imap_unordered(F f, Range&& inputs, MapOptions options = {});

  /// Runs f(args...) on one worker and returns its result (remote).
  template <class F, class... Args>
  auto apply(F f, Args... args);
  /// Runs f(args...) on one worker without waiting; args as a tuple, as Python's
  /// apply_async(f, (20,)); `callback(const R&)` (or `callback()` for void) and
  /// `error_callback(const mpx::Error&)` run on the driver's progress thread (local).
  template <class F, class... Args, class Callback = std::nullptr_t,
            class ErrorCallback = std::nullptr_t>
  auto apply_async(F f, std::tuple<Args...> args = {}, Callback callback = nullptr,
                   ErrorCallback error_callback = nullptr);

  /// No more tasks may be submitted; those submitted finish (local).
  void close();
  /// Discards tasks not yet started (their results fail with ClosedError) and stops the
  /// workers once their current task ends (remote: waits for the running tasks).
  void terminate();
  /// Waits for every submitted task and stops the workers; only after close() or
  /// terminate(), as in Python (remote).
  void join();

 private:
  explicit Pool(std::unique_ptr<detail::PoolCore> core) noexcept;
  static Pool start(const PoolOptions& options, const Communicator& comm,
                    std::function<void(std::span<const char>)> initializer,
                    std::vector<char> initargs);
  void require_driver(const char* operation) const;

  template <bool Star, class F, class Item, class Input, class Callback, class ErrorCallback>
  auto submit_map(const char* operation, F f, Input input, MapOptions options, Callback callback,
                  ErrorCallback error_callback);
  template <bool Star, class F, class Range>
  auto map_now(const char* operation, F f, Range&& inputs, MapOptions options);
  template <bool Star, class F, class Range>
  auto submit_imap(const char* operation, F f, Range&& inputs, MapOptions options, bool ordered);

  std::shared_ptr<detail::PoolCore> core_;
};

// ---- implementation -----------------------------------------------------------------------

namespace detail {

/// The driver side of a pool (lib/src/pool.cpp); the templates above talk to it.
class PoolCore {
 public:
  virtual ~PoolCore() = default;
  /// Throws UsageError if the pool no longer accepts tasks.
  virtual void check_open(std::string_view operation) const = 0;
  /// Hands a job to the service (local).
  virtual void submit(const std::shared_ptr<JobCore>& job) = 0;
  /// Adds one chunk (args from put_items) to a fed job, or marks its input finished.
  virtual void feed(JobCore& job, std::vector<char> args) = 0;
  virtual void feed_end(JobCore& job) = 0;
  virtual int workers() const noexcept = 0;
  virtual const std::string& name() const noexcept = 0;
  virtual void close() = 0;
  virtual void terminate() noexcept = 0;
  virtual void join() = 0;
};

/// Python's automatic chunk size for `n` items over `workers` workers.
inline std::size_t auto_chunksize(std::size_t n, int workers) {
  const std::size_t d = static_cast<std::size_t>(workers > 0 ? workers : 1) * 4;
  std::size_t c = n / d + (n % d ? 1 : 0);
  return c == 0 ? 1 : c;
}

/// Converts a caught exception into the error stored in a result.
template <class Callback, class... A>
void invoke_callback(Callback& callback, A&&... a) {
  if constexpr (!std::is_same_v<Callback, std::nullptr_t>) {
    if constexpr (std::is_invocable_v<Callback&, A...>)
      std::invoke(callback, std::forward<A>(a)...);
    else
      std::invoke(callback);
  }
}

/// Calls error_callback with the Error held in `error`.
template <class ErrorCallback>
void invoke_error_callback(ErrorCallback& callback, const std::exception_ptr& error) {
  if constexpr (!std::is_same_v<ErrorCallback, std::nullptr_t>) {
    try {
      std::rethrow_exception(error);
    } catch (const Error& e) {
      std::invoke(callback, e);
    } catch (...) {
    }
  }
}

/// Reports an exception thrown by a user callback (they run on the progress thread).
void report_callback_failure(const std::string& name, const char* which) noexcept;

template <class T>
void finish_ok(ResultState<T>& s, T value) {
  s.value.emplace(std::move(value));
  s.success = true;
  s.ready.store(true, std::memory_order_release);
  s.signal.notify();
}
template <class T>
void finish_error(ResultState<T>& s, std::exception_ptr error) {
  s.error = std::move(error);
  s.success = false;
  s.ready.store(true, std::memory_order_release);
  s.signal.notify();
}

/// The input of a map call: a span of items, kept alive by `owner` when it owns them.
template <class Item>
struct SpanInput {
  std::span<const Item> items;
  std::shared_ptr<const void> owner;
  [[nodiscard]] std::size_t size() const noexcept { return items.size(); }
  /// Appends items at..at+n (put_items), or only their count with *view pointing at them.
  void put(std::vector<char>& args, std::size_t at, std::size_t n,
           std::span<const char>* view) const {
    const auto part = items.subspan(at, n);
    if constexpr (trivially_sendable<Item>) {
      if (view) {  // sent straight from the input, no copy
        put_raw(args, static_cast<std::uint64_t>(n));
        *view =
            std::span<const char>(reinterpret_cast<const char*>(part.data()), part.size_bytes());
        return;
      }
    }
    put_items<Item>(args, part);
  }
};

template <class T>
struct is_integer_iota : std::false_type {};
template <std::integral W, std::integral B>
struct is_integer_iota<std::ranges::iota_view<W, B>> : std::true_type {};

/// std::views::iota(a, b) over integers, Python's range(a, b): each chunk is computed as it
/// is sent, the input is never copied whole (Python's Pool.map reads a range lazily too).
template <class Item, class View>
struct IotaInput {
  View view;
  [[nodiscard]] std::size_t size() const {
    return static_cast<std::size_t>(std::ranges::size(view));
  }
  void put(std::vector<char>& args, std::size_t at, std::size_t n, std::span<const char>*) const {
    put_raw(args, static_cast<std::uint64_t>(n));
    const std::size_t old = args.size();
    args.resize(old + n * sizeof(Item));
    char* out = args.data() + old;
    auto it = std::ranges::begin(view) + static_cast<std::ranges::range_difference_t<View>>(at);
    for (std::size_t i = 0; i < n; ++i, ++it) {
      const Item x = static_cast<Item>(*it);
      std::memcpy(out + i * sizeof(Item), &x, sizeof(Item));
    }
  }
};

template <class Range>
auto materialize(Range&& inputs) {
  using Item = std::remove_cvref_t<std::ranges::range_value_t<Range>>;
  auto items = std::make_shared<std::vector<Item>>();
  if constexpr (std::ranges::sized_range<Range>) items->reserve(std::ranges::size(inputs));
  for (auto&& x : inputs) items->push_back(static_cast<Item>(x));
  return std::shared_ptr<const std::vector<Item>>(std::move(items));
}

}  // namespace detail

template <class Init, class... Args>
Pool Pool::serve(const PoolOptions& options, Init initializer, std::tuple<Args...> initargs,
                 const Communicator& comm) {
  static_assert(std::is_invocable_v<Init&, Args&...>,
                "the initializer must be callable with the initargs");
  std::vector<char> bytes;
  detail::put(bytes, initargs);
  return start(
      options, comm,
      [initializer](std::span<const char> driver_args) mutable {
        detail::Reader in(driver_args);
        auto args = detail::get<std::tuple<Args...>>(in);
        std::apply(initializer, args);
      },
      std::move(bytes));
}

template <bool Star, class F, class Item, class Input, class Callback, class ErrorCallback>
auto Pool::submit_map(const char* operation, F f, Input input, MapOptions options,
                      Callback callback, ErrorCallback error_callback) {
  detail::check_shippable<F>();
  using Raw = detail::call_result_t<Star, F, Item>;
  static_assert(!std::is_void_v<Raw>,
                "map/starmap need a function that returns a value; use apply_async for "
                "functions that return void");
  using R = detail::stored_t<Raw>;
  using Result = std::vector<R>;
  require_driver(operation);
  core_->check_open(operation);
  auto state = std::make_shared<detail::ResultState<Result>>();
  state->name = core_->name() + "." + operation;
  auto job = std::make_shared<detail::JobCore>();
  job->operation = operation;
  job->invoker = detail::Invoker<F, Star, Item>::id;
  job->state = detail::callable_state(f, operation);
  const std::size_t total = input.size();
  job->total_items = total;
  job->progress_bar = options.progress;
  job->input_done = total == 0;
  const std::size_t chunk =
      options.chunksize ? options.chunksize : detail::auto_chunksize(total, core_->workers());
  auto cursor = std::make_shared<std::size_t>(0);
  job->generate = [input = std::move(input), total, chunk, cursor](std::vector<char>& args,
                                                                   std::span<const char>* view) {
    if (*cursor >= total) return false;
    const std::size_t n = std::min(chunk, total - *cursor);
    input.put(args, *cursor, n, view);
    *cursor += n;
    return true;
  };
  // Results go straight to their place in the final vector when R is plain data; otherwise
  // chunk by chunk, joined at the end.
  constexpr bool direct = detail::trivially_sendable<R> && std::is_default_constructible_v<R> &&
                          !std::is_same_v<R, bool>;  // std::vector<bool> has no data()
  auto all = std::make_shared<Result>();
  auto parts = std::make_shared<std::vector<std::vector<R>>>();
  if constexpr (direct) {
    // Sized (and its pages touched) while the first chunks are on their way.
    job->prepare = [all, total] { all->resize(total); };
    job->landing = [all, chunk](std::uint64_t index, std::uint64_t n) -> std::span<char> {
      const std::size_t at = static_cast<std::size_t>(index) * chunk;
      if (at > all->size() || n > all->size() - at) return {};
      return {reinterpret_cast<char*>(all->data() + at), static_cast<std::size_t>(n) * sizeof(R)};
    };
  } else {
    parts->resize((total + chunk - 1) / chunk);
  }
  job->on_result = [all, parts, chunk](std::uint64_t index, detail::Reader& in, detail::Deferred&) {
    if constexpr (direct) {
      const auto n = static_cast<std::size_t>(in.raw<std::uint64_t>());
      const std::size_t at = static_cast<std::size_t>(index) * chunk;
      if (at + n > all->size()) throw std::out_of_range("mpx: a result chunk does not fit");
      const auto bytes = in.take(n * sizeof(R));
      if (n) std::memcpy(static_cast<void*>(all->data() + at), bytes.data(), bytes.size());
    } else {
      detail::get_items(in, (*parts)[index]);
    }
  };
  job->on_error = [state, error_callback](std::uint64_t, std::exception_ptr error,
                                          detail::Deferred& later) mutable {
    later.push_back([state, error_callback, error]() mutable {
      try {
        detail::invoke_error_callback(error_callback, error);
      } catch (...) {
        detail::report_callback_failure(state->name, "error_callback");
      }
      detail::finish_error(*state, error);
    });
  };
  job->on_finished = [state, all, parts, callback](detail::Deferred& later) mutable {
    later.push_back([state, all, parts, callback]() mutable {
      if constexpr (!direct) {
        std::size_t n = 0;
        for (const auto& p : *parts) n += p.size();
        all->reserve(n);
        for (auto& p : *parts) {
          std::move(p.begin(), p.end(), std::back_inserter(*all));
          std::vector<R>().swap(p);
        }
      }
      try {
        detail::invoke_callback(callback, std::as_const(*all));
      } catch (...) {
        detail::report_callback_failure(state->name, "callback");
      }
      detail::finish_ok(*state, std::move(*all));
    });
  };
  core_->submit(job);
  return AsyncResult<Result>(std::move(state));
}

template <bool Star, class F, class Range>
auto Pool::map_now(const char* operation, F f, Range&& inputs, MapOptions options) {
  using Item = std::remove_cvref_t<std::ranges::range_value_t<Range>>;
  if constexpr (std::ranges::contiguous_range<Range> && std::ranges::sized_range<Range>) {
    // The call waits for its result, so the caller's elements can be read in place.
    const std::span<const Item> items(std::ranges::data(inputs), std::ranges::size(inputs));
    return submit_map<Star, F, Item>(operation, std::move(f),
                                     detail::SpanInput<Item>{items, nullptr}, options, nullptr,
                                     nullptr)
        .take();
  } else if constexpr (detail::is_integer_iota<std::remove_cvref_t<Range>>::value) {
    return submit_map<Star, F, Item>(operation, std::move(f),
                                     detail::IotaInput<Item, std::remove_cvref_t<Range>>{inputs},
                                     options, nullptr, nullptr)
        .take();
  } else {
    auto owned = detail::materialize(std::forward<Range>(inputs));
    const std::span<const Item> items(*owned);
    return submit_map<Star, F, Item>(operation, std::move(f),
                                     detail::SpanInput<Item>{items, std::move(owned)}, options,
                                     nullptr, nullptr)
        .take();
  }
}

template <bool Star, class F, class Range>
auto Pool::submit_imap(const char* operation, F f, Range&& inputs, MapOptions options,
                       bool ordered) {
  detail::check_shippable<F>();
  using View = std::views::all_t<Range>;
  using Item = std::remove_cvref_t<std::ranges::range_value_t<View>>;
  using Raw = detail::call_result_t<Star, F, Item>;
  static_assert(!std::is_void_v<Raw>, "imap needs a function that returns a value");
  using R = detail::stored_t<Raw>;
  using Iter = IMapIterator<R>;
  require_driver(operation);
  core_->check_open(operation);

  struct Input {
    explicit Input(View v) : view(std::move(v)) {}
    View view;
    std::optional<std::ranges::iterator_t<View>> it;
  };
  auto input = std::make_shared<Input>(std::views::all(std::forward<Range>(inputs)));
  std::size_t chunk = options.chunksize;
  std::uint64_t total = 0;
  if constexpr (std::ranges::sized_range<View>) total = std::ranges::size(input->view);
  if (chunk == 0) {
    if constexpr (std::ranges::sized_range<View>)
      chunk = std::min<std::size_t>(detail::auto_chunksize(total, core_->workers()), 1024);
    else
      chunk = 64;
  }
  auto read_chunk = [input, chunk](std::vector<char>& args) {
    if (!input->it) input->it = std::ranges::begin(input->view);
    std::vector<Item> buffer;
    auto& it = *input->it;
    while (buffer.size() < chunk && it != std::ranges::end(input->view)) {
      buffer.push_back(static_cast<Item>(*it));
      ++it;
    }
    if (buffer.empty()) return false;
    detail::put_items<Item>(args, buffer);
    return true;
  };

  auto state = std::make_shared<typename Iter::State>();
  auto job = std::make_shared<detail::JobCore>();
  job->operation = operation;
  job->invoker = detail::Invoker<F, Star, Item>::id;
  job->state = detail::callable_state(f, operation);
  job->total_items = total;
  job->progress_bar = options.progress;
  job->on_result = [state, ordered](std::uint64_t index, detail::Reader& in, detail::Deferred&) {
    std::vector<R> values;
    detail::get_items(in, values);
    {
      std::lock_guard lock(state->mutex);
      if (ordered)
        state->done.emplace(index, std::move(values));
      else
        state->arrived.push_back(std::move(values));
    }
    state->signal.notify();
  };
  job->on_error = [state, ordered](std::uint64_t index, std::exception_ptr error,
                                   detail::Deferred&) {
    {
      std::lock_guard lock(state->mutex);
      if (index == std::uint64_t(-1))
        state->terminated = error;
      else if (ordered)
        state->errors.emplace(index, error);
      else
        state->arrived_errors.push_back(error);
    }
    state->signal.notify();
  };
  job->keep_going_after_error = true;
  job->on_finished = [](detail::Deferred&) {};
  core_->submit(job);
  const auto window = static_cast<std::size_t>(4 * core_->workers() + 2);
  return Iter(core_, std::move(job), std::move(state), std::move(read_chunk), ordered, window,
              core_->name() + "." + operation);
}

template <class F, std::ranges::input_range Range>
auto Pool::map(F f, Range&& inputs, MapOptions options) {
  require_driver("map");
  return map_now<false>("map", std::move(f), std::forward<Range>(inputs), options);
}

template <class F, std::ranges::input_range Range, class Callback, class ErrorCallback>
auto Pool::map_async(F f, Range&& inputs, MapOptions options, Callback callback,
                     ErrorCallback error_callback) {
  require_driver("map_async");
  using Item = std::remove_cvref_t<std::ranges::range_value_t<Range>>;
  if constexpr (detail::is_integer_iota<std::remove_cvref_t<Range>>::value) {
    return submit_map<false, F, Item>("map_async", std::move(f),
                                      detail::IotaInput<Item, std::remove_cvref_t<Range>>{inputs},
                                      options, std::move(callback), std::move(error_callback));
  } else {
    auto owned = detail::materialize(std::forward<Range>(inputs));  // Python's list(iterable)
    const std::span<const Item> items(*owned);
    return submit_map<false, F, Item>("map_async", std::move(f),
                                      detail::SpanInput<Item>{items, std::move(owned)}, options,
                                      std::move(callback), std::move(error_callback));
  }
}

template <class F, std::ranges::input_range Range>
auto Pool::starmap(F f, Range&& inputs, MapOptions options) {
  require_driver("starmap");
  using Item = std::remove_cvref_t<std::ranges::range_value_t<Range>>;
  static_assert(detail::tuple_like<Item>::value,
                "starmap needs items that are std::tuple or std::pair (one element per "
                "argument of the function)");
  return map_now<true>("starmap", std::move(f), std::forward<Range>(inputs), options);
}

template <class F, std::ranges::input_range Range, class Callback, class ErrorCallback>
auto Pool::starmap_async(F f, Range&& inputs, MapOptions options, Callback callback,
                         ErrorCallback error_callback) {
  require_driver("starmap_async");
  using Item = std::remove_cvref_t<std::ranges::range_value_t<Range>>;
  static_assert(detail::tuple_like<Item>::value,
                "starmap needs items that are std::tuple or std::pair (one element per "
                "argument of the function)");
  auto owned = detail::materialize(std::forward<Range>(inputs));
  const std::span<const Item> items(*owned);
  return submit_map<true, F, Item>("starmap_async", std::move(f),
                                   detail::SpanInput<Item>{items, std::move(owned)}, options,
                                   std::move(callback), std::move(error_callback));
}

template <class F, std::ranges::input_range Range>
auto Pool::imap(F f, Range&& inputs, MapOptions options) {
  return submit_imap<false>("imap", std::move(f), std::forward<Range>(inputs), options, true);
}

template <class F, std::ranges::input_range Range>
auto Pool::imap_unordered(F f, Range&& inputs, MapOptions options) {
  return submit_imap<false>("imap_unordered", std::move(f), std::forward<Range>(inputs), options,
                            false);
}

template <class F, class... Args>
auto Pool::apply(F f, Args... args) {
  return apply_async(std::move(f), std::tuple<Args...>(std::move(args)...)).take();
}

template <class F, class... Args, class Callback, class ErrorCallback>
auto Pool::apply_async(F f, std::tuple<Args...> args, Callback callback,
                       ErrorCallback error_callback) {
  detail::check_shippable<F>();
  using Item = std::tuple<Args...>;
  using Raw = detail::call_result_t<true, F, Item>;
  using R = detail::stored_t<Raw>;
  using T = std::conditional_t<std::is_void_v<Raw>, void, R>;
  require_driver("apply_async");
  core_->check_open("apply_async");
  auto state = std::make_shared<detail::ResultState<R>>();
  state->name = core_->name() + ".apply_async";
  auto job = std::make_shared<detail::JobCore>();
  job->operation = "apply_async";
  job->invoker = detail::Invoker<F, true, Item>::id;
  job->state = detail::callable_state(f, "apply_async");
  auto item = std::make_shared<Item>(std::move(args));
  auto sent = std::make_shared<bool>(false);
  job->generate = [item, sent](std::vector<char>& out, std::span<const char>*) {
    if (*sent) return false;
    *sent = true;
    detail::put_items<Item>(out, std::span<const Item>(item.get(), 1));
    return true;
  };
  auto value = std::make_shared<std::vector<R>>();
  job->on_result = [value](std::uint64_t, detail::Reader& in, detail::Deferred&) {
    detail::get_items(in, *value);
  };
  job->on_error = [state, error_callback](std::uint64_t, std::exception_ptr error,
                                          detail::Deferred& later) mutable {
    later.push_back([state, error_callback, error]() mutable {
      try {
        detail::invoke_error_callback(error_callback, error);
      } catch (...) {
        detail::report_callback_failure(state->name, "error_callback");
      }
      detail::finish_error(*state, error);
    });
  };
  job->on_finished = [state, value, callback](detail::Deferred& later) mutable {
    later.push_back([state, value, callback]() mutable {
      R result = std::move(value->front());
      try {
        if constexpr (std::is_void_v<Raw>)
          detail::invoke_callback(callback);
        else
          detail::invoke_callback(callback, std::as_const(result));
      } catch (...) {
        detail::report_callback_failure(state->name, "callback");
      }
      detail::finish_ok(*state, std::move(result));
    });
  };
  core_->submit(job);
  return AsyncResult<T>(std::move(state));
}

template <class R>
void IMapIterator<R>::feed() {
  while (!input_done_ && fed_ - consumed_ < window_) {
    std::vector<char> args;
    if (!read_chunk_(args)) {
      input_done_ = true;
      core_->feed_end(*job_);
      break;
    }
    core_->feed(*job_, std::move(args));
    ++fed_;
  }
}

template <class R>
std::optional<R> IMapIterator<R>::next_until(detail::Clock::time_point deadline) {
  if (!state_)
    detail::fail(name_.empty() ? "IMapIterator" : name_, "next",
                 "this IMapIterator was moved from; use the iterator it was moved to");
  if (position_ < current_.size()) return std::move(current_[position_++]);
  for (;;) {
    std::exception_ptr error;
    bool got = false;
    bool end = false;
    auto ready = [&] {
      feed();
      std::lock_guard lock(state_->mutex);
      if (ordered_) {
        if (auto it = state_->done.find(consumed_); it != state_->done.end()) {
          current_ = std::move(it->second);
          state_->done.erase(it);
          return got = true;
        }
        if (auto it = state_->errors.find(consumed_); it != state_->errors.end()) {
          error = it->second;
          state_->errors.erase(it);
          return true;
        }
      } else {
        if (!state_->arrived.empty()) {
          current_ = std::move(state_->arrived.front());
          state_->arrived.pop_front();
          return got = true;
        }
        if (!state_->arrived_errors.empty()) {
          error = state_->arrived_errors.front();
          state_->arrived_errors.pop_front();
          return true;
        }
      }
      if (state_->terminated) {
        error = state_->terminated;
        end = true;
        return true;
      }
      if (input_done_ && consumed_ == fed_) return end = true;
      return false;
    };
    if (!detail::wait_for_signal(state_->signal, ready, deadline, {name_, "next", -1}))
      detail::fail<TimeoutError>(name_, "next",
                                 "no result arrived within the timeout; the tasks keep running, "
                                 "call next() again to wait longer");
    if (end) {
      input_done_ = true;
      consumed_ = fed_;
      if (error) std::rethrow_exception(error);
      return std::nullopt;
    }
    ++consumed_;
    if (error) std::rethrow_exception(error);
    position_ = 0;
    if (got && position_ < current_.size()) return std::move(current_[position_++]);
  }
}

}  // namespace mpx
