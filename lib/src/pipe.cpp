#include "mpx/pipe.hpp"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

#include "mpx/detail/creation.hpp"

namespace mpx {

namespace detail {

/// The communicators of one pipe: one per direction, so that two ends on the same rank
/// never see each other's outgoing messages.
struct PipeShared {
  std::string name;
  int rank1 = -1;
  int rank2 = -1;
  std::optional<Communicator> to_end2;  // end 1 sends, end 2 receives
  std::optional<Communicator> to_end1;  // end 2 sends, end 1 receives (duplex only)
  std::optional<Communicator> bulk_to_end2;  // the bytes of large values, same directions
  std::optional<Communicator> bulk_to_end1;
};

namespace {
std::atomic<int> g_pipe_count{0};

}  // namespace

}  // namespace detail

std::pair<Connection, Connection> Pipe(int rank1, int rank2, bool duplex, const Communicator& comm) {
  const std::string name = "Pipe#" + std::to_string(++detail::g_pipe_count);
  // Every rank must describe the same pipe, or messages would go to ranks that never look.
  // All ranks compare (before any rank checks its own arguments), so all of them fail
  // together instead of some waiting for ever.
  const std::array<int, 3> mine{rank1, rank2, duplex ? 1 : 0};
  const auto all = detail::gather_parameters(comm, mine, name);
  for (std::size_t r = 0; r < all.size(); ++r) {
    if (all[r] == all[0]) continue;
    auto describe = [](const std::array<int, 3>& p) {
      return "Pipe(" + std::to_string(p[0]) + ", " + std::to_string(p[1]) +
             (p[2] ? ", duplex)" : ", one-way)");
    };
    detail::fail(name, "create",
                 "ranks disagree on the pipe: rank 0 asked for " + describe(all[0]) + " but rank " +
                     std::to_string(r) + " asked for " + describe(all[r]) +
                     "; every rank must create the same pipes in the same order");
  }
  for (const auto& [rank, which] : {std::pair{rank1, "rank1"}, std::pair{rank2, "rank2"}}) {
    if (rank >= 0 && rank < comm.size()) continue;
    detail::fail(name, "create",
                 std::string(which) + " = " + std::to_string(rank) +
                     " is out of range: " + comm.name() + " has " + std::to_string(comm.size()) +
                     " rank(s), numbered 0.." + std::to_string(comm.size() - 1) +
                     "; check the ranks you pass, and the -n of mpiexec");
  }
  auto shared = std::make_shared<detail::PipeShared>();
  shared->name = name;
  shared->rank1 = rank1;
  shared->rank2 = rank2;
  // Python: Pipe(duplex=False) returns (reader, writer). Data flows end 2 -> end 1.
  shared->to_end1.emplace(comm.duplicate(name));
  shared->bulk_to_end1.emplace(comm.duplicate(name + " bulk"));
  if (duplex) {
    shared->to_end2.emplace(comm.duplicate(name));
    shared->bulk_to_end2.emplace(comm.duplicate(name + " bulk"));
  }
  Connection first(shared, 1, rank1, rank2, true, duplex);
  Connection second(shared, 2, rank2, rank1, duplex, true);
  return {std::move(first), std::move(second)};
}

Connection::Connection(std::shared_ptr<detail::PipeShared> shared, int end, int owner, int peer,
                       bool readable, bool writable)
    : shared_(std::move(shared)),
      end_(end),
      owner_(owner),
      peer_(peer),
      readable_(readable),
      writable_(writable),
      name_(shared_->name + " end " + std::to_string(end)) {}

Connection::Connection(Connection&& o) noexcept
    : shared_(std::move(o.shared_)),
      end_(o.end_),
      owner_(o.owner_),
      peer_(o.peer_),
      readable_(o.readable_),
      writable_(o.writable_),
      closed_(o.closed_),
      peer_closed_(o.peer_closed_),
      stash_(std::move(o.stash_)),
      inbox_(std::move(o.inbox_)),
      name_(std::move(o.name_)) {
  o.closed_ = true;
}

Connection& Connection::operator=(Connection&& o) noexcept {
  if (this != &o) {
    close_noexcept();
    shared_ = std::move(o.shared_);
    end_ = o.end_;
    owner_ = o.owner_;
    peer_ = o.peer_;
    readable_ = o.readable_;
    writable_ = o.writable_;
    closed_ = o.closed_;
    peer_closed_ = o.peer_closed_;
    stash_ = std::move(o.stash_);
    inbox_ = std::move(o.inbox_);
    name_ = std::move(o.name_);
    o.closed_ = true;
  }
  return *this;
}

Connection::~Connection() { close_noexcept(); }

const Communicator& Connection::in() const {
  return end_ == 1 ? *shared_->to_end1 : *shared_->to_end2;
}
const Communicator& Connection::out() const {
  return end_ == 1 ? *shared_->to_end2 : *shared_->to_end1;
}
const Communicator& Connection::in_bulk() const {
  return end_ == 1 ? *shared_->bulk_to_end1 : *shared_->bulk_to_end2;
}
const Communicator& Connection::out_bulk() const {
  return end_ == 1 ? *shared_->bulk_to_end2 : *shared_->bulk_to_end1;
}

void Connection::require(bool want_read, bool want_write, std::string_view operation) const {
  if (!shared_)
    detail::fail(name_.empty() ? "Connection" : name_, operation,
                 "this connection refers to no pipe (default-constructed or moved from)");
  const int here = shared_->to_end1->rank();
  if (here != owner_)
    detail::fail(name_, operation,
                 "this end belongs to rank " + std::to_string(owner_) + ", not to rank " +
                     std::to_string(here) + "; use it only on its own rank (the other end is on rank " +
                     std::to_string(peer_) + ")");
  if (closed_)
    detail::fail<ClosedError>(name_, operation, "this end is closed; it cannot be used after close()");
  if (want_read && !readable_)
    detail::fail(name_, operation,
                 "this is the write-only end of a one-way pipe (Pipe(..., duplex=false)); "
                 "receive on the first end instead");
  if (want_write && !writable_)
    detail::fail(name_, operation,
                 "this is the read-only end of a one-way pipe (Pipe(..., duplex=false)); "
                 "send on the second end instead");
}

void Connection::throw_stashed_mismatch(std::string_view expected,
                                        std::string_view operation) const {
  detail::fail<TypeMismatch>(name_, operation,
                             "asked for a '" + std::string(expected) +
                                 "' but the next value from rank " + std::to_string(peer_) +
                                 " was sent as " + detail::lookup_type_name(stash_->fingerprint) +
                                 "; the value is kept: recv() it with the type it was sent as");
}

void Connection::throw_eof(std::string_view operation) const {
  detail::fail<EOFError>(name_, operation,
                         "the other end (rank " + std::to_string(peer_) +
                             ") closed the pipe and every value it sent has been received");
}

std::optional<Connection::Arrival> Connection::next_arrival(std::string_view operation) {
  if (inbox_.size() < detail::pipe_inline_bytes) inbox_.resize(detail::pipe_inline_bytes);
  // Posted before the value arrives, so that MPI delivers it straight into inbox_: a probe
  // would make every message an "unexpected" one (buffered by MPI, then copied out), which
  // costs small messages a third more than a plain MPI_Recv. MPI_ANY_TAG keeps the order of
  // values of every type and of the close marker; nothing larger than inbox_ travels here.
  MPI_Request request = MPI_REQUEST_NULL;
  MPX_CHECK_MPI(MPI_Irecv(inbox_.data(), static_cast<int>(inbox_.size()), MPI_BYTE, peer_, MPI_ANY_TAG,
                          in().native(), &request),
                name_, operation);
  MPI_Status status{};
  try {
    detail::wait_until(
        [&] {
          int done = 0;
          MPX_CHECK_MPI(MPI_Test(&request, &done, &status), name_, operation);
          return done != 0;
        },
        detail::no_deadline, {name_, operation, peer_, in().native()});
  } catch (...) {  // interrupted (a terminated Process): withdraw the receive
    if (request != MPI_REQUEST_NULL) {
      MPI_Cancel(&request);
      MPI_Wait(&request, MPI_STATUS_IGNORE);
    }
    throw;
  }
  if (status.MPI_TAG == detail::pipe_close_wire_tag()) {
    peer_closed_ = true;
    return std::nullopt;
  }
  Arrival arrival;
  arrival.fingerprint = detail::fingerprint_of_tag(status.MPI_TAG);
  if (detail::user_tag_of(status.MPI_TAG) == detail::pipe_announce_tag) {
    std::uint64_t bytes = 0;
    std::memcpy(&bytes, inbox_.data(), sizeof bytes);
    arrival.bytes = static_cast<std::size_t>(bytes);
    arrival.announced = true;
  } else {
    arrival.bytes = detail::message_bytes(status);
  }
  return arrival;
}

void Connection::take(const Arrival& arrival, void* dest, std::string_view operation) {
  if (!arrival.announced) {
    if (arrival.bytes) std::memcpy(dest, inbox_.data(), arrival.bytes);
    return;
  }
  const detail::ByteType type(arrival.bytes);
  MPI_Request request = MPI_REQUEST_NULL;
  MPX_CHECK_MPI(MPI_Irecv(dest, type.count(), type.type(), peer_, 0, in_bulk().native(), &request), name_,
                operation);
  in_bulk().wait_transfer(request, arrival.bytes, operation, peer_);
}

void Connection::keep(const Arrival& arrival, std::string_view operation) {
  Stash stash;
  stash.fingerprint = arrival.fingerprint;
  stash.bytes.resize(arrival.bytes);
  take(arrival, stash.bytes.data(), operation);
  stash_ = std::move(stash);
}

void Connection::send_bytes(const void* data, std::size_t bytes, int fingerprint) {
  if (bytes <= detail::pipe_inline_bytes) {
    MPX_CHECK_MPI(MPI_Send(data, static_cast<int>(bytes), MPI_BYTE, peer_,
                           detail::wire_tag(detail::pipe_data_tag, fingerprint), out().native()),
                  name_, "send");
    return;
  }
  // Announce on the ordered communicator, then move the bytes on the bulk one.
  const std::uint64_t size = bytes;
  MPX_CHECK_MPI(MPI_Send(&size, sizeof size, MPI_BYTE, peer_,
                         detail::wire_tag(detail::pipe_announce_tag, fingerprint), out().native()),
                name_, "send");
  MPI_Request request = out_bulk().isend_bytes(data, bytes, peer_, 0, "send");
  out_bulk().wait_transfer(request, bytes, "send", peer_);
}

void Connection::throw_bad_size(std::size_t bytes, std::size_t element, std::string_view type) const {
  detail::fail<TypeMismatch>(name_, "recv",
                             "the next value has " + std::to_string(bytes) + " bytes, which is not a " +
                                 std::string(type) + " (" + std::to_string(element) +
                                 " bytes per value or element); the value is kept: recv() it with "
                                 "the type it was sent as");
}

void Connection::throw_too_small(std::size_t need, std::size_t room) const {
  detail::fail(name_, "recv_into",
               "the next value has " + std::to_string(need) + " bytes but the buffer holds only " +
                   std::to_string(room) +
                   "; the value is kept: recv() it, or recv_into() a buffer large enough");
}

void Connection::close() {
  if (!shared_ || closed_) return;
  require(false, false, "close");
  if (writable_) {
    MPX_CHECK_MPI(MPI_Send(nullptr, 0, MPI_BYTE, peer_, detail::pipe_close_wire_tag(), out().native()),
                  name_, "close");
  }
  closed_ = true;
}

void Connection::close_noexcept() noexcept {
  if (!shared_ || closed_ || !Environment::active()) return;
  try {
    if (shared_->to_end1->rank() == owner_) close();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
  }
}

}  // namespace mpx
