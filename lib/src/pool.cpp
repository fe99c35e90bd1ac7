#include "mpx/pool.hpp"

#include <cxxabi.h>
#include <elf.h>
#include <link.h>
#include <sched.h>
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
#include "mpx/detail/demangle.hpp"
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
  // Process targets come here too (operation "Process"): name the right object.
  const bool process = operation == "Process";
  fail(process ? "Process" : "Pool", process ? "create" : operation,
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
// On the pool's private communicator:
//   task    driver -> worker, tag task:   [TaskHead][callable state][arguments (put_items)]
//   result  worker -> driver, tag result: [ResultHead][payload]; the payload is the results
//           (put_items) or, when the task threw, [i64 rank][type][message]
//   stop    driver -> worker, tag stop:   [u64 tasks the driver sent to this worker]
//   done    worker -> driver, tag done:   [u64 results the worker sent]
// A task or result longer than inline_bytes travels as two messages: the first (its head
// flagged, the bulk's length, and the message's first bytes up to the arguments' or
// payload's first word, an item count) on the tag above, the rest (the bulk) as one message
// on the matching bulk tag. A task of plain-data items sends its bulk straight from the
// caller's input, and the driver receives a result of plain data straight into the output
// vector. Workers keep receives posted for tasks and the driver for results, so a short
// message lands at once in a reused buffer (no allocation, no unexpected-message copy).
// A worker that gets `stop` drops the tasks it has not started (receiving them, so no send
// is left pending), answers `done`, and leaves serve(); the driver receives every result
// still on its way before it lets the pool go.

constexpr int task_tag = 1;
constexpr int result_tag = 2;
constexpr int stop_tag = 3;
constexpr int done_tag = 4;
constexpr int task_bulk_tag = 5;
constexpr int result_bulk_tag = 6;
// Chunks a worker holds: the one it runs and at least one more, so it never waits for the
// driver between chunks. Short chunks get more (up to max_prefetch), enough to cover a few
// milliseconds of the driver's reaction time (its progress thread sleeps up to 1 ms when idle).
constexpr int min_prefetch = 2;
constexpr int max_prefetch = 8;
constexpr double covered_seconds = 0.003;
// How long a worker stays quick to react after a task (see serve_tasks).
constexpr auto hot_window = std::chrono::milliseconds(5);
// Longest message that travels whole: what Open MPI's shared-memory transport still sends
// eagerly (a longer message waits for a handshake with the receiver); a chunk of 1000 ints
// and its head fit.
constexpr std::size_t inline_bytes = 4040;
// Flag in TaskHead::state_bytes and ResultHead::flags: a second message (bulk) follows.
constexpr std::uint32_t bulk_flag = 0x80000000u;

struct TaskHead {
  std::uint64_t chunk = 0;
  std::uint32_t job = 0;
  std::uint32_t invoker_index = 0;
  std::uint32_t invoker_check = 0;
  std::uint32_t state_bytes = 0;  // | bulk_flag: [u64 bulk bytes] follows the head
};
struct ResultHead {
  std::uint64_t chunk = 0;
  std::uint32_t job = 0;
  std::uint32_t flags = 0;  // 0: results, 1: the task threw; | bulk_flag as in TaskHead
  double seconds = 0;       // how long the chunk ran; the driver sizes its prefetch from it
};
static_assert(sizeof(TaskHead) == 24 && sizeof(ResultHead) == 24);
// A long message's first part: the head, the bulk's length, then (tasks) the state and the
// arguments' first word or (results) the payload's first word; both first words are item
// counts. The rest of the message is the bulk.
constexpr std::size_t result_split = sizeof(ResultHead) + 2 * sizeof(std::uint64_t);

using Bytes = std::vector<char>;

int wtag(int tag) { return wire_tag(tag, fingerprint_of<Bytes>()); }

template <class Head>
Head read_head(const char* bytes) {
  Head h;
  std::memcpy(static_cast<void*>(&h), bytes, sizeof h);
  return h;
}
template <class Head>
void write_head(char* bytes, const Head& h) {
  std::memcpy(bytes, static_cast<const void*>(&h), sizeof h);
}

MPI_Request post_receive(const Communicator& comm, void* data, std::size_t bytes, int source,
                         int tag) {
  const ByteType type(bytes);
  MPI_Request request = MPI_REQUEST_NULL;
  MPX_CHECK_MPI(
      MPI_Irecv(data, type.count(), type.type(), source, wtag(tag), comm.native(), &request),
      comm.name(), "receive");
  return request;
}

MPI_Request post_send(const Communicator& comm, const void* data, std::size_t bytes, int dest,
                      int tag) {
  return comm.isend_bytes(data, bytes, dest, wtag(tag), "send");
}

/// True when `request` has completed (or is null).
bool completed(const Communicator& comm, MPI_Request& request, MPI_Status* status = nullptr) {
  if (request == MPI_REQUEST_NULL) return true;
  int done = 0;
  MPX_CHECK_MPI(MPI_Test(&request, &done, status ? status : MPI_STATUS_IGNORE), comm.name(),
                "test");
  return done != 0;
}

/// Cancels a posted receive that will never match (the peer sends nothing more).
void cancel_receive(MPI_Request& request) noexcept {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (request == MPI_REQUEST_NULL || finalized) return;
  MPI_Cancel(&request);
  MPI_Wait(&request, MPI_STATUS_IGNORE);  // returns at once: the receive matched nothing
}

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

/// Runs one whole task message (head, state, arguments; no bulk flag) and writes the result message
/// into `out` (its capacity is reused); never throws for task errors.
void execute_chunk(std::span<const char> task, int rank, Bytes& out) {
  out.resize(sizeof(ResultHead));
  ResultHead result;
  const auto started = Clock::now();
  std::string type;
  std::string message;
  try {
    if (task.size() < sizeof(TaskHead))
      throw std::out_of_range("mpx: a task message is shorter than its head");
    const auto head = read_head<TaskHead>(task.data());
    result.job = head.job;
    result.chunk = head.chunk;
    Reader in(task.subspan(sizeof(TaskHead)));
    const auto state = in.take(head.state_bytes & ~bulk_flag);
    const InvokeFn fn = find_invoker({head.invoker_index, head.invoker_check});
    fn(state, in, out);
  } catch (const std::exception& e) {
    type = demangle(typeid(e).name());
    message = e.what();
    result.flags = 1;
  } catch (...) {
    type = current_exception_type();
    message = "(an exception that is not derived from std::exception)";
    result.flags = 1;
  }
  if (result.flags != 0) {
    out.resize(sizeof(ResultHead));
    put_raw(out, static_cast<std::int64_t>(rank));
    put(out, type);
    put(out, message);
  }
  result.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  write_head(out.data(), result);
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
    if (!local_) {
      // Receives posted for result messages: enough for every worker's chunks in flight
      // (more results simply wait in MPI until a receive is posted again).
      result_slots_.resize(std::max<std::size_t>(4, 2 * active_ + 2));
      for (auto& slot : result_slots_) {
        slot.buffer.resize(inline_bytes);
        slot.request =
            post_receive(comm_, slot.buffer.data(), inline_bytes, MPI_ANY_SOURCE, result_tag);
      }
    }
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
      job->id = next_job_++;  // travels as 32 bits
      if (next_job_ > 0xffffffffu) next_job_ = 1;
      job->started = now();
      jobs_.emplace(job->id, job);
      queue_.push_back(job);
      if (job->input_done) finish_if_complete(*job, later);
      // The job's first chunks leave at once from the caller's thread, without waiting for
      // the progress thread to wake up (other jobs are left to the progress thread, so user
      // callbacks still run there).
      if (!local_ && jobs_.count(job->id)) dispatch(later, job.get());
      // Then the job prepares its output while the workers start (under the lock, so no
      // result is taken in before).
      if (job->prepare) job->prepare();
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
        for (auto& [id, job] : jobs_) {
          if (job->held_error)  // a failed chunk not reported yet: it is the real cause
            job->on_error(0, std::move(job->held_error), later);
          else if (!job->failed)
            job->on_error(std::uint64_t(-1), error, later);
        }
        jobs_.clear();
        queue_.clear();
        phase_ = Phase::closed;
      }
      // The results fail only once the workers have stopped: by then every task, and every
      // input it was sent straight from, has been received, so the caller may free its input.
      stop_workers();
      run(later);
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
      // Sends are completed when there is nothing else to do or many are pending (the
      // eager ones are done at once; testing them every round costs an MPI call per chunk).
      if (!worked || task_sends_.size() >= 16) worked = complete_sends(later) || worked;
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
  /// A receive posted for the first message of results.
  struct Slot {
    Bytes buffer;
    MPI_Request request = MPI_REQUEST_NULL;
  };
  /// The second part of a long result, on its way.
  struct BulkReceive {
    MPI_Request request = MPI_REQUEST_NULL;
    int worker = 0;
    ResultHead head;
    Bytes buffer;                  // [item count][bulk], or empty when received in place
    std::shared_ptr<JobCore> job;  // set when received straight into the job's output
    std::uint64_t items = 0;
  };
  /// A task on its way to a worker.
  struct TaskSend {
    std::array<MPI_Request, 2> requests{MPI_REQUEST_NULL, MPI_REQUEST_NULL};
    Bytes buffer;                  // the task message (the bulk when it is cut from it)
    Bytes first;                   // the first of two messages
    Bytes keep;                    // a fed chunk whose arguments are the bulk
    std::shared_ptr<JobCore> job;  // set when the bulk is the job's own input
  };

  static double now() {
    return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
  }

  static void run(Deferred& later) {
    for (auto& action : later) action();
    later.clear();
  }

  Bytes spare_buffer() {
    if (spare_.empty()) return {};
    Bytes b = std::move(spare_.back());
    spare_.pop_back();
    b.clear();
    return b;
  }
  void recycle(Bytes&& b) {
    if (spare_.size() < 64 && b.capacity() <= 4 * inline_bytes) spare_.push_back(std::move(b));
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
      // The progress thread keeps receiving until every worker said done and every task
      // left (a worker receives all of its tasks before it answers).
      ProgressEngine::instance().wake();
      wait_until(
          [this] {
            std::lock_guard lock(mutex_);
            return std::all_of(ws_.begin(), ws_.end(),
                               [](const WorkerState& w) { return w.results == w.expected; }) &&
                   bulks_.empty() && task_sends_.empty();
          },
          no_deadline, {name_, "join", -1});
    }
    if (attached_) {
      ProgressEngine::instance().detach(*this);
      attached_ = false;
    }
    for (auto& slot : result_slots_) cancel_receive(slot.request);
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
        const auto head = read_head<ResultHead>(r.data());
        arrived(ws_[0], head);
        deliver(ws_[0], head, std::span<const char>(r).subspan(sizeof(ResultHead)), later);
        worked = true;
      }
      return worked;
    }
    // First messages, in the order their posted receives were matched.
    for (;;) {
      Slot& slot = result_slots_[result_next_];
      MPI_Status status{};
      if (!completed(comm_, slot.request, &status)) break;
      const std::size_t bytes = message_bytes(status);
      WorkerState& w = worker(status.MPI_SOURCE);
      if (bytes < sizeof(ResultHead))
        fail(name_, "receive", "a result message is shorter than its head");
      const auto head = read_head<ResultHead>(slot.buffer.data());
      arrived(w, head);
      if (!(head.flags & bulk_flag)) {
        deliver(w, head, {slot.buffer.data() + sizeof(ResultHead), bytes - sizeof(ResultHead)},
                later);
      } else {
        if (bytes != result_split)
          fail(name_, "receive", "a long result's first message has the wrong size");
        std::uint64_t bulk = 0, word = 0;
        std::memcpy(&bulk, slot.buffer.data() + sizeof(ResultHead), sizeof bulk);
        std::memcpy(&word, slot.buffer.data() + sizeof(ResultHead) + sizeof bulk, sizeof word);
        receive_bulk(w, head, bulk, word);
      }
      slot.request =
          post_receive(comm_, slot.buffer.data(), inline_bytes, MPI_ANY_SOURCE, result_tag);
      result_next_ = (result_next_ + 1) % result_slots_.size();
      worked = true;
    }
    // Second parts.
    for (auto it = bulks_.begin(); it != bulks_.end();) {
      if (!completed(comm_, it->request)) {
        ++it;
        continue;
      }
      WorkerState& w = worker(it->worker);
      if (it->job)
        deliver_in_place(w, it->head, it->job, it->items, later);
      else
        deliver(w, it->head, it->buffer, later);
      recycle(std::move(it->buffer));
      it = bulks_.erase(it);
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

  /// Posts the receive of a long result's second part: straight into the job's output when
  /// the job offers a place for these plain-data results, otherwise into a buffer.
  void receive_bulk(WorkerState& w, const ResultHead& head, std::uint64_t bulk,
                    std::uint64_t word) {
    BulkReceive b;
    b.worker = w.rank;
    b.head = head;
    b.head.flags &= ~bulk_flag;
    if (b.head.flags == 0) {
      auto it = jobs_.find(head.job);
      if (it != jobs_.end() && it->second->landing && !it->second->failed) {
        const std::span<char> place = it->second->landing(head.chunk, word);
        if (!place.empty() && place.size() == bulk) {
          b.job = it->second;
          b.items = word;
          b.request = post_receive(comm_, place.data(), place.size(), w.rank, result_bulk_tag);
          bulks_.push_back(std::move(b));
          return;
        }
      }
    }
    b.buffer = spare_buffer();
    b.buffer.resize(sizeof word + bulk);
    std::memcpy(b.buffer.data(), &word, sizeof word);
    b.request = post_receive(comm_, b.buffer.data() + sizeof word, bulk, w.rank, result_bulk_tag);
    bulks_.push_back(std::move(b));
  }

  WorkerState& worker(int rank) {
    for (auto& w : ws_)
      if (w.rank == rank) return w;
    fail(name_, "receive",
         "a message came from rank " + std::to_string(rank) +
             ", which is not a worker of this pool");
  }

  /// A result's first message is in: the worker has room for another chunk.
  void arrived(WorkerState& w, const ResultHead& head) {
    --w.in_flight;
    chunk_seconds_ =
        chunk_seconds_ < 0 ? head.seconds : 0.75 * chunk_seconds_ + 0.25 * head.seconds;
  }

  /// A result whose items were received straight into the job's output.
  void deliver_in_place(WorkerState& w, const ResultHead& head, const std::shared_ptr<JobCore>& job,
                        std::uint64_t items, Deferred& later) {
    ++w.results;
    if (!jobs_.count(head.job)) return;  // the job was terminated
    ++job->returned;
    if (!job->failed) {
      job->items_done += items;
      draw_progress(*job, false);
    }
    finish_if_complete(*job, later);
  }

  /// A whole result (payload after the head).
  void deliver(WorkerState& w, const ResultHead& head, std::span<const char> payload,
               Deferred& later) {
    ++w.results;
    auto it = jobs_.find(head.job);
    if (it == jobs_.end()) return;  // the job was terminated
    auto job = it->second;
    ++job->returned;
    if (job->failed) {
      finish_if_complete(*job, later);
      return;
    }
    std::exception_ptr error;
    Reader in(payload);
    if (head.flags == 0) {
      Reader peek = in;
      const auto items = peek.raw<std::uint64_t>();
      try {
        job->on_result(head.chunk, in, later);
        job->items_done += items;
      } catch (...) {
        error = std::current_exception();
      }
    } else {
      const auto rank = static_cast<int>(in.raw<std::int64_t>());
      auto type = get<std::string>(in);
      auto message = get<std::string>(in);
      error = std::make_exception_ptr(RemoteError(rank, std::move(type), std::move(message)));
    }
    if (error) fail_chunk(*job, head.chunk, error, later);
    draw_progress(*job, false);
    finish_if_complete(*job, later);
  }

  /// A chunk failed. A job whose input still travels from the caller's memory reports the
  /// error once that memory is no longer read (the caller may free it when get() throws).
  void fail_chunk(JobCore& job, std::uint64_t chunk, std::exception_ptr error, Deferred& later) {
    if (!job.keep_going_after_error) job.failed = true;
    if (job.views_pending > 0 && !job.keep_going_after_error) {
      if (!job.held_error) job.held_error = std::move(error);
      return;
    }
    job.on_error(chunk, std::move(error), later);
  }

  void finish_if_complete(JobCore& job, Deferred& later) {
    if (job.held_error && job.views_pending == 0) {
      job.on_error(0, std::move(job.held_error), later);
      job.held_error = nullptr;
    }
    const bool no_more = job.input_done || (job.failed && !job.keep_going_after_error);
    if (!no_more || job.returned != job.produced || !job.fed.empty() || job.views_pending > 0)
      return;
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

  /// The next chunk to send, oldest job first.
  struct Task {
    Bytes message;                      // [TaskHead][state][arguments or their count]
    std::span<const char> bulk;         // the arguments' items, sent from where they are
    Bytes keep;                         // owner of `bulk` (a fed chunk), if not the job
    std::shared_ptr<JobCore> view_job;  // owner of `bulk` when it is the job's input
  };
  bool next_task(Task& task, Deferred& later, const JobCore* only) {
    for (std::size_t i = 0; i < queue_.size();) {
      if (only && queue_[i].get() != only) {
        ++i;
        continue;
      }
      JobCore* job = queue_[i].get();  // valid until finish_if_complete below
      if (job->failed && !job->keep_going_after_error) {
        queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(i));
        continue;
      }
      auto header = [&](std::uint64_t chunk) {
        task.message = spare_buffer();
        TaskHead head;
        head.job = static_cast<std::uint32_t>(job->id);
        head.chunk = chunk;
        head.invoker_index = job->invoker.index;
        head.invoker_check = job->invoker.check;
        head.state_bytes = static_cast<std::uint32_t>(job->state.size());
        task.message.resize(sizeof head);
        write_head(task.message.data(), head);
        task.message.insert(task.message.end(), job->state.begin(), job->state.end());
      };
      if (!job->fed.empty()) {
        auto [chunk, args] = std::move(job->fed.front());
        job->fed.pop_front();
        header(chunk);
        if (!local_ && args.size() > sizeof(std::uint64_t) &&
            task.message.size() + args.size() > inline_bytes &&
            task.message.size() + 2 * sizeof(std::uint64_t) <= inline_bytes) {
          // The arguments travel from the fed buffer itself; the first message ends with
          // their count.
          task.message.insert(task.message.end(), args.begin(),
                              args.begin() + sizeof(std::uint64_t));
          task.keep = std::move(args);
          task.bulk = std::span<const char>(task.keep).subspan(sizeof(std::uint64_t));
        } else {
          task.message.insert(task.message.end(), args.begin(), args.end());
        }
        return true;
      }
      if (job->generate && !job->input_done) {
        header(job->produced);
        std::span<const char> view;
        const bool may_view =
            !local_ && task.message.size() + 2 * sizeof(std::uint64_t) <= inline_bytes;
        if (job->generate(task.message, may_view ? &view : nullptr)) {
          ++job->produced;
          if (task.message.size() + view.size() <= inline_bytes) {
            task.message.insert(task.message.end(), view.begin(), view.end());  // one message
          } else if (!view.empty()) {
            task.bulk = view;
            task.view_job = queue_[i];
          }
          return true;
        }
        recycle(std::move(task.message));
        job->input_done = true;
        finish_if_complete(*job, later);
        continue;  // the job may be gone; look at the same position again
      }
      ++i;
    }
    return false;
  }

  /// Sends chunks (of `only` if given) until every worker holds its share.
  bool dispatch(Deferred& later, const JobCore* only = nullptr) {
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
        Task task;
        if (!next_task(task, later, only)) return worked;
        send_task(w, std::move(task));
        worked = true;
      }
    }
    return worked;
  }

  void send_task(WorkerState& w, Task task) {
    ++w.in_flight;
    ++w.tasks_sent;
    if (local_) {
      {
        std::lock_guard lock(local_mutex_);
        local_tasks_.push_back(std::move(task.message));
      }
      local_cv_.notify_one();
      return;
    }
    TaskSend s;
    Bytes& m = task.message;
    if (task.bulk.empty() && m.size() <= inline_bytes) {
      s.requests[0] = post_send(comm_, m.data(), m.size(), w.rank, task_tag);
    } else {
      // Two messages: [head (flagged)][bulk length][what the first carries], then the bulk:
      // the items where they are, or the rest of a message too long to travel whole.
      auto head = read_head<TaskHead>(m.data());
      head.state_bytes |= bulk_flag;
      const std::size_t carried = task.bulk.empty() ? 0 : m.size() - sizeof(TaskHead);
      const std::span<const char> bulk =
          task.bulk.empty() ? std::span<const char>(m).subspan(sizeof(TaskHead)) : task.bulk;
      const std::uint64_t bulk_bytes = bulk.size();
      s.first.resize(sizeof(TaskHead) + sizeof bulk_bytes + carried);
      write_head(s.first.data(), head);
      std::memcpy(s.first.data() + sizeof(TaskHead), &bulk_bytes, sizeof bulk_bytes);
      std::memcpy(s.first.data() + sizeof(TaskHead) + sizeof bulk_bytes,
                  m.data() + sizeof(TaskHead), carried);
      s.requests[0] = post_send(comm_, s.first.data(), s.first.size(), w.rank, task_tag);
      s.requests[1] = post_send(comm_, bulk.data(), bulk.size(), w.rank, task_bulk_tag);
      s.keep = std::move(task.keep);
      if (task.view_job) {
        ++task.view_job->views_pending;
        s.job = std::move(task.view_job);
      }
    }
    s.buffer = std::move(m);
    task_sends_.push_back(std::move(s));
  }

  /// Completes the sends of tasks that have left; returns buffers for reuse.
  bool complete_sends(Deferred& later) {
    bool worked = false;
    // In order: a worker takes its tasks in order, and they rarely wait for one another.
    for (auto it = task_sends_.begin(); it != task_sends_.end();) {
      if (!completed(comm_, it->requests[0]) || !completed(comm_, it->requests[1])) break;
      if (it->job) {
        --it->job->views_pending;
        if (it->job->views_pending == 0 && jobs_.count(it->job->id))
          finish_if_complete(*it->job, later);
      }
      recycle(std::move(it->buffer));
      it = task_sends_.erase(it);
      worked = true;
    }
    while (!sends_.empty() && sends_.front().test()) sends_.pop_front();
    return worked;
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
      Bytes result;
      execute_chunk(task, rank, result);
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
  double chunk_seconds_ = -1;       // running average of how long a chunk runs; -1: unknown
  std::deque<Future<void>> sends_;  // stop messages
  std::vector<Slot> result_slots_;
  std::size_t result_next_ = 0;
  std::deque<BulkReceive> bulks_;
  std::deque<TaskSend> task_sends_;
  std::vector<Bytes> spare_;

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

  // Receives posted for the first messages of tasks, matched in posting order, so the
  // slots fill (and are run) in the order the driver sent the tasks.
  struct Slot {
    Bytes buffer;
    MPI_Request request = MPI_REQUEST_NULL;
  };
  std::vector<Slot> slots(max_prefetch + 1);
  auto post = [&](Slot& s) {
    s.request = post_receive(comm, s.buffer.data(), inline_bytes, driver, task_tag);
  };
  for (auto& s : slots) {
    s.buffer.resize(inline_bytes);
    post(s);
  }
  std::size_t next = 0;
  std::uint64_t stop_word = 0;
  MPI_Request stop = post_receive(comm, &stop_word, sizeof stop_word, driver, stop_tag);

  // Results on their way to the driver, oldest first; their buffers are reused.
  struct Sending {
    std::array<MPI_Request, 2> requests{MPI_REQUEST_NULL, MPI_REQUEST_NULL};
    Bytes buffer;
    Bytes first;  // the first message of a long result
  };
  std::deque<Sending> sending;
  std::vector<Bytes> spare;
  auto complete_sends = [&] {
    while (!sending.empty() && completed(comm, sending.front().requests[0]) &&
           completed(comm, sending.front().requests[1])) {
      if (spare.size() < 4) spare.push_back(std::move(sending.front().buffer));
      sending.pop_front();
    }
  };

  Bytes long_task;  // a task that came in two messages, joined
  // The whole task whose first message is in `s` (receives its second part if it has one).
  auto whole_task = [&](Slot& s, const MPI_Status& status) -> std::span<const char> {
    const std::size_t bytes = message_bytes(status);
    if (bytes < sizeof(TaskHead)) fail(comm.name(), "receive", "a task message is too short");
    auto head = read_head<TaskHead>(s.buffer.data());
    if (!(head.state_bytes & bulk_flag)) return {s.buffer.data(), bytes};
    constexpr std::size_t first = sizeof(TaskHead) + sizeof(std::uint64_t);
    if (bytes < first) fail(comm.name(), "receive", "a task message is too short");
    std::uint64_t bulk = 0;
    std::memcpy(&bulk, s.buffer.data() + sizeof(TaskHead), sizeof bulk);
    // [head][state and the arguments' first bytes][bulk]
    const std::size_t front = sizeof(TaskHead) + (bytes - first);
    long_task.resize(front + bulk);
    head.state_bytes &= ~bulk_flag;
    write_head(long_task.data(), head);
    std::memcpy(long_task.data() + sizeof(TaskHead), s.buffer.data() + first, bytes - first);
    MPI_Request r = post_receive(comm, long_task.data() + front, bulk, driver, task_bulk_tag);
    comm.wait_transfer(r, bulk, "receive", driver);
    return long_task;
  };

  std::uint64_t received = 0;
  std::uint64_t sent = 0;
  Backoff backoff;
  // For a few milliseconds after its last task (or its start) a worker only yields between
  // polls, so the next chunk is taken at once; then it backs off to sleeping, as every wait.
  auto last_work = Clock::now();
  auto pause = [&] {
    if (Clock::now() - last_work < hot_window)
      sched_yield();
    else
      backoff.pause();
  };
  for (;;) {
    if (completed(comm, stop)) {
      // Take the tasks the driver sent before it said stop off the wire, unrun.
      const std::uint64_t tasks = stop_word;
      while (received < tasks) {
        Slot& s = slots[next];
        MPI_Status status{};
        if (completed(comm, s.request, &status)) {
          ++received;
          whole_task(s, status);
          post(s);
          next = (next + 1) % slots.size();
          backoff.reset();
        } else {
          complete_sends();
          backoff.pause();
        }
      }
      for (auto& s : slots) cancel_receive(s.request);
      Bytes done;
      put_raw(done, sent);
      auto done_send = comm.isend(std::move(done), driver, done_tag);
      wait_until(
          [&] {
            complete_sends();
            return sending.empty();
          },
          no_deadline, {comm.name(), "stop", driver, comm.native()});
      done_send.wait();
      return;
    }
    Slot& s = slots[next];
    MPI_Status status{};
    if (completed(comm, s.request, &status)) {
      ++received;
      const auto task = whole_task(s, status);
      Sending out;
      if (!spare.empty()) {
        out.buffer = std::move(spare.back());
        spare.pop_back();
      }
      execute_chunk(task, rank, out.buffer);
      post(s);
      next = (next + 1) % slots.size();
      // Send the result: whole, or its head, length and first word, then the rest.
      Bytes& b = out.buffer;
      if (b.size() <= inline_bytes) {
        out.requests[0] = post_send(comm, b.data(), b.size(), driver, result_tag);
      } else {
        auto head = read_head<ResultHead>(b.data());
        head.flags |= bulk_flag;
        constexpr std::size_t cut = sizeof(ResultHead) + sizeof(std::uint64_t);
        const std::uint64_t bulk = b.size() - cut;
        out.first.resize(result_split);
        write_head(out.first.data(), head);
        std::memcpy(out.first.data() + sizeof(ResultHead), &bulk, sizeof bulk);
        std::memcpy(out.first.data() + sizeof(ResultHead) + sizeof bulk,
                    b.data() + sizeof(ResultHead), sizeof(std::uint64_t));
        out.requests[0] = post_send(comm, out.first.data(), out.first.size(), driver, result_tag);
        out.requests[1] = post_send(comm, b.data() + cut, bulk, driver, result_bulk_tag);
      }
      sending.push_back(std::move(out));
      ++sent;
      complete_sends();
      backoff.reset();
      last_work = Clock::now();
      continue;
    }
    complete_sends();
    pause();
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
  // Same program and same options everywhere, or every rank fails together. The options are
  // validated only after every rank compared them, so a bad option on one rank fails every
  // rank instead of leaving the others waiting in the allgather.
  if (comm.is_null())
    detail::fail(name, "serve",
                 "this rank is not a member of " + comm.name() +
                     " (split() gave it a null communicator); serve a pool only on its ranks");
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
  if (options.driver < 0 || options.driver >= comm.size())
    detail::fail(name, "serve",
                 "driver " + std::to_string(options.driver) + " is out of range: " + comm.name() +
                     " has " + std::to_string(comm.size()) + " rank(s), numbered 0.." +
                     std::to_string(comm.size() - 1) +
                     "; check the rank you pass, and the -n of mpiexec");
  if (options.processes < 0)
    detail::fail(name, "serve", "processes must be >= 0 (0 means every rank but the driver)");

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
