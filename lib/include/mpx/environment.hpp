// mpx/environment.hpp: starting and stopping MPI, and what a rank knows about itself.
//
//   int main(int argc, char** argv) {
//     mpx::Environment env(argc, argv);            // MPI_Init_thread(MPI_THREAD_MULTIPLE)
//     auto& me = mpx::this_process();
//     mpx::print_ordered("hello from rank " + std::to_string(me.rank()));
//   }                                              // MPI_Finalize, only if env initialised it
//
// A program built with mpx runs alone (a world of one rank) or under `mpiexec -n N`.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

namespace mpx {

class Communicator;

/// RAII owner of the MPI library. Construct exactly one, first thing in main(); it
/// finalises MPI in its destructor, and only if it was the one that initialised it.
/// Every other mpx call needs a live Environment and says so clearly if there is none.
class Environment {
 public:
  /// Initialises MPI requesting MPI_THREAD_MULTIPLE (local; collective over the job as
  /// MPI_Init is). If MPI is already initialised, adopts it and will not finalise it.
  Environment();
  /// Same, passing the command line on to MPI_Init_thread.
  Environment(int& argc, char**& argv);
  /// Stops the progress thread, then finalises MPI if this object initialised it.
  ~Environment();

  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

  /// The thread level MPI granted (MPI_THREAD_SINGLE .. MPI_THREAD_MULTIPLE).
  [[nodiscard]] int thread_level() const noexcept { return thread_level_; }
  /// True when MPI granted MPI_THREAD_MULTIPLE (needed by objects that host state).
  [[nodiscard]] bool threads_supported() const noexcept;
  /// True while an mpx::Environment is alive.
  [[nodiscard]] static bool active() noexcept;
  /// "Open MPI v4.1.4, ..." as MPI_Get_library_version reports it.
  [[nodiscard]] static std::string library_version();

 private:
  void init(int* argc, char*** argv);
  bool owns_mpi_ = false;
  int thread_level_ = 0;
};

/// What this rank knows about itself: Python's multiprocessing.current_process().
class ThisProcess {
 public:
  /// Rank in the world communicator (local).
  [[nodiscard]] int rank() const;
  /// Number of ranks in the world communicator (local).
  [[nodiscard]] int size() const;
  /// The process name: "rank-R" unless set_name() changed it (local).
  [[nodiscard]] const std::string& name() const;
  /// Renames this process, as Python's `current_process().name = ...` (local).
  void set_name(std::string name);
  /// Operating-system process id (local).
  [[nodiscard]] pid_t pid() const;
  /// Parent's process id: for a rank started by mpiexec, the launcher daemon (local).
  [[nodiscard]] pid_t ppid() const;
  /// Host name this rank runs on (local).
  [[nodiscard]] const std::string& host() const;
};

/// The calling rank's process information (local). Needs a live Environment.
ThisProcess& this_process();

/// Number of logical CPUs on this machine, as Python's os.cpu_count() (local; works
/// without an Environment).
int cpu_count() noexcept;

/// Prints `text` (plus a newline unless it ends in one) on rank 0 of `comm` only, flushing
/// stdout (local: other ranks return at once).
void print0(std::string_view text);
/// Same, on rank 0 of `comm`.
void print0(const Communicator& comm, std::string_view text);

/// Prints every rank's `text` on rank 0 in rank order, each followed by a newline unless it
/// ends in one (collective over the world). Output from separate ranks otherwise
/// interleaves in whatever order mpiexec forwards it.
void print_ordered(std::string_view text);
/// Same over `comm` (collective over comm).
void print_ordered(const Communicator& comm, std::string_view text);

}  // namespace mpx
