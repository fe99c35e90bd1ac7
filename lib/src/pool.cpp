#include "mpx/pool.hpp"

#include <cxxabi.h>
#include <elf.h>
#include <link.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <iterator>
#include <mutex>
#include <string>
#include <thread>
#include <typeinfo>
#include <unordered_map>

#include "mpx/detail/check.hpp"
#include "mpx/detail/progress.hpp"
#include "mpx/environment.hpp"

namespace mpx {

namespace detail {

// ---- byte reader --------------------------------------------------------------------------

std::span<const char> Reader::take(std::size_t n) {
  if (n > bytes_.size() - pos_)
    throw std::out_of_range("mpx: a task message is shorter than its contents say (" +
                            std::to_string(n) + " bytes wanted, " + std::to_string(left()) +
                            " left)");
  auto s = bytes_.subspan(pos_, n);
  pos_ += n;
  return s;
}

// ---- registries ---------------------------------------------------------------------------

namespace {

struct InvokerEntry {
  std::string name;
  InvokeFn fn;
};
struct FunctionEntry {
  void (*fn)();
  std::string name;
  std::string type;
  std::string where;
  BatchFn batch;
};

// Construct-on-first-use: registrations run during static initialisation, in any order of
// translation units.
std::vector<InvokerEntry>& invokers() {
  static std::vector<InvokerEntry> v;
  return v;
}
std::vector<FunctionEntry>& functions() {
  static std::vector<FunctionEntry> v;
  return v;
}
std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}

std::uint32_t check_of(std::string_view name) noexcept { return fnv1a(name); }

}  // namespace

InvokerId register_invoker(std::string_view name, InvokeFn fn) noexcept {
  std::lock_guard lock(registry_mutex());
  auto& v = invokers();
  v.push_back({std::string(name), fn});
  return {static_cast<std::uint32_t>(v.size() - 1), check_of(name)};
}

InvokeFn find_invoker(InvokerId id) {
  std::lock_guard lock(registry_mutex());
  const auto& v = invokers();
  if (id.index >= v.size() || check_of(v[id.index].name) != id.check)
    fail("Pool", "task",
         "this rank has no task function #" + std::to_string(id.index) +
             " matching the driver's; the ranks do not run the same program (rebuild and "
             "start the same binary on every rank)");
  return v[id.index].fn;
}

bool register_function(void (*fn)(), std::string_view name, std::string_view type,
                       std::string_view file, int line, BatchFn batch) noexcept {
  std::lock_guard lock(registry_mutex());
  functions().push_back({fn, std::string(name), std::string(type),
                         std::string(file) + ":" + std::to_string(line), batch});
  return true;
}

BatchFn function_batch(std::uint32_t index) noexcept {
  std::lock_guard lock(registry_mutex());
  const auto& v = functions();
  return index < v.size() ? v[index].batch : nullptr;
}

std::uint32_t function_index(void (*fn)(), std::string_view type, std::string_view operation) {
  {
    std::lock_guard lock(registry_mutex());
    const auto& v = functions();
    for (std::size_t i = 0; i < v.size(); ++i)
      if (v[i].fn == fn) return static_cast<std::uint32_t>(i);
  }
  fail("Pool", operation,
       "the function (of type " + std::string(type) +
           ") is not registered. Functions reach other ranks by registry index, never by "
           "address: write MPX_REGISTER(name_of_the_function); at namespace scope next to its "
           "definition, or pass a captureless lambda instead");
}

void (*function_at(std::uint32_t index, std::string_view type))() {
  std::lock_guard lock(registry_mutex());
  const auto& v = functions();
  if (index >= v.size() || v[index].type != type)
    fail("Pool", "task",
         "this rank has no registered function #" + std::to_string(index) + " of type " +
             std::string(type) +
             "; the ranks do not run the same program (start the same binary everywhere)");
  return v[index].fn;
}

std::uint64_t registry_fingerprint() noexcept {
  std::lock_guard lock(registry_mutex());
  std::uint64_t h = 1469598103934665603ull;
  auto mix = [&](std::string_view s) {
    for (char c : s) {
      h ^= static_cast<unsigned char>(c);
      h *= 1099511628211ull;
    }
    h ^= 0xff;
    h *= 1099511628211ull;
  };
  for (const auto& e : invokers()) mix(e.name);
  for (const auto& e : functions()) {
    mix(e.name);
    mix(e.type);
  }
  return h;
}

void Signal::sleep(std::uint64_t seen, Clock::time_point until) {
  std::unique_lock lock(mutex);
  cv.wait_until(lock, until, [&] { return generation != seen; });
}

void report_callback_failure(const std::string& name, const char* which) noexcept {
  std::string what = "an exception that is not a std::exception";
  try {
    throw;
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
  }
  std::fprintf(stderr, "mpx: rank %d: %s: the %s threw (%s); it is ignored\n",
               world_rank_or_minus_one(), name.c_str(), which, what.c_str());
  std::fflush(stderr);
}

namespace {

// ---- wire protocol ------------------------------------------------------------------------
//
// On the pool's private communicator, every message is a byte vector:
//   task    driver -> worker  [u64 job][u64 chunk][u32 invoker][u32 check][u64 n][n state][args]
//   result  worker -> driver  [u64 job][u64 chunk][f64 seconds][u8 0][results]  or
//                             [u64 job][u64 chunk][f64 seconds][u8 1][i32 rank][type][message]
//           (seconds: how long the chunk ran; the driver sizes its prefetch from it)
//   stop    driver -> worker  [u64 tasks the driver sent to this worker]
//   done    worker -> driver  [u64 results the worker sent]
// A worker that gets `stop` drops the tasks it has not started (receiving them, so no send
// is left pending), answers `done`, and leaves serve(); the driver receives every result
// still on its way before it lets the pool go.

constexpr int task_tag = 1;
constexpr int result_tag = 2;
constexpr int stop_tag = 3;
constexpr int done_tag = 4;
// Chunks a worker holds: the one it runs and at least one more, so it never waits for the
// driver between chunks. Short chunks get more (up to max_prefetch), enough to cover a few
// milliseconds of the driver's reaction time (its progress thread sleeps up to 1 ms when idle).
constexpr int min_prefetch = 2;
constexpr int max_prefetch = 8;
constexpr double covered_seconds = 0.003;

using Bytes = std::vector<char>;

int wtag(int tag) { return wire_tag(tag, fingerprint_of<Bytes>()); }

/// Receives the next message with `tag` from `source` if one is pending (never blocks on an
/// absent message; waits without spinning for the data of a matched one).
std::optional<Bytes> try_receive(const Communicator& comm, int source, int tag,
                                 int* from = nullptr) {
  MPI_Message message = MPI_MESSAGE_NULL;
  MPI_Status status{};
  int found = 0;
  MPX_CHECK_MPI(MPI_Improbe(source, wtag(tag), comm.native(), &found, &message, &status),
                comm.name(), "receive");
  if (!found) return std::nullopt;
  if (from) *from = status.MPI_SOURCE;
  return receive_matched<Bytes>(comm, message, status, "receive");
}

std::string demangle(const char* name) {
  int status = 0;
  char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string out = (status == 0 && d) ? d : name;
  std::free(d);
  return out;
}

/// Runs one task message and returns the result message (never throws for task errors).
Bytes execute_chunk(std::span<const char> payload, int rank) {
  Reader in(payload);
  Bytes out;
  const auto job = in.raw<std::uint64_t>();
  const auto chunk = in.raw<std::uint64_t>();
  put_raw(out, job);
  put_raw(out, chunk);
  const std::size_t seconds_at = out.size();
  put_raw(out, 0.0);
  const std::size_t status_at = out.size();
  out.push_back(0);
  const auto started = Clock::now();
  auto stamp = [&] {
    const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
    std::memcpy(out.data() + seconds_at, &seconds, sizeof seconds);
  };
  std::string type;
  std::string message;
  try {
    InvokerId id;
    id.index = in.raw<std::uint32_t>();
    id.check = in.raw<std::uint32_t>();
    const auto n = in.raw<std::uint64_t>();
    const auto state = in.take(n);
    const InvokeFn fn = find_invoker(id);
    fn(state, in, out);
    stamp();
    return out;
  } catch (const std::exception& e) {
    type = demangle(typeid(e).name());
    message = e.what();
  } catch (...) {
    const std::type_info* t = abi::__cxa_current_exception_type();
    type = t ? demangle(t->name()) : std::string("unknown exception");
    message = "(an exception that is not derived from std::exception)";
  }
  out.resize(status_at);
  out.push_back(1);
  put_raw(out, static_cast<std::int32_t>(rank));
  put(out, type);
  put(out, message);
  stamp();
  return out;
}

// ---- the identical-binary check -----------------------------------------------------------

struct ProgramId {
  std::uint64_t exe_hash = 0;
  std::uint64_t exe_size = 0;
  std::uint64_t registry = 0;
  std::int32_t driver = 0;
  std::int32_t processes = 0;
  std::int32_t has_initializer = 0;
  std::int32_t pad = 0;
  bool operator==(const ProgramId&) const = default;
};

std::string exe_path() {
  std::array<char, 4096> buf{};
  const ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  return n > 0 ? std::string(buf.data(), static_cast<std::size_t>(n)) : std::string("?");
}

/// The GNU build id of the executable (a hash the linker computes over its contents), or
/// an empty string when it has none.
std::string build_id() {
  std::string id;
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* data) -> int {
        auto* out = static_cast<std::string*>(data);
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const auto& ph = info->dlpi_phdr[i];
          if (ph.p_type != PT_NOTE) continue;
          const char* p = reinterpret_cast<const char*>(info->dlpi_addr + ph.p_vaddr);
          const char* end = p + ph.p_memsz;
          while (p + sizeof(ElfW(Nhdr)) <= end) {
            const auto* note = reinterpret_cast<const ElfW(Nhdr)*>(p);
            const char* note_name = p + sizeof(ElfW(Nhdr));
            const char* desc = note_name + ((note->n_namesz + 3u) & ~3u);
            if (note->n_type == NT_GNU_BUILD_ID && note->n_namesz == 4 &&
                std::memcmp(note_name, "GNU", 4) == 0) {
              out->assign(desc, note->n_descsz);
              return 1;
            }
            p = desc + ((note->n_descsz + 3u) & ~3u);
          }
        }
        return 1;  // the first object is the executable: stop there
      },
      &id);
  return id;
}

/// Hash and size of this process's executable: its build id when it has one, otherwise a
/// hash of the file's bytes (computed once per process).
std::pair<std::uint64_t, std::uint64_t> exe_identity() {
  static const std::pair<std::uint64_t, std::uint64_t> id = [] {
    std::ifstream f("/proc/self/exe", std::ios::binary);
    f.seekg(0, std::ios::end);
    const auto size = static_cast<std::uint64_t>(std::max<std::streamoff>(0, f.tellg()));
    std::string key = build_id();
    if (key.empty()) {
      key.resize(size);
      f.seekg(0);
      f.read(key.data(), static_cast<std::streamsize>(size));
    }
    return std::pair<std::uint64_t, std::uint64_t>(std::hash<std::string_view>{}(key), size);
  }();
  return id;
}

std::atomic<int> g_pool_count{0};

// ---- the driver ---------------------------------------------------------------------------

class PoolDriver final : public PoolCore, public Service {
 public:
  /// `ranks`: every rank that serves (the first `active` of them get tasks; the others only
  /// wait for the stop message).
  PoolDriver(Communicator comm, std::string name, std::vector<int> ranks, std::size_t active,
             bool local)
      : comm_(std::move(comm)), name_(std::move(name)), local_(local), active_(active) {
    for (int w : ranks) ws_.push_back(WorkerState{w});
  }

  ~PoolDriver() override {
    terminate();
    if (local_thread_.joinable()) local_thread_.join();
  }

  /// Starts the in-process worker thread (single-rank pools); runs `init` there first.
  void start_local(const std::function<void()>& init) {
    std::promise<std::exception_ptr> started;
    auto ready = started.get_future();
    local_thread_ = std::thread([this, init, &started] {
      std::exception_ptr error;
      try {
        if (init) init();
      } catch (...) {
        error = std::current_exception();
      }
      started.set_value(error);
      if (!error) local_loop();
    });
    if (auto error = ready.get()) {
      local_thread_.join();
      std::rethrow_exception(error);
    }
  }

  void attach() {
    ProgressEngine::instance().attach(*this);
    attached_ = true;
  }

  // ---- PoolCore ----

  void check_open(std::string_view operation) const override {
    std::lock_guard lock(mutex_);
    if (phase_ != Phase::running)
      fail(name_, operation,
           phase_ == Phase::closed
               ? "the pool is closed (close() was called); submit every task before close()"
               : "the pool was terminated or joined; create a new pool for more work");
  }

  void submit(const std::shared_ptr<JobCore>& job) override {
    Deferred later;
    {
      std::lock_guard lock(mutex_);
      if (phase_ != Phase::running)
        fail(name_, job->operation, "the pool is closed; submit every task before close()");
      job->id = next_job_++;
      job->started = now();
      jobs_.emplace(job->id, job);
      queue_.push_back(job);
      if (job->input_done) finish_if_complete(*job, later);
    }
    run(later);
    ProgressEngine::instance().wake();
  }

  void feed(JobCore& job, std::vector<char> args) override {
    {
      std::lock_guard lock(mutex_);
      if (phase_ == Phase::stopping || phase_ == Phase::stopped || job.failed) return;
      job.fed.emplace_back(job.produced++, std::move(args));
    }
    ProgressEngine::instance().wake();
  }

  void feed_end(JobCore& job) override {
    Deferred later;
    {
      std::lock_guard lock(mutex_);
      job.input_done = true;
      if (jobs_.count(job.id)) finish_if_complete(job, later);
    }
    run(later);
  }

  int workers() const noexcept override { return static_cast<int>(active_); }
  const std::string& name() const noexcept override { return name_; }

  void close() override {
    std::lock_guard lock(mutex_);
    if (phase_ == Phase::running) phase_ = Phase::closed;
  }

  void join() override {
    {
      std::lock_guard lock(mutex_);
      if (phase_ == Phase::running)
        fail(name_, "join",
             "join() before close(): call close() (or terminate()) first, as in Python");
    }
    wait_until(
        [this] {
          std::lock_guard lock(mutex_);
          return jobs_.empty() || phase_ != Phase::closed;
        },
        no_deadline, {name_, "join", -1});
    stop_workers();
  }

  void terminate() noexcept override {
    try {
      Deferred later;
      {
        std::lock_guard lock(mutex_);
        if (phase_ == Phase::stopping || phase_ == Phase::stopped) return;
        auto error = std::make_exception_ptr(
            ClosedError(where(name_, "terminate") +
                        "the pool was terminated before this task finished; its result is lost"));
        for (auto& [id, job] : jobs_)
          if (!job->failed) job->on_error(std::uint64_t(-1), error, later);
        jobs_.clear();
        queue_.clear();
        phase_ = Phase::closed;
      }
      run(later);
      stop_workers();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "mpx: %s.terminate failed: %s\n", name_.c_str(), e.what());
    }
  }

  // ---- Service ----

  bool progress() override {
    Deferred later;
    bool worked = false;
    {
      std::lock_guard lock(mutex_);
      worked = receive(later);
      worked = dispatch(later) || worked;
      while (!sends_.empty() && sends_.front().test()) sends_.pop_front();
    }
    run(later);
    return worked;
  }
  const char* service_name() const noexcept override { return name_.c_str(); }

 private:
  enum class Phase { running, closed, stopping, stopped };
  struct WorkerState {
    int rank;
    int in_flight = 0;
    std::uint64_t tasks_sent = 0;
    std::uint64_t results = 0;
    std::uint64_t expected = std::uint64_t(-1);  // results announced by `done`
  };

  static double now() {
    return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
  }

  static void run(Deferred& later) {
    for (auto& action : later) action();
    later.clear();
  }

  // Stops every worker and waits until each has answered and all its results are in.
  void stop_workers() {
    {
      std::lock_guard lock(mutex_);
      if (phase_ == Phase::stopping || phase_ == Phase::stopped) return;
      phase_ = Phase::stopping;
      jobs_.clear();
      queue_.clear();
      if (!local_) {
        for (auto& w : ws_) {
          Bytes b;
          put_raw(b, w.tasks_sent);
          sends_.push_back(comm_.isend(std::move(b), w.rank, stop_tag));
        }
      }
    }
    if (local_) {
      {
        std::lock_guard lock(local_mutex_);
        local_stop_ = true;
      }
      local_cv_.notify_all();
      if (local_thread_.joinable()) local_thread_.join();
    } else if (attached_) {
      // The progress thread keeps receiving until every worker said done.
      ProgressEngine::instance().wake();
      wait_until(
          [this] {
            std::lock_guard lock(mutex_);
            return std::all_of(ws_.begin(), ws_.end(),
                               [](const WorkerState& w) { return w.results == w.expected; });
          },
          no_deadline, {name_, "join", -1});
    }
    if (attached_) {
      ProgressEngine::instance().detach(*this);
      attached_ = false;
    }
    std::lock_guard lock(mutex_);
    phase_ = Phase::stopped;
    sends_.clear();  // pending sends become orphans that mpx completes in the background
  }

  // Takes in every result that has arrived.
  bool receive(Deferred& later) {
    bool worked = false;
    if (local_) {
      std::deque<Bytes> results;
      {
        std::lock_guard lock(local_mutex_);
        results.swap(local_results_);
      }
      for (auto& r : results) {
        handle_result(ws_[0], r, later);
        worked = true;
      }
      return worked;
    }
    for (;;) {
      int from = -1;
      auto bytes = try_receive(comm_, MPI_ANY_SOURCE, result_tag, &from);
      if (!bytes) break;
      handle_result(worker(from), *bytes, later);
      worked = true;
    }
    if (phase_ == Phase::stopping) {
      for (;;) {
        int from = -1;
        auto bytes = try_receive(comm_, MPI_ANY_SOURCE, done_tag, &from);
        if (!bytes) break;
        Reader in(*bytes);
        worker(from).expected = in.raw<std::uint64_t>();
        worked = true;
      }
    }
    return worked;
  }

  WorkerState& worker(int rank) {
    for (auto& w : ws_)
      if (w.rank == rank) return w;
    fail(name_, "receive",
         "a message came from rank " + std::to_string(rank) +
             ", which is not a worker of this pool");
  }

  void handle_result(WorkerState& w, const Bytes& bytes, Deferred& later) {
    --w.in_flight;
    ++w.results;
    Reader in(bytes);
    const auto id = in.raw<std::uint64_t>();
    const auto chunk = in.raw<std::uint64_t>();
    const auto seconds = in.raw<double>();
    const auto status = in.raw<std::uint8_t>();
    chunk_seconds_ = chunk_seconds_ < 0 ? seconds : 0.75 * chunk_seconds_ + 0.25 * seconds;
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return;  // the job was terminated
    auto job = it->second;
    ++job->returned;
    if (job->failed) {
      finish_if_complete(*job, later);
      return;
    }
    std::exception_ptr error;
    if (status == 0) {
      Reader peek = in;
      const auto items = peek.raw<std::uint64_t>();
      try {
        job->on_result(chunk, in, later);
        job->items_done += items;
      } catch (...) {
        error = std::current_exception();
      }
    } else {
      const auto rank = in.raw<std::int32_t>();
      auto type = get<std::string>(in);
      auto message = get<std::string>(in);
      error = std::make_exception_ptr(RemoteError(rank, std::move(type), std::move(message)));
    }
    if (error) {
      job->on_error(chunk, error, later);
      if (!job->keep_going_after_error) job->failed = true;
    }
    draw_progress(*job, false);
    finish_if_complete(*job, later);
  }

  void finish_if_complete(JobCore& job, Deferred& later) {
    const bool no_more = job.input_done || (job.failed && !job.keep_going_after_error);
    if (!no_more || job.returned != job.produced || !job.fed.empty()) return;
    if (!job.failed) {
      draw_progress(job, true);
      job.on_finished(later);
    }
    const auto id = job.id;
    queue_.erase(
        std::remove_if(queue_.begin(), queue_.end(), [id](const auto& j) { return j->id == id; }),
        queue_.end());
    jobs_.erase(id);  // may destroy `job`
  }

  // Finds the next chunk to send, oldest job first; writes the task message into `out`.
  bool next_task(Bytes& out, Deferred& later) {
    for (std::size_t i = 0; i < queue_.size();) {
      auto job = queue_[i];
      if (job->failed && !job->keep_going_after_error) {
        queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(i));
        continue;
      }
      auto header = [&](std::uint64_t chunk) {
        out.clear();
        put_raw(out, job->id);
        put_raw(out, chunk);
        put_raw(out, job->invoker.index);
        put_raw(out, job->invoker.check);
        put_raw(out, static_cast<std::uint64_t>(job->state.size()));
        out.insert(out.end(), job->state.begin(), job->state.end());
      };
      if (!job->fed.empty()) {
        auto [chunk, args] = std::move(job->fed.front());
        job->fed.pop_front();
        header(chunk);
        out.insert(out.end(), args.begin(), args.end());
        return true;
      }
      if (job->generate && !job->input_done) {
        header(job->produced);
        if (job->generate(out)) {
          ++job->produced;
          return true;
        }
        job->input_done = true;
        finish_if_complete(*job, later);
        continue;  // the job may be gone; look at the same position again
      }
      ++i;
    }
    return false;
  }

  bool dispatch(Deferred& later) {
    if (phase_ == Phase::stopping || phase_ == Phase::stopped) return false;
    bool worked = false;
    // Round by round, so every worker gets a first chunk before any gets a second.
    int depth = min_prefetch;
    if (chunk_seconds_ >= 0)
      depth = std::clamp(
          min_prefetch + static_cast<int>(covered_seconds / std::max(chunk_seconds_, 1e-6)),
          min_prefetch, max_prefetch);
    for (int level = 1; level <= depth; ++level) {
      for (std::size_t i = 0; i < active_; ++i) {
        auto& w = ws_[i];
        if (w.in_flight >= level) continue;
        Bytes task;
        if (!next_task(task, later)) return worked;
        send_task(w, std::move(task));
        worked = true;
      }
    }
    return worked;
  }

  void send_task(WorkerState& w, Bytes task) {
    ++w.in_flight;
    ++w.tasks_sent;
    if (local_) {
      {
        std::lock_guard lock(local_mutex_);
        local_tasks_.push_back(std::move(task));
      }
      local_cv_.notify_one();
    } else {
      sends_.push_back(comm_.isend(std::move(task), w.rank, task_tag));
    }
  }

  void local_loop() {
    const int rank = world_rank_or_minus_one();
    for (;;) {
      Bytes task;
      {
        std::unique_lock lock(local_mutex_);
        local_cv_.wait(lock, [this] { return local_stop_ || !local_tasks_.empty(); });
        if (local_stop_) return;
        task = std::move(local_tasks_.front());
        local_tasks_.pop_front();
      }
      auto result = execute_chunk(task, rank);
      {
        std::lock_guard lock(local_mutex_);
        local_results_.push_back(std::move(result));
      }
      ProgressEngine::instance().wake();
    }
  }

  void draw_progress(JobCore& job, bool final) {
    if (!job.progress_bar) return;
    const double t = now();
    if (!final && t - job.last_drawn < 0.1) return;
    job.last_drawn = t;
    char line[256];
    const double elapsed = t - job.started;
    if (job.total_items > 0) {
      const double frac =
          std::min(1.0, static_cast<double>(job.items_done) / static_cast<double>(job.total_items));
      constexpr int width = 30;
      const int filled = static_cast<int>(frac * width);
      std::string bar(static_cast<std::size_t>(filled), '#');
      bar.append(static_cast<std::size_t>(width - filled), '.');
      const double eta = frac > 0 ? elapsed * (1 - frac) / frac : 0;
      std::snprintf(line, sizeof line, "\r%s.%s [%s] %3d%% %llu/%llu %.1fs eta %.1fs%s",
                    name_.c_str(), job.operation.c_str(), bar.c_str(), static_cast<int>(frac * 100),
                    static_cast<unsigned long long>(job.items_done),
                    static_cast<unsigned long long>(job.total_items), elapsed, eta,
                    final ? "\n" : "");
    } else {
      std::snprintf(line, sizeof line, "\r%s.%s %llu items %.1fs%s", name_.c_str(),
                    job.operation.c_str(), static_cast<unsigned long long>(job.items_done), elapsed,
                    final ? "\n" : "");
    }
    std::fputs(line, stderr);
    std::fflush(stderr);
  }

  Communicator comm_;
  std::string name_;
  bool local_;
  std::size_t active_;
  bool attached_ = false;
  mutable std::mutex mutex_;
  Phase phase_ = Phase::running;
  std::vector<WorkerState> ws_;
  std::deque<std::shared_ptr<JobCore>> queue_;
  std::unordered_map<std::uint64_t, std::shared_ptr<JobCore>> jobs_;
  std::uint64_t next_job_ = 1;
  double chunk_seconds_ = -1;  // running average of how long a chunk runs; -1: unknown
  std::deque<Future<void>> sends_;

  std::thread local_thread_;
  std::mutex local_mutex_;
  std::condition_variable local_cv_;
  std::deque<Bytes> local_tasks_;
  std::deque<Bytes> local_results_;
  bool local_stop_ = false;
};

// ---- the worker ---------------------------------------------------------------------------

// A task that crashes its worker (segfault, abort...) kills the rank; Open MPI then ends the
// whole job, so the driver never waits for ever. Before the rank dies, this handler says
// which rank and pool it was, in one line on stderr (async-signal-safe: write() of text
// prepared in advance), then lets the signal do what it would have done.
char g_crash_text[256];
std::size_t g_crash_length = 0;
constexpr std::array<int, 5> crash_signals{SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

extern "C" void on_worker_crash(int sig) {
  const char* name = sig == SIGSEGV  ? "SIGSEGV"
                     : sig == SIGBUS ? "SIGBUS"
                     : sig == SIGFPE ? "SIGFPE"
                     : sig == SIGILL ? "SIGILL"
                                     : "SIGABRT";
  [[maybe_unused]] auto a = ::write(2, g_crash_text, g_crash_length);
  [[maybe_unused]] auto b = ::write(2, name, std::strlen(name));
  static const char tail[] = "; Open MPI ends the job\n";
  [[maybe_unused]] auto c = ::write(2, tail, sizeof tail - 1);
  ::raise(sig);  // SA_RESETHAND restored the default action
}

/// Installs the crash report for the duration of serve_tasks.
class CrashReport {
 public:
  CrashReport(const std::string& pool, int rank) {
    const std::string text =
        "mpx: rank " + std::to_string(rank) + ": " + pool + " worker died while running a task: ";
    g_crash_length = std::min(text.size(), sizeof g_crash_text);
    std::memcpy(g_crash_text, text.data(), g_crash_length);
    struct sigaction action {};
    action.sa_handler = on_worker_crash;
    sigemptyset(&action.sa_mask);
    action.sa_flags = static_cast<int>(SA_RESETHAND | SA_NODEFER);
    for (std::size_t i = 0; i < crash_signals.size(); ++i)
      sigaction(crash_signals[i], &action, &previous_[i]);
  }
  ~CrashReport() {
    for (std::size_t i = 0; i < crash_signals.size(); ++i)
      sigaction(crash_signals[i], &previous_[i], nullptr);
  }
  CrashReport(const CrashReport&) = delete;
  CrashReport& operator=(const CrashReport&) = delete;

 private:
  std::array<struct sigaction, crash_signals.size()> previous_{};
};

/// A worker's main loop: runs tasks until the driver says stop.
void serve_tasks(const Communicator& comm, int driver) {
  const int rank = world_rank_or_minus_one();
  const CrashReport crash_report(comm.name(), rank);
  std::uint64_t received = 0;
  std::uint64_t sent = 0;
  std::deque<Future<void>> sends;
  Backoff backoff;
  for (;;) {
    if (auto stop = try_receive(comm, driver, stop_tag)) {
      Reader in(*stop);
      const auto tasks = in.raw<std::uint64_t>();
      // Take the tasks the driver sent before it said stop off the wire, unrun.
      while (received < tasks) {
        if (try_receive(comm, driver, task_tag)) {
          ++received;
          backoff.reset();
        } else {
          backoff.pause();
        }
      }
      Bytes done;
      put_raw(done, sent);
      sends.push_back(comm.isend(std::move(done), driver, done_tag));
      for (auto& s : sends) s.wait();
      return;
    }
    if (auto task = try_receive(comm, driver, task_tag)) {
      ++received;
      auto result = execute_chunk(*task, rank);
      sends.push_back(comm.isend(std::move(result), driver, result_tag));
      ++sent;
      while (!sends.empty() && sends.front().test()) sends.pop_front();
      backoff.reset();
      continue;
    }
    while (!sends.empty() && sends.front().test()) sends.pop_front();
    backoff.pause();
  }
}

}  // namespace

}  // namespace detail

// ---- Pool ---------------------------------------------------------------------------------

Pool::Pool() noexcept = default;
Pool::Pool(std::unique_ptr<detail::PoolCore> core) noexcept : core_(std::move(core)) {}
Pool::Pool(Pool&&) noexcept = default;
Pool& Pool::operator=(Pool&& other) noexcept {
  if (this != &other) {
    if (core_) core_->terminate();
    core_ = std::move(other.core_);
  }
  return *this;
}
Pool::~Pool() {
  if (core_) core_->terminate();
}

void Pool::require_driver(const char* operation) const {
  if (!core_)
    detail::fail("Pool", operation,
                 "this pool is empty: serve() returns a live pool on the driver rank only "
                 "(workers get an empty one once the pool has ended); submit tasks inside "
                 "`if (auto pool = mpx::Pool::serve()) { ... }`");
}

int Pool::processes() const {
  require_driver("processes");
  return core_->workers();
}

const std::string& Pool::name() const {
  static const std::string empty = "Pool (empty)";
  return core_ ? core_->name() : empty;
}

void Pool::close() {
  require_driver("close");
  core_->close();
}
void Pool::terminate() {
  require_driver("terminate");
  core_->terminate();
}
void Pool::join() {
  require_driver("join");
  core_->join();
}

Pool Pool::serve(const PoolOptions& options, const Communicator& comm) {
  return start(options, comm, {}, {});
}

Pool Pool::start(const PoolOptions& options, const Communicator& comm,
                 std::function<void(std::span<const char>)> initializer,
                 std::vector<char> initargs) {
  const std::string name = "Pool#" + std::to_string(++detail::g_pool_count);
  comm.check_rank(options.driver, "Pool.serve(driver)");
  if (options.processes < 0)
    detail::fail(name, "serve", "processes must be >= 0 (0 means every rank but the driver)");

  // Same program and same options everywhere, or every rank fails together.
  detail::ProgramId mine;
  std::tie(mine.exe_hash, mine.exe_size) = detail::exe_identity();
  mine.registry = detail::registry_fingerprint();
  mine.driver = options.driver;
  mine.processes = options.processes;
  mine.has_initializer = initializer ? 1 : 0;
  const auto all = comm.allgather(mine);
  const auto paths = comm.allgather(detail::exe_path());
  for (std::size_t r = 0; r < all.size(); ++r) {
    const auto& a = all[0];
    const auto& b = all[r];
    if (a.exe_hash != b.exe_hash || a.exe_size != b.exe_size || a.registry != b.registry)
      detail::fail(name, "serve",
                   "the ranks do not run the identical program: rank 0 runs " + paths[0] + " (" +
                       std::to_string(a.exe_size) + " bytes) but rank " + std::to_string(r) +
                       " runs " + paths[r] + " (" + std::to_string(b.exe_size) +
                       " bytes, different contents); a Pool names task functions by their "
                       "index in the program, so start the same binary on every rank (rebuild "
                       "and copy it to every node)");
    if (!(a == b))
      detail::fail(name, "serve",
                   "ranks disagree on the pool: rank 0 asked for driver " +
                       std::to_string(a.driver) + ", processes " + std::to_string(a.processes) +
                       (a.has_initializer ? ", an initializer" : ", no initializer") +
                       " but rank " + std::to_string(r) + " asked for driver " +
                       std::to_string(b.driver) + ", processes " + std::to_string(b.processes) +
                       (b.has_initializer ? ", an initializer" : ", no initializer") +
                       "; every rank must call serve() with the same options");
  }

  Communicator own = comm.duplicate(name);
  const int me = own.rank();
  const int size = own.size();
  const bool local = size == 1;
  std::vector<int> workers;
  if (local) {
    workers.push_back(0);
  } else {
    for (int r = 0; r < size; ++r)
      if (r != options.driver) workers.push_back(r);
  }
  std::size_t active = workers.size();
  if (!local && options.processes > 0)
    active = std::min(active, static_cast<std::size_t>(options.processes));
  const bool is_worker =
      !local && std::find(workers.begin(), workers.begin() + static_cast<std::ptrdiff_t>(active),
                          me) != workers.begin() + static_cast<std::ptrdiff_t>(active);

  // The initializer runs on every worker with the driver's arguments; its failure anywhere
  // fails serve() everywhere.
  if (initializer && !local) {
    initargs = own.bcast(std::move(initargs), options.driver);
    std::string failure;
    if (is_worker) {
      try {
        initializer(initargs);
      } catch (const std::exception& e) {
        failure = detail::demangle(typeid(e).name()) + '\n' + e.what();
      } catch (...) {
        failure = std::string("unknown exception\n(not derived from std::exception)");
      }
    }
    const auto failures = own.allgather(failure);
    for (std::size_t r = 0; r < failures.size(); ++r) {
      if (failures[r].empty()) continue;
      const auto nl = failures[r].find('\n');
      const int world_rank = [&] {
        int wr = -1;
        MPI_Group g1, g2;
        MPI_Comm_group(own.native(), &g1);
        MPI_Comm_group(MPI_COMM_WORLD, &g2);
        const int rr = static_cast<int>(r);
        MPI_Group_translate_ranks(g1, 1, &rr, g2, &wr);
        MPI_Group_free(&g1);
        MPI_Group_free(&g2);
        return wr;
      }();
      throw RemoteError(world_rank, failures[r].substr(0, nl),
                        "the Pool initializer failed: " + failures[r].substr(nl + 1));
    }
  }

  if (me != options.driver) {
    detail::serve_tasks(own, options.driver);  // a rank beyond `processes` only waits for stop
    return Pool();
  }

  auto driver = std::make_unique<detail::PoolDriver>(std::move(own), name, workers, active, local);
  if (local) {
    std::function<void()> init;
    if (initializer) init = [initializer, initargs] { initializer(initargs); };
    try {
      driver->start_local(init);
    } catch (const std::exception& e) {
      throw RemoteError(detail::world_rank_or_minus_one(), detail::demangle(typeid(e).name()),
                        std::string("the Pool initializer failed: ") + e.what());
    }
  }
  driver->attach();
  return Pool(std::move(driver));
}

}  // namespace mpx
