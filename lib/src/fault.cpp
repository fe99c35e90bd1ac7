#include "mpx/detail/fault.hpp"

#include <cxxabi.h>
#include <mpi.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "mpx/detail/check.hpp"
#include "mpx/detail/demangle.hpp"

namespace mpx::detail {

namespace {

// ------------------------------------------------------------------------------------------
// Reports

bool mpi_usable() noexcept {
  int initialized = 0;
  int finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

std::string rank_text() {
  const int rank = world_rank_or_minus_one();
  return rank >= 0 ? std::to_string(rank) : std::string("?");
}

[[noreturn]] void end_job(const std::string& report, int code) noexcept {
  std::fputs(report.c_str(), stderr);
  std::fflush(stderr);
  std::fflush(stdout);
  if (mpi_usable()) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

// ------------------------------------------------------------------------------------------
// Uncaught exceptions

std::terminate_handler g_previous_handler = nullptr;
std::atomic<bool> g_terminating{false};

[[noreturn]] void on_terminate() noexcept {
  if (g_terminating.exchange(true)) std::abort();  // terminate while reporting: give up
  std::string what = "std::terminate was called without an active exception";
  try {
    if (const auto error = std::current_exception()) {
      const std::type_info* type = abi::__cxa_current_exception_type();
      what = "uncaught exception " + (type ? demangle(type->name()) : std::string("?"));
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        what += std::string(": ") + e.what();
      } catch (...) {
        what += " (not derived from std::exception)";
      }
    }
  } catch (...) {
  }
  end_job("mpx: rank " + rank_text() + " (host " + host_name_for_reports() + "): " + what +
              "; ending the job\n",
          1);
}

// ------------------------------------------------------------------------------------------
// Departures: a rank whose Environment ends tells every other rank, with its host name.

constexpr int departure_tag = 7;
constexpr auto departure_grace = std::chrono::seconds(1);

std::atomic<MPI_Comm> g_lifeline{MPI_COMM_NULL};
int g_world_size = 0;
std::mutex g_departed_mutex;
struct Departure {
  Clock::time_point seen{};  ///< when this rank saw the notice (epoch: not departed)
  std::string host;
};
std::vector<Departure> g_departed;
std::atomic<int> g_departed_count{0};
std::atomic<bool> g_reporting{false};

void receive_departure_notices(MPI_Comm lifeline) {
  for (;;) {
    int found = 0;
    MPI_Message message = MPI_MESSAGE_NULL;
    MPI_Status status{};
    if (MPI_Improbe(MPI_ANY_SOURCE, departure_tag, lifeline, &found, &message, &status) !=
            MPI_SUCCESS ||
        !found)
      return;
    int count = 0;
    MPI_Get_count(&status, MPI_CHAR, &count);
    std::string host(static_cast<std::size_t>(count > 0 ? count : 0), '\0');
    char dummy = 0;
    MPI_Mrecv(count > 0 ? host.data() : &dummy, count, MPI_CHAR, &message, MPI_STATUS_IGNORE);
    std::lock_guard lock(g_departed_mutex);
    const int source = status.MPI_SOURCE;
    if (source < 0 || source >= static_cast<int>(g_departed.size())) continue;
    if (g_departed[static_cast<std::size_t>(source)].seen == Clock::time_point{}) {
      g_departed[static_cast<std::size_t>(source)] = {Clock::now(), std::move(host)};
      g_departed_count.fetch_add(1);
    }
  }
}

}  // namespace

const std::string& host_name_for_reports() noexcept {
  static const std::string name = [] {
    char text[256] = {};
    if (::gethostname(text, sizeof text - 1) != 0) return std::string("?");
    return std::string(text);
  }();
  return name;
}

void install_terminate_handler() noexcept { g_previous_handler = std::set_terminate(on_terminate); }

void restore_terminate_handler() noexcept {
  if (std::get_terminate() == on_terminate) std::set_terminate(g_previous_handler);
}

void open_departure_channel() {
  MPI_Comm lifeline = MPI_COMM_NULL;
  MPX_CHECK_MPI(MPI_Comm_dup(MPI_COMM_WORLD, &lifeline), "Environment", "init");
  MPI_Comm_set_errhandler(lifeline, MPI_ERRORS_RETURN);
  MPI_Comm_size(MPI_COMM_WORLD, &g_world_size);
  std::lock_guard lock(g_departed_mutex);
  g_departed.assign(static_cast<std::size_t>(g_world_size), Departure{});
  g_departed_count = 0;
  g_lifeline = lifeline;
}

void announce_departure() noexcept {
  const MPI_Comm lifeline = g_lifeline.exchange(MPI_COMM_NULL);
  if (lifeline == MPI_COMM_NULL || !mpi_usable() || g_world_size < 2) return;
  const int me = world_rank_or_minus_one();
  const std::string& host = host_name_for_reports();
  for (int r = 0; r < g_world_size; ++r) {
    if (r == me) continue;
    MPI_Request request = MPI_REQUEST_NULL;
    // The buffer is a function static that outlives the send; nobody waits for it.
    if (MPI_Isend(host.data(), static_cast<int>(host.size()), MPI_CHAR, r, departure_tag, lifeline,
                  &request) == MPI_SUCCESS)
      MPI_Request_free(&request);
  }
  // Then wait, sleeping, until every other rank has said the same. MPI_Finalize waits for
  // all ranks anyway, but a rank inside it when the job is aborted (because another rank
  // found it had left, say) can leave mpiexec hung in PMIx_server_finalize (Open MPI 4.1 with
  // PMIx 4): so ranks enter MPI_Finalize only once all are there. This wait does not use
  // wait_until: ranks that finish early must not trip the hang doctor.
  Backoff backoff;
  while (g_departed_count.load() < g_world_size - 1) {
    receive_departure_notices(lifeline);
    backoff.pause();
  }
  // The communicator is left to MPI_Finalize: the sends may still be in flight.
}

int world_rank_of(MPI_Comm comm, int peer) noexcept {
  if (comm == MPI_COMM_NULL || peer < 0 || !mpi_usable()) return -1;
  if (comm == MPI_COMM_WORLD) return peer;
  int inter = 0;
  MPI_Comm_test_inter(comm, &inter);
  MPI_Group group = MPI_GROUP_NULL;
  MPI_Group world = MPI_GROUP_NULL;
  if ((inter ? MPI_Comm_remote_group(comm, &group) : MPI_Comm_group(comm, &group)) != MPI_SUCCESS)
    return -1;
  int size = 0;
  MPI_Group_size(group, &size);
  int out = MPI_UNDEFINED;
  if (peer < size && MPI_Comm_group(MPI_COMM_WORLD, &world) == MPI_SUCCESS) {
    MPI_Group_translate_ranks(group, 1, &peer, world, &out);
    MPI_Group_free(&world);
  }
  MPI_Group_free(&group);
  return out == MPI_UNDEFINED ? -1 : out;
}

void check_departed_peers(const WaitSite& site) noexcept {
  const MPI_Comm lifeline = g_lifeline.load();
  if (lifeline == MPI_COMM_NULL) return;
  try {
    receive_departure_notices(lifeline);
    if (g_departed_count.load() == 0) return;
    const auto now = Clock::now();
    const int me = world_rank_or_minus_one();
    std::vector<int> peers;  // world ranks this wait needs
    if (site.peer >= 0) {
      const int w = world_rank_of(site.comm, site.peer);
      if (w >= 0) peers.push_back(w);
    } else if (site.collective && site.comm != MPI_COMM_NULL) {
      int size = 0;
      MPI_Comm_size(site.comm, &size);
      for (int r = 0; r < size; ++r) {
        const int w = world_rank_of(site.comm, r);
        if (w >= 0 && w != me) peers.push_back(w);
      }
    }
    std::lock_guard lock(g_departed_mutex);
    auto gone = [&](int w) {
      const auto& d = g_departed[static_cast<std::size_t>(w)];
      return d.seen != Clock::time_point{} && now - d.seen >= departure_grace;
    };
    int culprit = -1;
    std::string how;
    for (int w : peers) {
      if (w < g_world_size && gone(w)) {
        culprit = w;
        how = site.peer >= 0 ? " waits for rank " + std::to_string(site.peer) +
                                   (w != site.peer ? " (world rank " + std::to_string(w) + ")" : "")
                             : " is a collective that needs world rank " + std::to_string(w);
        break;
      }
    }
    if (culprit < 0 && g_world_size > 1) {  // nobody is left who could answer
      bool all = true;
      for (int w = 0; w < g_world_size && all; ++w)
        if (w != me && !gone(w)) all = false;
      if (all) {
        culprit = me == 0 ? 1 : 0;
        how = " waits, but every other rank has left, for example rank " + std::to_string(culprit);
      }
    }
    if (culprit < 0) return;
    if (g_reporting.exchange(true)) return;
    const auto& host = g_departed[static_cast<std::size_t>(culprit)].host;
    end_job("mpx: rank " + rank_text() + " (host " + host_name_for_reports() +
                "): " + std::string(site.object) + "." + std::string(site.operation) + how +
                " (host " + (host.empty() ? std::string("?") : host) +
                "), which has already left: it returned from main (ended its mpx::Environment) "
                "while this rank still needs it; ending the job\n",
            4);
  } catch (...) {
  }
}

}  // namespace mpx::detail
