// mpx/process.hpp: Python's multiprocessing.Process on the ranks of an MPI job.
//
//   void foo(int i) { std::printf("called function in process: %d\n", i); }
//   MPX_REGISTER(foo);                                // free functions cross ranks by name
//
//   int main(int argc, char** argv) {
//     mpx::Environment env(argc, argv);
//     if (auto main_process = mpx::ProcessSlots::serve()) {   // collective; see below
//       for (int i = 0; i < 5; ++i) {
//         mpx::Process p(foo, i);                     // Process(target=foo, args=(i,))
//         p.start();
//         p.join();
//       }
//     }                                               // non-daemon children are joined here
//   }
//
// How a Process runs in another OS process. Python forks or spawns a child per Process; an
// MPI job cannot create processes reliably (MPI_Comm_spawn hangs now and then inside PMIx
// with Open MPI 4.1, and needs free slots), so mpx uses the processes mpiexec already
// started: rank 0 is the main process, and every other rank is a *process slot* that runs
// the targets rank 0 sends it, one at a time. ProcessSlots::serve() is the SPMD entry point,
// as Pool::serve() and mpi4py's MPICommExecutor: on rank 0 it returns a live object (true),
// on the other ranks it runs targets until rank 0's object ends, then returns an empty one
// (false), so the body of the `if` runs on the main process only.
//   * A target is a free function registered with MPX_REGISTER (the same registry as Pool),
//     a captureless lambda, or a function object that is empty or serializable, plus its
//     arguments, which are copied (serialized) to the slot, as Python pickles them. A
//     subclass of Process that overrides run() is rebuilt on the slot: register it with
//     MPX_REGISTER_PROCESS(MyProcess); its members travel if it has a Boost.Serialization
//     serialize() member, else it is default-constructed there.
//   * start() takes the free slot with the lowest rank. When every slot is busy, start()
//     waits until one is free (as a bounded pool would); start(timeout) throws
//     mpx::TimeoutError instead. So 40 processes run fine on `mpiexec -n 4`, but two
//     processes that wait for each other (a Barrier(2) between two targets) need at least
//     two slots: run with more ranks.
//   * Run alone (no mpiexec, a world of one rank) there are no slots: targets run in a
//     thread of the main process instead. That is a deviation from Python (same address
//     space, same pid), documented so that the same program still runs.
//   * Objects a target uses (Queue, Lock, Pipe...) are created collectively by every rank
//     *before* serve(), and a target reaches them through a global (every rank holds its own
//     handle of the same object), since an object handle cannot be sent as an argument.
//
// terminate() and kill(): the slot's progress thread receives the request and raises a flag;
// the target is unwound (by an mpx::ProcessTerminated exception) at the next mpx wait it
// makes (the blocking mpx calls that wait in detail::wait_until: recv, probe, Pipe.recv,
// acquire, wait, join...; not yet Queue.get/put, which wait in a loop of their own) or
// mpx::sleep_for(), and at mpx::interruption_point(). exitcode() is then -15 (terminate) or
// -9 (kill), as Python reports -SIGTERM and -SIGKILL. A target that computes without calling
// mpx cannot be stopped; a plain std::this_thread::sleep_for cannot be interrupted either: use
// mpx::sleep_for. As in Python, terminating a target while it holds a lock or is in the
// middle of a queue or pipe operation may leave that object unusable.
//
// Daemon processes are terminated when the main process ends (rank 0's ProcessSlots is
// destroyed); then every child still running is joined, as Python does at exit. A daemon
// that has not stopped MPX_DAEMON_GRACE seconds (default 5) after that terminate (its target
// makes no mpx call) would keep the job alive for ever: mpx then prints which one and ends
// the job with MPI_Abort(code 0), as Python kills its daemons; alone, its thread is left to
// end with the program.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeindex>
#include <utility>
#include <vector>

#include "mpx/communicator.hpp"
#include "mpx/detail/pool_registry.hpp"
#include "mpx/detail/wait.hpp"
#include "mpx/environment.hpp"
#include "mpx/error.hpp"

namespace mpx {

class Process;

/// Thrown inside a target that was terminated or killed, to unwind it. It deliberately does
/// not derive from std::exception, so `catch (const std::exception&)` in a target does not
/// swallow it; do not swallow it with `catch (...)` either (rethrow it).
struct ProcessTerminated {
  int signal = 15;  ///< 15 (terminate) or 9 (kill)
};

/// Name and daemon flag of a new Process (Python's Process(name=..., daemon=...)).
struct ProcessOptions {
  std::string name;     ///< empty: "Process-N" (or "<Subclass>-N"), as Python
  bool daemon = false;  ///< terminated when the main process ends instead of joined
};

namespace detail {

struct ProcessControl;
class ProcessRuntime;

/// What a slot needs to rebuild and run a target.
struct ProcessTarget {
  InvokerId invoker;
  std::vector<char> state;  // the callable (or the subclass object)
  std::vector<char> args;   // the arguments
};

template <class T>
using process_arg_t = std::conditional_t<std::is_same_v<std::decay_t<T>, const char*> ||
                                             std::is_same_v<std::decay_t<T>, char*>,
                                         std::string, std::decay_t<T>>;

/// Runs a function target on a slot: rebuilds the callable and calls it with the arguments.
template <class F, class... A>
struct ProcessInvoker {
  static void run(std::span<const char> state, Reader& args, std::vector<char>&) {
    F f = rebuild_callable<F>(state);
    auto values = get<std::tuple<A...>>(args);
    std::apply([&](auto&... a) { (void)std::invoke(f, a...); }, values);
  }
  static inline const InvokerId id =
      register_invoker(type_name<ProcessInvoker>(), &ProcessInvoker::run);
};

/// Sets the name and daemon flag of a Process rebuilt on a slot (process.cpp).
void adopt_identity(Process& p, Reader& args);

/// While alive on a thread, Process objects constructed there take no number from the
/// "Process-N" counter (they are copies rebuilt for a target, named by adopt_identity).
class RebuildScope {
 public:
  RebuildScope() noexcept;
  ~RebuildScope();
  RebuildScope(const RebuildScope&) = delete;
  RebuildScope& operator=(const RebuildScope&) = delete;
};

/// Runs a registered subclass on a slot: rebuilds the object and calls its run().
template <class T>
struct SubclassInvoker {
  static void run(std::span<const char> state, Reader& args, std::vector<char>&) {
    T object = [&] {
      const RebuildScope rebuilding;
      if constexpr (has_serialize_member<T>) {
        return decode<T>(state);
      } else {
        (void)state;
        return T{};
      }
    }();
    adopt_identity(object, args);
    object.run();
  }
  static std::vector<char> save(const Process& p) {
    std::vector<char> out;
    if constexpr (has_serialize_member<T>) encode(out, static_cast<const T&>(p));
    return out;
  }
  static inline const InvokerId id =
      register_invoker(type_name<SubclassInvoker>(), &SubclassInvoker::run);
};

/// Registers subclass T (MPX_REGISTER_PROCESS); returns true. `invoker` is read at start():
/// the invoker's own registration may run later during static initialisation.
bool register_process_class(std::type_index type, const InvokerId* invoker,
                            std::vector<char> (*save)(const Process&)) noexcept;

template <class T>
bool register_process_class_of() noexcept {
  static_assert(std::is_base_of_v<Process, T>,
                "MPX_REGISTER_PROCESS needs a class derived from mpx::Process");
  static_assert(std::is_default_constructible_v<T> && std::is_move_constructible_v<T>,
                "a Process subclass is rebuilt on its slot by default-constructing it (then "
                "loading its serialize() members): give it a default constructor");
  return register_process_class(typeid(T), &SubclassInvoker<T>::id, &SubclassInvoker<T>::save);
}

}  // namespace detail

/// A process: a target that runs in another OS process (a process slot, see above).
/// Create and control Process objects on the main process (rank 0) only; a Process is
/// movable, not copyable. Destroying a running Process does not stop it (as in Python): it
/// is still joined (or, as a daemon, terminated) when the main process ends.
class Process {
 public:
  /// A process without target: run() does nothing unless a subclass overrides it (local).
  Process();
  /// Same with a name and daemon flag (local).
  explicit Process(ProcessOptions options);

  /// Process(target=f, args=(args...)): `target` is a free function registered with
  /// MPX_REGISTER, a captureless lambda or an empty/serializable function object; the
  /// arguments are copied now and sent to the slot at start() (local).
  template <class F, class... Args>
  // clang-format off
    requires(!std::is_same_v<std::remove_cvref_t<F>, ProcessOptions> &&
             !std::is_base_of_v<Process, std::remove_cvref_t<F>>)
  explicit Process(F&& target, Args&&... args)
  // clang-format on
      : Process(ProcessOptions{}, std::forward<F>(target), std::forward<Args>(args)...) {}

  /// Process(name=..., daemon=..., target=f, args=(...)) (local).
  template <class F, class... Args>
  Process(ProcessOptions options, F&& target, Args&&... args);

  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  /// Never throws, never stops the process (see the class comment).
  virtual ~Process();

  /// What the process does: calls the target. Override it in a subclass (register the
  /// subclass with MPX_REGISTER_PROCESS). Runs on the slot; calling it directly runs it here.
  virtual void run();

  /// Starts the process on a free slot, waiting for one if all are busy (remote). Throws
  /// UsageError when called twice or on a rank other than the main process.
  void start();
  /// Same, but throws TimeoutError if no slot frees up within `timeout` (remote).
  template <class Rep, class Period>
  void start(std::chrono::duration<Rep, Period> timeout);

  /// Waits until the process has finished; returns true (remote). Throws UsageError if the
  /// process was never started.
  bool join();
  /// Waits at most `timeout`; returns false if the process is still running (Python's
  /// join(timeout) followed by is_alive()) (remote).
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout);

  /// True from start() until the target has finished (local).
  [[nodiscard]] bool is_alive() const;
  /// Asks the process to stop: its target is unwound at its next mpx wait or sleep and its
  /// exitcode becomes -15. Does not wait (use join). No effect on a finished process (local).
  void terminate();
  /// Same as terminate() with exitcode -9 (Python's SIGKILL). mpx cannot kill a rank
  /// without ending the MPI job, so kill is as polite as terminate (local).
  void kill();

  /// None while not started or running; then 0 (the target returned), 1 (it threw; the
  /// error is printed on the slot's stderr, as Python prints the traceback), -15 or -9
  /// (terminated or killed) (local).
  [[nodiscard]] std::optional<int> exitcode() const;
  /// OS process id of the slot running the target (None before start) (local).
  [[nodiscard]] std::optional<pid_t> pid() const;
  /// World rank of the slot running the target (None before start; 0 in thread mode) (local).
  [[nodiscard]] std::optional<int> rank() const;
  /// The name: as given, else "Process-N" / "<Subclass>-N" with N counting the processes
  /// created by this process from 1, as Python (local).
  [[nodiscard]] const std::string& name() const;
  /// Renames the process (Python's p.name = ...) (local).
  void set_name(std::string name);
  /// The daemon flag (local).
  [[nodiscard]] bool daemon() const;
  /// Sets the daemon flag (Python's p.daemon = True); only before start() (local).
  void set_daemon(bool daemon);

  /// Python's repr: "<Process(Process-1, initial)>", "started", "started daemon",
  /// "stopped", "stopped[SIGTERM]", "stopped[1]" (local).
  [[nodiscard]] std::string repr() const;

 private:
  friend class detail::ProcessRuntime;
  friend void detail::adopt_identity(Process& p, detail::Reader& args);
  void start_until(detail::Clock::time_point deadline, std::string_view operation);
  bool join_until(detail::Clock::time_point deadline);
  [[nodiscard]] detail::ProcessTarget make_target() const;
  void send_signal(int signal);

  std::shared_ptr<detail::ProcessControl> control_;
  detail::ProcessTarget target_;  // empty invoker: no target
  bool has_target_ = false;
};

/// Prints repr() (local).
std::ostream& operator<<(std::ostream& out, const Process& p);

/// The process slots of a job, and the SPMD entry point of Process (see the file comment).
/// Movable RAII handle; converts to true on the main process.
class ProcessSlots {
 public:
  /// Collective over `comm` (every rank calls it, after creating the objects its targets
  /// use). Checks that every rank runs the identical binary. On rank 0 returns the live
  /// main-process handle; on every other rank runs targets until rank 0's handle ends, then
  /// returns an empty handle. Only one may be alive at a time.
  [[nodiscard]] static ProcessSlots serve(const Communicator& comm = Communicator::world());

  ProcessSlots() = default;
  ProcessSlots(ProcessSlots&& other) noexcept;
  ProcessSlots& operator=(ProcessSlots&& other) noexcept;
  ProcessSlots(const ProcessSlots&) = delete;
  ProcessSlots& operator=(const ProcessSlots&) = delete;
  /// Main process: terminates daemon children, joins every other child, then releases the
  /// slots (which return from serve()). Never throws.
  ~ProcessSlots();

  /// True on the main process (local).
  [[nodiscard]] bool is_main() const noexcept { return runtime_ != nullptr; }
  explicit operator bool() const noexcept { return is_main(); }
  /// Number of slots: ranks that run targets (0 when targets run as threads) (local).
  [[nodiscard]] int slots() const noexcept;

 private:
  explicit ProcessSlots(std::unique_ptr<detail::ProcessRuntime> runtime) noexcept;
  void release() noexcept;
  std::unique_ptr<detail::ProcessRuntime> runtime_;
};

/// What the calling process knows about itself (Python's multiprocessing.current_process()).
struct CurrentProcess {
  std::string name;     ///< "MainProcess" on rank 0, the Process's name inside a target
  pid_t pid = 0;        ///< this OS process
  bool daemon = false;  ///< the running Process's daemon flag
  int rank = 0;         ///< world rank
  /// pid of the main process when inside a target (Python's parent_process().pid); the OS
  /// parent (the launcher) otherwise.
  pid_t parent_pid = 0;
};

/// The calling process (local): inside a target, its Process's name; on the main process
/// "MainProcess"; on an idle slot "Slot-R".
CurrentProcess current_process();

/// The children of the main process that are still running (Python's active_children())
/// (local; empty on other ranks).
std::vector<Process*> active_children();

/// Python's time.sleep() for targets: sleeps `duration`, but a terminate() or kill() of the
/// running target ends it at once (by unwinding the target). Outside a target, a plain sleep
/// that costs no CPU (local).
template <class Rep, class Period>
void sleep_for(std::chrono::duration<Rep, Period> duration);

/// Unwinds the calling target if it was terminated or killed; does nothing otherwise. Call
/// it in long computations that make no mpx call, so terminate() can stop them (local).
void interruption_point();

// ---- implementation ----------------------------------------------------------------------------

namespace detail {
/// Sleeps until `deadline` in mpx's wait loop, so a terminate() of the target ends it.
void sleep_until(Clock::time_point deadline);
}  // namespace detail

template <class F, class... Args>
Process::Process(ProcessOptions options, F&& target, Args&&... args) : Process(std::move(options)) {
  using Fn = std::conditional_t<std::is_function_v<std::remove_reference_t<F>>,
                                std::add_pointer_t<std::remove_reference_t<F>>, std::decay_t<F>>;
  static_assert(!std::is_same_v<Fn, std::nullptr_t>, "mpx::Process: the target must not be null");
  detail::check_shippable<Fn>();
  static_assert((!std::is_pointer_v<detail::process_arg_t<Args>> && ...),
                "mpx::Process cannot send a pointer argument: an address means nothing in the "
                "target's process. Pass the value (or a std::vector / std::string of the data).");
  static_assert(std::is_invocable_v<Fn&, detail::process_arg_t<Args>&...>,
                "mpx::Process: the target cannot be called with these arguments (after they are "
                "copied; string literals become std::string)");
  using Invoker = detail::ProcessInvoker<Fn, detail::process_arg_t<Args>...>;
  target_.invoker = Invoker::id;
  target_.state = detail::callable_state<Fn>(Fn(target), "Process");
  detail::put(target_.args,
              std::tuple<detail::process_arg_t<Args>...>(std::forward<Args>(args)...));
  has_target_ = true;
}

template <class Rep, class Period>
void Process::start(std::chrono::duration<Rep, Period> timeout) {
  start_until(detail::deadline_after(timeout, name(), "start"), "start");
}

template <class Rep, class Period>
bool Process::join(std::chrono::duration<Rep, Period> timeout) {
  return join_until(detail::deadline_after(timeout, name(), "join"));
}

template <class Rep, class Period>
void sleep_for(std::chrono::duration<Rep, Period> duration) {
  detail::sleep_until(detail::deadline_after(duration, "mpx", "sleep_for"));
}

}  // namespace mpx

/// Makes the Process subclass `Type` startable: write it once at namespace scope after the
/// class (`MPX_REGISTER_PROCESS(MyProcess);`). The slot rebuilds a `Type` (default
/// constructor, then its serialize() members if it has them) and calls run().
#define MPX_REGISTER_PROCESS(Type)                             \
  [[maybe_unused]] static inline const bool MPX_DETAIL_CONCAT( \
      mpx_registered_process_, __COUNTER__) = ::mpx::detail::register_process_class_of<Type>()
