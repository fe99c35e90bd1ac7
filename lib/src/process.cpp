#include "mpx/process.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <mutex>
#include <ostream>
#include <thread>
#include <typeinfo>
#include <unordered_map>

#include "mpx/detail/check.hpp"
#include "mpx/detail/creation.hpp"
#include "mpx/detail/demangle.hpp"
#include "mpx/detail/progress.hpp"

namespace mpx {

namespace detail {

// Tags on the slots' private communicator.
constexpr int start_tag = 1;      // main -> slot: a target to run (bytes)
constexpr int terminate_tag = 2;  // main -> slot: {id, signal}
constexpr int done_tag = 3;       // slot -> main: {id, exitcode}
constexpr int shutdown_tag = 4;   // main -> slot: serve() returns

enum : int { state_initial = 0, state_started = 1, state_stopped = 2 };

/// The shared state of one Process: the handle on the main process, and (in thread mode or
/// on a slot) the running target, point to it.
struct ProcessControl {
  Process* owner = nullptr;  // guarded by g_mutex
  std::uint64_t id = 0;
  int number = 0;    // N of the default name
  std::string name;  // empty until given or computed
  bool daemon = false;
  std::atomic<int> state{state_initial};
  std::atomic<int> exitcode{0};
  int rank = -1;
  pid_t pid = 0;
  pid_t parent_pid = 0;
  std::atomic<int> interrupt{0};  // signal asked for (target side)
  bool delivered = false;         // the interrupt was thrown (target thread only)
  std::mutex thread_mutex;
  std::thread thread;  // thread mode
};

namespace {

std::mutex g_mutex;  // owners, children, the runtime pointer
std::atomic<int> g_counter{0};
std::atomic<std::uint64_t> g_next_id{0};
std::atomic<int> g_slots_count{0};
ProcessRuntime* g_runtime = nullptr;                // guarded by g_mutex
thread_local ProcessControl* tl_control = nullptr;  // the target this thread runs
thread_local int tl_rebuilding = 0;                 // RebuildScope depth

struct SubclassEntry {
  const InvokerId* invoker;
  std::vector<char> (*save)(const Process&);
};
std::unordered_map<std::type_index, SubclassEntry>& subclasses() {
  static std::unordered_map<std::type_index, SubclassEntry> map;
  return map;
}

struct NoTarget {
  void operator()() const {}
};

/// "MyProcess" for "ns::(anonymous namespace)::MyProcess".
std::string short_type_name(const std::type_info& type) {
  std::string full = demangle(type.name());
  int depth = 0;
  std::size_t cut = 0;
  for (std::size_t i = 0; i + 1 < full.size(); ++i) {
    if (full[i] == '<') ++depth;
    if (full[i] == '>') --depth;
    if (depth == 0 && full[i] == ':' && full[i + 1] == ':') cut = i + 2;
  }
  return full.substr(cut);
}

const char* signal_name(int code) {
  if (code == -15) return "SIGTERM";
  if (code == -9) return "SIGKILL";
  return nullptr;
}

void check_interrupt() {
  ProcessControl* c = tl_control;
  if (!c || c->delivered) return;
  const int signal = c->interrupt.load(std::memory_order_acquire);
  if (signal == 0 || std::uncaught_exceptions() > 0) return;
  c->delivered = true;
  throw ProcessTerminated{signal};
}

/// Runs a target on the calling thread; returns its exit code.
int run_target(ProcessControl& control, const ProcessTarget& target) {
  tl_control = &control;
  auto* previous_hook = interrupt_hook;
  interrupt_hook = &check_interrupt;
  int code = 0;
  try {
    check_interrupt();
    const InvokeFn fn = find_invoker(target.invoker);
    Reader args(target.args);
    std::vector<char> unused;
    fn(target.state, args, unused);
  } catch (const ProcessTerminated& t) {
    code = -t.signal;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "Process %s:\n%s: %s\n", control.name.c_str(),
                 demangle(typeid(e).name()).c_str(), e.what());
    code = 1;
  } catch (...) {
    std::fprintf(stderr, "Process %s:\nan exception of unknown type escaped the target\n",
                 control.name.c_str());
    code = 1;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  interrupt_hook = previous_hook;
  tl_control = nullptr;
  return code;
}

std::vector<char> encode_start(const ProcessControl& c, const ProcessTarget& t) {
  std::vector<char> out;
  put(out, c.id);
  put(out, c.name);
  put(out, c.daemon);
  put(out, c.parent_pid);
  put(out, t.invoker);
  put(out, t.state);
  put(out, t.args);
  return out;
}

}  // namespace

/// The slots of one ProcessSlots: the main process's bookkeeping, or a slot's server.
class ProcessRuntime final : public Service {
 public:
  ProcessRuntime(const Communicator& comm, std::string name)
      : name_(std::move(name)), comm_(comm.duplicate(name_)), main_(comm_.rank() == 0) {}

  ~ProcessRuntime() override {
    if (attached_) ProgressEngine::instance().detach(*this);
  }

  void setup(std::vector<pid_t> pids) {
    pids_ = std::move(pids);
    slots_.resize(pids_.size());
    ProgressEngine::instance().attach(*this);
    attached_ = true;
  }

  [[nodiscard]] bool main() const noexcept { return main_; }
  [[nodiscard]] int slot_count() const noexcept { return comm_.size() - 1; }
  [[nodiscard]] pid_t main_pid() const noexcept { return pids_.empty() ? 0 : pids_[0]; }

  // ---- main process --------------------------------------------------------------------------

  void launch(const std::shared_ptr<ProcessControl>& control, const ProcessTarget& target,
              Clock::time_point deadline, std::string_view operation) {
    control->parent_pid = ::getpid();
    if (slot_count() == 0) {  // alone: the target runs in a thread of this process
      control->rank = 0;
      control->pid = ::getpid();
      control->state.store(state_started, std::memory_order_release);
      remember(control);
      std::lock_guard lock(control->thread_mutex);
      control->thread = std::thread([control, target] {
        const int code = run_target(*control, target);
        control->exitcode.store(code, std::memory_order_relaxed);
        control->state.store(state_stopped, std::memory_order_release);
      });
      return;
    }
    int rank = -1;
    const bool got = wait_until(
        [&] {
          std::lock_guard lock(mutex_);
          for (int r = 1; r < comm_.size(); ++r) {
            if (slots_[static_cast<std::size_t>(r)]) continue;
            slots_[static_cast<std::size_t>(r)] = control;
            rank = r;
            return true;
          }
          return false;
        },
        deadline, {control->name, operation, -1});
    if (!got)
      fail<TimeoutError>(
          control->name, operation,
          "no process slot became free in time: all " + std::to_string(slot_count()) +
              " slots (ranks 1.." + std::to_string(slot_count()) +
              ") run other processes; join some first or run with more ranks (mpiexec -n K)");
    control->rank = rank;
    control->pid = pids_[static_cast<std::size_t>(rank)];
    control->state.store(state_started, std::memory_order_release);
    remember(control);
    comm_.send(encode_start(*control, target), rank, start_tag);
  }

  void signal(ProcessControl& control, int signal) {
    if (control.state.load(std::memory_order_acquire) != state_started) return;
    if (slot_count() == 0) {
      control.interrupt.store(signal, std::memory_order_release);
      return;
    }
    const std::array<std::int64_t, 2> message{static_cast<std::int64_t>(control.id), signal};
    comm_.send(message, control.rank, terminate_tag);
  }

  static void reap_thread(ProcessControl& control) {
    std::lock_guard lock(control.thread_mutex);
    if (control.thread.joinable()) control.thread.join();
  }

  void remember(const std::shared_ptr<ProcessControl>& control) {
    std::lock_guard lock(g_mutex);
    children_.push_back(control);
  }

  /// Children that have not been seen finished (prunes the others). Caller holds g_mutex.
  std::vector<std::shared_ptr<ProcessControl>> running_locked() {
    std::vector<std::shared_ptr<ProcessControl>> out;
    std::vector<std::shared_ptr<ProcessControl>> keep;
    for (auto& c : children_) {
      if (c->state.load(std::memory_order_acquire) == state_started) {
        out.push_back(c);
        keep.push_back(c);
      } else if (slot_count() == 0) {
        keep.push_back(c);  // its thread still has to be joined
      }
    }
    children_ = std::move(keep);
    return out;
  }

  /// End of the main process: terminate daemons, join everyone, release the slots.
  void shutdown() noexcept {
    try {
      std::vector<std::shared_ptr<ProcessControl>> running;
      {
        std::lock_guard lock(g_mutex);
        running = running_locked();
      }
      for (auto& c : running)
        if (c->daemon) signal(*c, 15);
      const auto grace = Clock::now() + daemon_grace();
      auto stopped = [](const std::shared_ptr<ProcessControl>& c) {
        return c->state.load(std::memory_order_acquire) == state_stopped;
      };
      for (auto& c : running)  // Python joins the others at exit
        if (!c->daemon)
          wait_until([&] { return stopped(c); }, no_deadline,
                     {c->name, "join (at the end of the main process)", c->rank});
      std::vector<std::shared_ptr<ProcessControl>> stuck;
      for (auto& c : running)
        if (c->daemon && !wait_until([&] { return stopped(c); }, grace,
                                     {c->name, "terminate (daemon, at the end)", c->rank}))
          stuck.push_back(c);
      std::vector<std::shared_ptr<ProcessControl>> all;
      {
        std::lock_guard lock(g_mutex);
        all = children_;
        children_.clear();
      }
      for (auto& c : all) {
        if (std::find(stuck.begin(), stuck.end(), c) == stuck.end()) {
          reap_thread(*c);
        } else {
          std::lock_guard lock(c->thread_mutex);
          if (c->thread.joinable()) c->thread.detach();  // ends with the process
        }
      }
      if (!stuck.empty()) end_job_for_stuck_daemons(stuck);
      for (int r = 1; r < comm_.size(); ++r) comm_.send(0, r, shutdown_tag);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
    }
  }

  /// How long a terminated daemon may take to stop at the end (MPX_DAEMON_GRACE seconds,
  /// default 5).
  static Clock::duration daemon_grace() {
    const char* v = std::getenv("MPX_DAEMON_GRACE");
    const double seconds = v && *v ? std::strtod(v, nullptr) : 5.0;
    return std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(seconds > 0 ? seconds : 0.0));
  }

  /// Daemons that ignore terminate (they make no mpx call) would keep the job alive for
  /// ever: on a slot they cannot be stopped without ending the job, which Python's exit
  /// (SIGKILL to its daemons) amounts to. In thread mode the thread just ends with the
  /// process.
  void end_job_for_stuck_daemons(const std::vector<std::shared_ptr<ProcessControl>>& stuck) {
    if (slot_count() == 0) return;
    for (auto& c : stuck)
      std::fprintf(stderr,
                   "mpx: daemon process %s (rank %d) did not stop within MPX_DAEMON_GRACE after "
                   "terminate() at the end of the main process: its target makes no mpx call "
                   "(call mpx::interruption_point() in long loops). Ending the job, as Python "
                   "kills its daemons at exit.\n",
                   c->name.c_str(), c->rank);
    std::fflush(stdout);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 0);
  }

  std::vector<Process*> active_children() {
    std::lock_guard lock(g_mutex);
    std::vector<Process*> out;
    for (auto& c : running_locked())
      if (c->owner) out.push_back(c->owner);
    return out;
  }

  // ---- slot ---------------------------------------------------------------------------------

  /// Runs targets until the main process releases the slot.
  void serve_slot() {
    for (;;) {
      int tag = -1;
      wait_until(
          [&] {
            if (comm_.iprobe(0, start_tag))
              tag = start_tag;
            else if (comm_.iprobe(0, shutdown_tag))
              tag = shutdown_tag;
            return tag != -1;
          },
          no_deadline, {name_, "serve", 0});
      if (tag == shutdown_tag) {
        (void)comm_.recv<int>(0, shutdown_tag);
        return;
      }
      run_one(comm_.recv<std::vector<char>>(0, start_tag));
    }
  }

  void run_one(const std::vector<char>& bytes) {
    Reader in(bytes);
    auto control = std::make_shared<ProcessControl>();
    control->id = get<std::uint64_t>(in);
    control->name = get<std::string>(in);
    control->daemon = get<bool>(in);
    control->parent_pid = get<pid_t>(in);
    ProcessTarget target;
    target.invoker = get<InvokerId>(in);
    target.state = get<std::vector<char>>(in);
    target.args = get<std::vector<char>>(in);
    control->rank = comm_.rank();
    control->pid = ::getpid();
    {
      std::lock_guard lock(slot_mutex_);
      const auto pending = pending_.find(control->id);
      if (pending != pending_.end()) control->interrupt.store(pending->second);
      current_ = control;
    }
    const std::string slot_name = this_process().name();
    this_process().set_name(control->name);
    const int code = run_target(*control, target);
    this_process().set_name(slot_name);
    {
      std::lock_guard lock(slot_mutex_);
      current_.reset();
      last_done_ = control->id;
      pending_.erase(pending_.begin(), pending_.upper_bound(control->id));
    }
    const std::array<std::int64_t, 2> done{static_cast<std::int64_t>(control->id), code};
    comm_.send(done, 0, done_tag);
  }

  [[nodiscard]] std::shared_ptr<ProcessControl> current() {
    std::lock_guard lock(slot_mutex_);
    return current_;
  }

  // ---- progress thread ------------------------------------------------------------------------

  bool progress() override {
    bool worked = false;
    try {
      const int tag = main_ ? done_tag : terminate_tag;
      while (auto status = comm_.iprobe(main_ ? Communicator::any_source : 0, tag)) {
        const auto message = comm_.recv<std::array<std::int64_t, 2>>(status->source, tag);
        worked = true;
        if (main_)
          finished(status->source, message);
        else
          terminate_request(message);
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: %s\n", name_.c_str(), e.what());
    }
    return worked;
  }

  [[nodiscard]] const char* service_name() const noexcept override { return name_.c_str(); }

 private:
  void finished(int rank, const std::array<std::int64_t, 2>& message) {
    std::shared_ptr<ProcessControl> control;
    {
      std::lock_guard lock(mutex_);
      control = std::move(slots_[static_cast<std::size_t>(rank)]);
      slots_[static_cast<std::size_t>(rank)].reset();
    }
    if (!control || control->id != static_cast<std::uint64_t>(message[0])) return;
    control->exitcode.store(static_cast<int>(message[1]), std::memory_order_relaxed);
    control->state.store(state_stopped, std::memory_order_release);
  }

  void terminate_request(const std::array<std::int64_t, 2>& message) {
    const auto id = static_cast<std::uint64_t>(message[0]);
    std::lock_guard lock(slot_mutex_);
    if (current_ && current_->id == id) {
      current_->interrupt.store(static_cast<int>(message[1]), std::memory_order_release);
    } else if (id > last_done_) {
      pending_[id] = static_cast<int>(message[1]);  // arrived before its start message
    }
  }

  std::string name_;
  Communicator comm_;
  bool main_;
  bool attached_ = false;
  std::vector<pid_t> pids_;
  // main process
  std::mutex mutex_;
  std::vector<std::shared_ptr<ProcessControl>> slots_;     // by rank: the process it runs
  std::vector<std::shared_ptr<ProcessControl>> children_;  // guarded by g_mutex
  // slot
  std::mutex slot_mutex_;
  std::shared_ptr<ProcessControl> current_;
  std::map<std::uint64_t, int> pending_;
  std::uint64_t last_done_ = 0;
};

RebuildScope::RebuildScope() noexcept { ++tl_rebuilding; }
RebuildScope::~RebuildScope() { --tl_rebuilding; }

void adopt_identity(Process& p, Reader& args) {
  p.control_->name = get<std::string>(args);
  p.control_->daemon = get<bool>(args);
  p.control_->pid = ::getpid();
  if (tl_control) {
    p.control_->rank = tl_control->rank;
    p.control_->parent_pid = tl_control->parent_pid;
    p.control_->id = tl_control->id;
  }
  p.control_->state.store(state_started, std::memory_order_release);
}

bool register_process_class(std::type_index type, const InvokerId* invoker,
                            std::vector<char> (*save)(const Process&)) noexcept {
  try {
    subclasses()[type] = SubclassEntry{invoker, save};
    return true;
  } catch (...) {
    return false;
  }
}

void sleep_until(Clock::time_point deadline) {
  interruption_point();
  wait_until([] { return false; }, deadline, {"mpx", "sleep_for", -1});
  interruption_point();
}

}  // namespace detail

// ---- Process ------------------------------------------------------------------------------------

Process::Process() : Process(ProcessOptions{}) {}

Process::Process(ProcessOptions options) : control_(std::make_shared<detail::ProcessControl>()) {
  control_->owner = this;
  if (detail::tl_rebuilding == 0) control_->number = ++detail::g_counter;
  control_->name = std::move(options.name);
  control_->daemon = options.daemon;
}

Process::Process(Process&& other) noexcept
    : control_(std::move(other.control_)),
      target_(std::move(other.target_)),
      has_target_(other.has_target_) {
  std::lock_guard lock(detail::g_mutex);
  if (control_) control_->owner = this;
}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    std::lock_guard lock(detail::g_mutex);
    if (control_) control_->owner = nullptr;
    control_ = std::move(other.control_);
    target_ = std::move(other.target_);
    has_target_ = other.has_target_;
    if (control_) control_->owner = this;
  }
  return *this;
}

Process::~Process() {
  std::lock_guard lock(detail::g_mutex);
  if (control_ && control_->owner == this) control_->owner = nullptr;
}

void Process::run() {
  if (!has_target_) return;
  const detail::InvokeFn fn = detail::find_invoker(target_.invoker);
  detail::Reader args(target_.args);
  std::vector<char> unused;
  fn(target_.state, args, unused);
}

const std::string& Process::name() const {
  if (!control_)
    detail::fail("Process", "name", "this Process was moved from; use the Process it was moved to");
  if (control_->name.empty())
    control_->name =
        detail::short_type_name(typeid(*this)) + "-" + std::to_string(control_->number);
  return control_->name;
}

void Process::set_name(std::string name) {
  if (!control_)
    detail::fail("Process", "set_name",
                 "this Process was moved from; use the Process it was moved to");
  control_->name = std::move(name);
}

bool Process::daemon() const { return control_ && control_->daemon; }

void Process::set_daemon(bool daemon) {
  if (control_ && control_->state.load() != detail::state_initial)
    detail::fail(name(), "set_daemon",
                 "the daemon flag cannot change after start() (as in Python)");
  if (control_) control_->daemon = daemon;
}

detail::ProcessTarget Process::make_target() const {
  if (has_target_) return target_;
  const std::type_index type = typeid(*this);
  if (type == std::type_index(typeid(Process))) {
    detail::ProcessTarget t;
    t.invoker = detail::ProcessInvoker<detail::NoTarget>::id;
    detail::put(t.args, std::tuple<>());
    return t;
  }
  const auto& map = detail::subclasses();
  const auto found = map.find(type);
  if (found == map.end())
    detail::fail(name(), "start",
                 "class " + detail::demangle(typeid(*this).name()) +
                     " derives from mpx::Process but is not registered, so its process slot cannot "
                     "rebuild it: add `MPX_REGISTER_PROCESS(" +
                     detail::short_type_name(typeid(*this)) +
                     ");` at namespace scope after the class");
  detail::ProcessTarget t;
  t.invoker = *found->second.invoker;
  t.state = found->second.save(*this);
  detail::put(t.args, name());
  detail::put(t.args, daemon());
  return t;
}

void Process::start() { start_until(detail::no_deadline, "start"); }

void Process::start_until(detail::Clock::time_point deadline, std::string_view operation) {
  if (!control_)
    detail::fail("Process", "start",
                 "this Process was moved from; use the Process it was moved to");
  detail::ProcessRuntime* runtime = nullptr;
  {
    std::lock_guard lock(detail::g_mutex);
    runtime = detail::g_runtime;
  }
  if (!runtime || !runtime->main())
    detail::fail(
        name(), operation,
        runtime ? "only the main process (rank 0) can start processes; this rank is a process slot"
                : "no process slots: start processes inside "
                  "`if (auto main_process = mpx::ProcessSlots::serve()) { ... }`");
  if (control_->state.load() != detail::state_initial)
    detail::fail(name(), operation, "a process can only be started once (create a new Process)");
  (void)name();  // fixes the default name now, from the dynamic type
  const detail::ProcessTarget target = make_target();
  control_->id = ++detail::g_next_id;
  runtime->launch(control_, target, deadline, operation);
}

bool Process::join() { return join_until(detail::no_deadline); }

bool Process::join_until(detail::Clock::time_point deadline) {
  if (!control_)
    detail::fail("Process", "join", "this Process was moved from; use the Process it was moved to");
  if (control_->state.load() == detail::state_initial)
    detail::fail(name(), "join", "can only join a started process: call start() first");
  auto& c = *control_;
  const bool done = detail::wait_until(
      [&] { return c.state.load(std::memory_order_acquire) == detail::state_stopped; }, deadline,
      {c.name, "join", c.rank});
  if (done) detail::ProcessRuntime::reap_thread(c);
  return done;
}

bool Process::is_alive() const {
  return control_ && control_->state.load(std::memory_order_acquire) == detail::state_started;
}

void Process::send_signal(int signal) {
  if (!control_ || control_->state.load() != detail::state_started) return;
  detail::ProcessRuntime* runtime = nullptr;
  {
    std::lock_guard lock(detail::g_mutex);
    runtime = detail::g_runtime;
  }
  if (runtime) runtime->signal(*control_, signal);
}

void Process::terminate() { send_signal(15); }
void Process::kill() { send_signal(9); }

std::optional<int> Process::exitcode() const {
  if (!control_ || control_->state.load(std::memory_order_acquire) != detail::state_stopped)
    return std::nullopt;
  return control_->exitcode.load(std::memory_order_relaxed);
}

std::optional<pid_t> Process::pid() const {
  if (!control_ || control_->state.load(std::memory_order_acquire) == detail::state_initial)
    return std::nullopt;
  return control_->pid;
}

std::optional<int> Process::rank() const {
  if (!control_ || control_->state.load(std::memory_order_acquire) == detail::state_initial)
    return std::nullopt;
  return control_->rank;
}

std::string Process::repr() const {
  const std::string type = detail::short_type_name(typeid(*this));
  std::string status;
  switch (control_ ? control_->state.load(std::memory_order_acquire) : detail::state_stopped) {
    case detail::state_initial:
      status = "initial";
      break;
    case detail::state_started:
      status = "started";
      break;
    default: {
      const int code = control_ ? control_->exitcode.load() : 0;
      if (code == 0)
        status = "stopped";
      else if (const char* s = detail::signal_name(code))
        status = std::string("stopped[") + s + "]";
      else
        status = "stopped[" + std::to_string(code) + "]";
    }
  }
  if (daemon()) status += " daemon";
  return "<" + type + "(" + (control_ ? name() : std::string("moved-from")) + ", " + status + ")>";
}

std::ostream& operator<<(std::ostream& out, const Process& p) { return out << p.repr(); }

// ---- ProcessSlots -------------------------------------------------------------------------------

ProcessSlots ProcessSlots::serve(const Communicator& comm) {
  {
    std::lock_guard lock(detail::g_mutex);
    if (detail::g_runtime)
      detail::fail("ProcessSlots", "serve",
                   "another ProcessSlots is still alive; end it (leave its `if` block) before "
                   "serving again");
  }
  const std::string name = "ProcessSlots#" + std::to_string(++detail::g_slots_count);
  auto runtime = std::make_unique<detail::ProcessRuntime>(comm, name);
  // Every rank must run the identical program, or registry indices would name other code.
  struct Identity {
    std::uint64_t fingerprint;
    std::int64_t pid;
  };
  const Identity mine{detail::registry_fingerprint(), static_cast<std::int64_t>(::getpid())};
  const auto all = detail::gather_parameters(comm, mine, name, "serve");
  std::vector<pid_t> pids;
  for (std::size_t r = 0; r < all.size(); ++r) {
    pids.push_back(static_cast<pid_t>(all[r].pid));
    if (all[r].fingerprint != all[0].fingerprint)
      detail::fail(
          name, "serve",
          "rank " + std::to_string(r) +
              " runs a different program than rank 0 (their registries of callables differ); "
              "every rank must run the identical binary");
  }
  runtime->setup(std::move(pids));
  {
    std::lock_guard lock(detail::g_mutex);
    detail::g_runtime = runtime.get();
  }
  if (runtime->main()) return ProcessSlots(std::move(runtime));
  try {
    runtime->serve_slot();
  } catch (...) {
    std::lock_guard lock(detail::g_mutex);
    detail::g_runtime = nullptr;
    throw;
  }
  {
    std::lock_guard lock(detail::g_mutex);
    detail::g_runtime = nullptr;
  }
  return ProcessSlots();
}

ProcessSlots::ProcessSlots(std::unique_ptr<detail::ProcessRuntime> runtime) noexcept
    : runtime_(std::move(runtime)) {}

ProcessSlots::ProcessSlots(ProcessSlots&& other) noexcept : runtime_(std::move(other.runtime_)) {}

ProcessSlots& ProcessSlots::operator=(ProcessSlots&& other) noexcept {
  if (this != &other) {
    release();
    runtime_ = std::move(other.runtime_);
  }
  return *this;
}

ProcessSlots::~ProcessSlots() { release(); }

void ProcessSlots::release() noexcept {
  if (!runtime_) return;
  runtime_->shutdown();
  {
    std::lock_guard lock(detail::g_mutex);
    if (detail::g_runtime == runtime_.get()) detail::g_runtime = nullptr;
  }
  runtime_.reset();
}

int ProcessSlots::slots() const noexcept { return runtime_ ? runtime_->slot_count() : 0; }

// ---- free functions -----------------------------------------------------------------------------

CurrentProcess current_process() {
  CurrentProcess me;
  me.pid = ::getpid();
  me.rank = detail::world_rank_or_minus_one();
  me.parent_pid = ::getppid();
  if (const detail::ProcessControl* c = detail::tl_control) {
    me.name = c->name;
    me.daemon = c->daemon;
    me.parent_pid = c->parent_pid;
    return me;
  }
  std::lock_guard lock(detail::g_mutex);
  if (detail::g_runtime && !detail::g_runtime->main())
    me.name = "Slot-" + std::to_string(me.rank);
  else
    me.name = "MainProcess";
  return me;
}

std::vector<Process*> active_children() {
  detail::ProcessRuntime* runtime = nullptr;
  {
    std::lock_guard lock(detail::g_mutex);
    runtime = detail::g_runtime;
  }
  if (!runtime || !runtime->main()) return {};
  return runtime->active_children();
}

void interruption_point() { detail::check_interrupt(); }

}  // namespace mpx
