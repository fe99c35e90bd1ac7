#include "mpx/environment.hpp"

#include <mpi.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <vector>
#include <optional>
#include <string>

#include "mpx/communicator.hpp"
#include "mpx/detail/check.hpp"
#include "mpx/detail/fault.hpp"
#include "mpx/detail/progress.hpp"
#include "mpx/detail/retire.hpp"
#include "mpx/detail/shared_segment.hpp"
#include "mpx/future.hpp"

namespace mpx {

namespace {

struct State {
  int rank = -1;
  int size = 0;
  std::string name;
  std::string host;
  std::optional<Communicator> world;
  bool fingerprints = false;
};

std::atomic<bool> g_active{false};
std::mutex g_retired_mutex;
std::vector<MPI_Win> g_retired_windows;  // freed when the Environment ends

void free_retired_windows() {
  std::lock_guard lock(g_retired_mutex);
  // MPI_Win_free is collective: free in creation order, which every rank shares.
  for (MPI_Win& w : g_retired_windows) MPI_Win_free(&w);
  g_retired_windows.clear();
}
std::atomic<int> g_rank{-1};
State& state() {
  static State s;
  return s;
}

[[noreturn]] void no_environment(std::string_view object, std::string_view operation) {
  detail::fail(object, operation,
               "no mpx::Environment is alive; create one at the top of main(): "
               "`mpx::Environment env(argc, argv);`");
}

}  // namespace

namespace detail {
int world_rank_or_minus_one() noexcept { return g_rank.load(std::memory_order_relaxed); }
bool fingerprints_enabled() noexcept { return state().fingerprints; }

void register_window(MPI_Win win) {
  std::lock_guard lock(g_retired_mutex);
  g_retired_windows.push_back(win);
}
}  // namespace detail

Environment::Environment() { init(nullptr, nullptr); }
Environment::Environment(int& argc, char**& argv) { init(&argc, &argv); }

void Environment::init(int* argc, char*** argv) {
  if (g_active.load())
    detail::fail("Environment", "create",
                 "an mpx::Environment is already alive; create exactly one, in main()");
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) {
    MPI_Query_thread(&thread_level_);
  } else {
    MPX_CHECK_MPI(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &thread_level_), "Environment",
                  "init");
    owns_mpi_ = true;
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  detail::install_terminate_handler();  // an uncaught exception names its rank and ends the job
  detail::open_departure_channel();     // a rank that leaves early does not hang the others
  detail::open_retirement_channel();    // destroyed objects' communicators are freed
  detail::open_shared_arena();          // small shared state of objects on this node
  auto& s = state();
  MPI_Comm_rank(MPI_COMM_WORLD, &s.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &s.size);
  g_rank = s.rank;
  s.name = "rank-" + std::to_string(s.rank);
  char host[MPI_MAX_PROCESSOR_NAME] = {};
  int length = 0;
  MPI_Get_processor_name(host, &length);
  s.host.assign(host, static_cast<std::size_t>(length));
  void* value = nullptr;
  int flag = 0;
  MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &value, &flag);
  const int tag_ub = flag ? *static_cast<int*>(value) : 32767;
  s.fingerprints = tag_ub >= (1 << (detail::user_tag_bits + detail::fingerprint_bits)) - 1;
  s.world.emplace(Communicator::view(MPI_COMM_WORLD, "world"));
  g_active = true;
}

Environment::~Environment() {
  if (owns_mpi_) detail::announce_departure();
  detail::close_retirement_channel();  // every rank is done: free what still waits for peers
  detail::ProgressEngine::instance().stop();
  detail::sweep_orphans();
  state().world.reset();
  g_active = false;
  detail::close_shared_arena();
  free_retired_windows();
  if (owns_mpi_) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
  g_rank = -1;
  detail::restore_terminate_handler();
}

bool Environment::threads_supported() const noexcept { return thread_level_ >= MPI_THREAD_MULTIPLE; }
bool Environment::active() noexcept { return g_active.load(); }

std::string Environment::library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int length = 0;
  MPI_Get_library_version(text, &length);
  std::string v(text, static_cast<std::size_t>(length));
  while (!v.empty() && (v.back() == '\n' || v.back() == '\0')) v.pop_back();
  return v;
}

const Communicator& Communicator::world() {
  if (!g_active.load()) no_environment("Communicator", "world");
  return *state().world;
}

int ThisProcess::rank() const {
  if (!g_active.load()) no_environment("this_process()", "rank");
  return state().rank;
}
int ThisProcess::size() const {
  if (!g_active.load()) no_environment("this_process()", "size");
  return state().size;
}
const std::string& ThisProcess::name() const {
  if (!g_active.load()) no_environment("this_process()", "name");
  return state().name;
}
void ThisProcess::set_name(std::string name) { state().name = std::move(name); }
pid_t ThisProcess::pid() const { return ::getpid(); }
pid_t ThisProcess::ppid() const { return ::getppid(); }
const std::string& ThisProcess::host() const {
  if (!g_active.load()) no_environment("this_process()", "host");
  return state().host;
}

ThisProcess& this_process() {
  static ThisProcess me;
  if (!g_active.load()) no_environment("mpx", "this_process");
  return me;
}

int cpu_count() noexcept {
  const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

namespace {
void print_line(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  if (text.empty() || text.back() != '\n') std::fputc('\n', stdout);
}
}  // namespace

void print0(std::string_view text) { print0(Communicator::world(), text); }

void print0(const Communicator& comm, std::string_view text) {
  if (comm.is_null())
    detail::fail(comm.name(), "print0",
                 "this rank is not a member of " + comm.name() +
                     " (split() gave it a null communicator); print on a communicator it is in");
  if (comm.rank() != 0) return;
  print_line(text);
  std::fflush(stdout);
}

void print_ordered(std::string_view text) { print_ordered(Communicator::world(), text); }

void print_ordered(const Communicator& comm, std::string_view text) {
  if (comm.is_null())
    detail::fail(comm.name(), "print_ordered",
                 "this rank is not a member of " + comm.name() +
                     " (split() gave it a null communicator); call print_ordered only on the "
                     "ranks of the group");
  const auto lines = comm.gather(std::string(text), 0);
  if (comm.rank() != 0) return;
  for (const auto& line : lines) print_line(line);
  std::fflush(stdout);
}

}  // namespace mpx
