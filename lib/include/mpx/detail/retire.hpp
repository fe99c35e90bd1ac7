// mpx/detail/retire.hpp: freeing the communicators of destroyed objects, safely and in the
// background.
//
// Every mpx object owns a duplicated communicator. Freeing it the moment one rank destroys
// its handle is unsafe: Open MPI reuses the context id of a freed communicator for the next
// one created, so a message still in flight to the old one (a close marker nobody received,
// a reply to a rank that went away) would surface in the new object. Never freeing them is
// no better: Open MPI has room for about 65,000 communicators, so a program that creates a
// Lock in a loop would die after some 30,000 iterations.
//
// So a communicator is freed once it is provably quiet, without making destructors
// collective or blocking:
//   1. A rank that destroys its handle sends a retirement notice, naming the communicator by
//      an id all its ranks agreed on at creation, to every other member (on a channel of
//      its own, a duplicate of MPI_COMM_WORLD), and remembers the communicator.
//   2. When a rank holds notices from every other member (so no rank uses the communicator
//      any more: nobody sends on it, nobody has a receive posted on it), it sends a flush
//      message to every member on the communicator itself and receives theirs. Messages
//      between two ranks on one communicator are matched in the order they were sent, so
//      once a peer's flush has arrived, everything that peer ever sent here has arrived too.
//   3. It discards whatever is left unreceived (MPI_Improbe/MPI_Mrecv), waits for its own
//      sends, and frees the communicator (MPI_Comm_free is local in Open MPI).
// The progress engine does steps 2 and 3 while the program goes on. What is still pending
// when the Environment ends is freed then. Communicators without an id (created before the
// Environment, or when MPI's tag space is too small for the flush tag) are freed then too.
#pragma once

#include <mpi.h>

#include <cstddef>
#include <cstdint>

namespace mpx::detail {

/// Opens the retirement channel (collective over MPI_COMM_WORLD; Environment's constructor).
void open_retirement_channel();

/// Collective over `comm`, right after it was created: agrees on its retirement id and
/// records it on the communicator. Without an open channel it does nothing (the
/// communicator is then freed when the Environment ends).
void register_for_retirement(MPI_Comm comm);

/// Local: this rank no longer uses `comm` (its owning Communicator was destroyed). Frees
/// it in the background once every member has retired it too (see above). Never throws.
void retire_communicator(MPI_Comm comm) noexcept;

/// Environment's destructor, after the progress engine stopped: frees every communicator
/// still waiting for its peers, and the channel.
void close_retirement_channel() noexcept;

/// How many communicators this rank retired and has not freed yet, kept ones included
/// (local; for tests).
std::size_t communicators_awaiting_release() noexcept;

}  // namespace mpx::detail
