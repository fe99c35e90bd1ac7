// mpx/detail/fault.hpp: a failing rank ends the job at once, with a message that names it.
//
// Open MPI already ends the whole job when a rank dies (signal, MPI_Abort, exit without
// MPI_Finalize) and names the rank. Two failures it cannot see are handled here:
//  * An uncaught exception: mpx::Environment installs a std::terminate handler that prints
//    "mpx: rank R (host H): uncaught exception <type>: <what>; ending the job" and calls
//    MPI_Abort, so the job ends with that line instead of a bare SIGABRT.
//  * A rank that returns from main while others still wait for it: its MPI_Finalize would
//    wait for the others and the others for it, silently, for ever. Each mpx::Environment
//    that ends sends a departure notice to every other rank; a rank that has waited in an
//    mpx call for a while checks those notices and, when the rank (or a member of the
//    collective) it waits for has left, prints "mpx: rank R: <object>.<op> waits for rank P,
//    which has already left (returned from main / ended its mpx::Environment); ending the job"
//    and calls MPI_Abort.
#pragma once

#include <mpi.h>

#include <string>

#include "mpx/detail/wait.hpp"

namespace mpx::detail {

/// Installs the terminate handler (Environment start; local). Keeps the previous handler and
/// restores it in restore_terminate_handler().
void install_terminate_handler() noexcept;
/// Puts back the handler that was there before install_terminate_handler() (local).
void restore_terminate_handler() noexcept;

/// Duplicates the world communicator for departure notices (collective over the world, at
/// Environment start).
void open_departure_channel();
/// Tells every other rank that this rank is ending, then waits (sleeping, without the hang
/// doctor) until every other rank has said the same, so that MPI_Finalize starts only when
/// all ranks are there (collective in effect; at the start of the Environment's destructor).
void announce_departure() noexcept;
/// Called by the hang doctor on slow polls of a wait: aborts the job with a message when the
/// rank that `site` waits for, every member of its collective, or every other rank of the
/// world has left more than a second ago. Never throws; cheap when nobody has left.
void check_departed_peers(const WaitSite& site) noexcept;

/// World rank of rank `peer` of `comm` (its remote group for an inter-communicator), or -1.
int world_rank_of(MPI_Comm comm, int peer) noexcept;
/// This rank's host name, for reports ("?" before MPI is initialised).
const std::string& host_name_for_reports() noexcept;

}  // namespace mpx::detail
