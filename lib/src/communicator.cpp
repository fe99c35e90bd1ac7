#include "mpx/communicator.hpp"

#include <mpi.h>

#include <sched.h>

#include <chrono>
#include <climits>
#include <map>
#include <mutex>
#include <string>

#include "mpx/detail/check.hpp"
#include "mpx/detail/retire.hpp"
#include "mpx/detail/type_id.hpp"

namespace mpx {

// ---- type registry ------------------------------------------------------------------------

namespace detail {

namespace {
std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}
std::map<int, std::string>& registry() {
  static std::map<int, std::string> names;
  return names;
}

// "sequence_of<char>" -> "std::vector<char> (or another contiguous sequence of char)",
// "serialized<X>" -> "X". The compiler spells the wire types with or without their namespace.
std::string readable(std::string_view wire) {
  if (wire.starts_with("mpx::detail::"))
    wire.remove_prefix(std::string_view("mpx::detail::").size());
  constexpr std::string_view seq = "sequence_of<";
  constexpr std::string_view ser = "serialized<";
  if (wire.starts_with(seq)) {
    const std::string e = tidy_type_name(wire.substr(seq.size(), wire.size() - seq.size() - 1));
    return "std::vector<" + e + "> (or another contiguous sequence of " + e + ")";
  }
  if (wire.starts_with(ser))
    return tidy_type_name(wire.substr(ser.size(), wire.size() - ser.size() - 1));
  return tidy_type_name(wire);
}
}  // namespace

std::string tidy_type_name(std::string_view name) {
  std::string out(name);
  auto replace_all = [&out](std::string_view from, std::string_view to) {
    for (auto at = out.find(from); at != std::string::npos; at = out.find(from, at + to.size()))
      out.replace(at, from.size(), to);
  };
  replace_all("std::__cxx11::basic_string<char>", "std::string");
  replace_all("std::__cxx11::", "std::");
  replace_all("long int", "long");
  replace_all(" >", ">");
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

bool register_type_name(int fingerprint, std::string_view name) noexcept {
  try {
    std::lock_guard lock(registry_mutex());
    auto& names = registry();
    auto [it, inserted] = names.emplace(fingerprint, readable(name));
    if (!inserted && it->second != readable(name)) it->second += " or " + readable(name);
  } catch (...) {
  }
  return true;
}

// Every fingerprint this program registered (the types it sends or receives).
std::vector<int> known_fingerprints() {
  std::lock_guard lock(registry_mutex());
  std::vector<int> out;
  out.reserve(registry().size());
  for (const auto& entry : registry()) out.push_back(entry.first);
  return out;
}

std::string lookup_type_name(int fingerprint) {
  std::lock_guard lock(registry_mutex());
  const auto& names = registry();
  if (auto it = names.find(fingerprint); it != names.end()) return "'" + it->second + "'";
  return "a type this rank never uses (type fingerprint " + std::to_string(fingerprint) + ")";
}

// ---- orphaned sends ------------------------------------------------------------------------

namespace {
std::mutex& orphan_mutex() {
  static std::mutex m;
  return m;
}
std::vector<std::unique_ptr<PendingOp>>& orphans() {
  static auto* list = new std::vector<std::unique_ptr<PendingOp>>();  // leaked on purpose
  return *list;
}
}  // namespace

void adopt_orphan(std::unique_ptr<PendingOp> op) noexcept {
  try {
    std::lock_guard lock(orphan_mutex());
    orphans().push_back(std::move(op));
  } catch (...) {
    (void)op.release();  // cannot keep it: leak the buffer rather than free it under MPI
  }
}

void sweep_orphans() noexcept {
  std::unique_lock lock(orphan_mutex(), std::try_to_lock);
  if (!lock.owns_lock()) return;
  auto& list = orphans();
  for (auto it = list.begin(); it != list.end();) {
    bool done = true;
    try {
      done = (*it)->progress();
    } catch (...) {
    }
    it = done ? list.erase(it) : it + 1;
  }
}

void throw_invalid_future() { throw_invalid_future("get"); }

void throw_invalid_future(const char* operation) {
  throw UsageError(where("Future", operation) +
                   "this future holds no operation (its result was already taken, or it was "
                   "moved from or default-constructed)");
}

// ---- byte types ----------------------------------------------------------------------------

ByteType::ByteType(std::size_t bytes) {
  if (bytes <= static_cast<std::size_t>(INT_MAX)) {
    count_ = static_cast<int>(bytes);
    return;
  }
  constexpr std::size_t chunk = std::size_t{1} << 30;
  const std::size_t chunks = bytes / chunk;
  const std::size_t rest = bytes % chunk;
  MPI_Datatype chunk_type = MPI_DATATYPE_NULL;
  MPX_CHECK_MPI(MPI_Type_contiguous(static_cast<int>(chunk), MPI_BYTE, &chunk_type), "message", "send");
  int lengths[2] = {static_cast<int>(chunks), static_cast<int>(rest)};
  MPI_Aint displacements[2] = {0, static_cast<MPI_Aint>(chunks * chunk)};
  MPI_Datatype types[2] = {chunk_type, MPI_BYTE};
  MPX_CHECK_MPI(MPI_Type_create_struct(2, lengths, displacements, types, &type_), "message", "send");
  MPI_Type_free(&chunk_type);
  MPX_CHECK_MPI(MPI_Type_commit(&type_), "message", "send");
  count_ = 1;
  owned_ = true;
}

ByteType::~ByteType() {
  if (owned_) MPI_Type_free(&type_);
}

std::size_t message_bytes(const MPI_Status& status) {
  MPI_Count count = 0;
  MPI_Get_elements_x(&status, MPI_BYTE, &count);
  return count < 0 ? 0 : static_cast<std::size_t>(count);
}

MPI_Datatype make_block_datatype(std::size_t bytes) {
  MPI_Datatype type = MPI_DATATYPE_NULL;
  MPX_CHECK_MPI(MPI_Type_contiguous(static_cast<int>(bytes), MPI_BYTE, &type), "reduce", "datatype");
  MPX_CHECK_MPI(MPI_Type_commit(&type), "reduce", "datatype");
  return type;
}

MPI_Op make_user_op(MPI_User_function* fn) {
  MPI_Op op = MPI_OP_NULL;
  MPX_CHECK_MPI(MPI_Op_create(fn, /*commute=*/0, &op), "reduce", "operation");
  return op;
}

}  // namespace detail

// ---- Communicator --------------------------------------------------------------------------

namespace {
// A rank that passed a negative colour to split() holds a null communicator: it takes part
// in nothing, and MPI would fail (or abort) on the null handle.
void require_member(MPI_Comm comm, const std::string& name, std::string_view op) {
  if (comm != MPI_COMM_NULL) return;
  detail::fail(name, op,
               "this rank is not a member of " + name +
                   " (it passed a negative colour to split(), which gave it a null "
                   "communicator); call " +
                   std::string(op) +
                   " only on the ranks of the group "
                   "(check is_null() first)");
}
}  // namespace

Communicator::Communicator(MPI_Comm comm, std::string name, bool owned)
    : comm_(comm), name_(std::move(name)), owned_(owned) {
  if (comm_ == MPI_COMM_NULL) {  // split() with a negative colour: this rank is in no group
    rank_ = MPI_UNDEFINED;
    size_ = 0;
    return;
  }
  MPX_CHECK_MPI(MPI_Comm_rank(comm_, &rank_), name_, "rank");
  MPX_CHECK_MPI(MPI_Comm_size(comm_, &size_), name_, "size");
}

Communicator Communicator::view(MPI_Comm comm, std::string name) {
  return Communicator(comm, std::move(name), false);
}

Communicator::Communicator(Communicator&& o) noexcept
    : comm_(o.comm_), rank_(o.rank_), size_(o.size_), name_(std::move(o.name_)), owned_(o.owned_) {
  o.comm_ = MPI_COMM_NULL;
  o.owned_ = false;
}

Communicator& Communicator::operator=(Communicator&& o) noexcept {
  if (this != &o) {
    this->~Communicator();
    new (this) Communicator(std::move(o));
  }
  return *this;
}

Communicator::~Communicator() {
  if (owned_ && comm_ != MPI_COMM_NULL) detail::retire_communicator(comm_);
}

Communicator Communicator::duplicate(std::string name) const {
  require_member(comm_, name_, "duplicate");
  MPI_Comm dup = MPI_COMM_NULL;
  MPI_Request request = MPI_REQUEST_NULL;
  MPX_CHECK_MPI(MPI_Comm_idup(comm_, &dup, &request), name, "create");
  wait(request, "create");
  MPX_CHECK_MPI(MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN), name, "create");
  Communicator out(dup, std::move(name), true);  // owns dup from here, even if the next throws
  detail::register_for_retirement(dup);
  return out;
}

Communicator Communicator::split(int color, int key, std::string name) const {
  require_member(comm_, name_, "split");
  MPI_Comm out = MPI_COMM_NULL;
  MPX_CHECK_MPI(MPI_Comm_split(comm_, color < 0 ? MPI_UNDEFINED : color, key, &out), name_, "split");
  if (out == MPI_COMM_NULL) return Communicator(MPI_COMM_NULL, std::move(name), false);
  MPX_CHECK_MPI(MPI_Comm_set_errhandler(out, MPI_ERRORS_RETURN), name, "split");
  Communicator owned(out, std::move(name), true);
  detail::register_for_retirement(out);
  return owned;
}

void Communicator::check_rank(int rank, std::string_view operation, bool allow_any) const {
  require_member(comm_, name_, operation);
  if (allow_any && rank == any_source) return;
  if (rank >= 0 && rank < size_) return;
  detail::fail(name_, operation,
               "rank " + std::to_string(rank) + " is out of range: " + name_ + " has " +
                   std::to_string(size_) + " rank(s), numbered 0.." + std::to_string(size_ - 1) +
                   (allow_any ? " (or any_source)" : "") + "; check the rank you pass, and the -n of mpiexec");
}

void Communicator::check_tag(int tag, std::string_view operation, bool allow_any) const {
  if (allow_any && tag == any_tag) return;
  if (tag >= 0 && tag <= detail::max_user_tag) return;
  detail::fail(name_, operation,
               "tag " + std::to_string(tag) + " is out of range: use 0.." +
                   std::to_string(detail::max_user_tag) + (allow_any ? " or any_tag" : ""));
}

void Communicator::wait(MPI_Request& request, std::string_view operation, int peer,
                        MPI_Status* status) const {
  MPI_Status local{};
  MPI_Status* st = status ? status : &local;
  detail::wait_until(
      [&] {
        int done = 0;
        MPX_CHECK_MPI(MPI_Test(&request, &done, st), name_, operation);
        return done != 0;
      },
      detail::no_deadline, {name_, operation, peer, comm_, peer < 0});
}

namespace {
constexpr std::size_t eager_bytes = 4096;  // Open MPI's shared-memory eager limit
}

void Communicator::send_bytes(const void* data, std::size_t bytes, int dest, int wire_tag,
                              std::string_view operation) const {
  if (bytes <= eager_bytes) {
    MPX_CHECK_MPI(MPI_Send(data, static_cast<int>(bytes), MPI_BYTE, dest, wire_tag, comm_), name_,
                  operation);
    return;
  }
  MPI_Request request = isend_bytes(data, bytes, dest, wire_tag, operation);
  wait_transfer(request, bytes, operation, dest);
}

void Communicator::wait_transfer(MPI_Request& request, std::size_t bytes, std::string_view operation,
                                 int peer) const {
  using namespace std::chrono;
  const auto hot_for = std::min<nanoseconds>(microseconds(200) + nanoseconds(bytes), milliseconds(50));
  const auto hot_until = steady_clock::now() + hot_for;
  for (unsigned polls = 0;; ++polls) {
    int done = 0;
    MPX_CHECK_MPI(MPI_Test(&request, &done, MPI_STATUS_IGNORE), name_, operation);
    if (done) return;
    if (polls >= 64) {
      if (steady_clock::now() >= hot_until) break;
      sched_yield();
    }
  }
  wait(request, operation, peer);
}

MPI_Request Communicator::isend_bytes(const void* data, std::size_t bytes, int dest, int wire_tag,
                                      std::string_view operation) const {
  const detail::ByteType type(bytes);
  MPI_Request request = MPI_REQUEST_NULL;
  MPX_CHECK_MPI(MPI_Isend(data, type.count(), type.type(), dest, wire_tag, comm_, &request), name_,
                operation);
  return request;
}

void Communicator::check_pending_type(int source, int user_tag, int fingerprint,
                                      std::string_view expected, std::string_view operation) const {
  if (!detail::fingerprints_enabled()) return;  // tags carry no type: nothing to compare
  int found = 0;
  MPI_Status st{};
  MPX_CHECK_MPI(MPI_Iprobe(source, MPI_ANY_TAG, comm_, &found, &st), name_, operation);
  if (!found) return;
  if (detail::user_tag_of(st.MPI_TAG) != user_tag) {
    // The next message has another tag and may hide one with this tag but another type (the
    // receive would then wait for ever): look for that by every type this program uses.
    found = 0;
    for (const int fp : detail::known_fingerprints()) {
      if (fp == fingerprint) continue;
      MPX_CHECK_MPI(MPI_Iprobe(source, detail::wire_tag(user_tag, fp), comm_, &found, &st), name_,
                    operation);
      if (found) break;
    }
    if (!found) return;
  }
  const int got = detail::fingerprint_of_tag(st.MPI_TAG);
  if (got == fingerprint) return;
  detail::fail<TypeMismatch>(
      name_, operation,
      "asked for a '" + std::string(expected) + "' but the next message from rank " +
          std::to_string(st.MPI_SOURCE) + " with tag " + std::to_string(user_tag) +
          " was sent as " + detail::lookup_type_name(got) +
          "; receive it with the type it was sent as (the message is still there)");
}

void Communicator::recv_into_too_small(const MPI_Status& status, std::size_t room,
                                       bool kept) const {
  detail::fail(name_, "recv_into",
               "the next message from rank " + std::to_string(status.MPI_SOURCE) + " has " +
                   std::to_string(detail::message_bytes(status)) +
                   " bytes but the buffer holds only " + std::to_string(room) +
                   (kept ? "; the message is kept: receive it into a buffer large enough (probe() "
                           "tells its size), or with recv<std::vector<E>>()"
                         : "; another thread of this rank took the message that fitted, and this "
                           "one was received and dropped: give recv_into a buffer as large as the "
                           "largest message"));
}

Status Communicator::probe(int source, int tag) const {
  check_rank(source, "probe", true);
  check_tag(tag, "probe", true);
  std::optional<Status> found;
  detail::wait_until([&] { return (found = iprobe(source, tag)).has_value(); }, detail::no_deadline,
                     {name_, "probe", source, comm_});
  return *found;
}

std::optional<Status> Communicator::iprobe(int source, int tag) const {
  check_rank(source, "iprobe", true);
  check_tag(tag, "iprobe", true);
  int found = 0;
  MPI_Status st{};
  if (tag == any_tag || !detail::fingerprints_enabled()) {
    MPX_CHECK_MPI(MPI_Iprobe(source, tag, comm_, &found, &st), name_, "iprobe");
  } else {
    // The fingerprint is unknown here: look at the next message from source and keep it
    // only when its user tag matches.
    MPX_CHECK_MPI(MPI_Iprobe(source, MPI_ANY_TAG, comm_, &found, &st), name_, "iprobe");
    if (found && detail::user_tag_of(st.MPI_TAG) != tag) found = 0;
  }
  if (!found) return std::nullopt;
  return Status{st.MPI_SOURCE, detail::user_tag_of(st.MPI_TAG), detail::message_bytes(st)};
}

void Communicator::barrier() const {
  require_member(comm_, name_, "barrier");
  MPI_Request request = MPI_REQUEST_NULL;
  MPX_CHECK_MPI(MPI_Ibarrier(comm_, &request), name_, "barrier");
  wait(request, "barrier");
}

void Communicator::bcast_bytes(void* data, std::size_t bytes, int root, std::string_view op) const {
  const detail::ByteType type(bytes);
  MPI_Request request = MPI_REQUEST_NULL;
  MPX_CHECK_MPI(MPI_Ibcast(data, type.count(), type.type(), root, comm_, &request), name_, op);
  wait(request, op, root);
}

std::vector<int> Communicator::gather_counts(int count, int fingerprint, int root, bool all,
                                             std::string_view op,
                                             std::vector<int>& fingerprints) const {
  require_member(comm_, name_, op);
  // Each rank's count travels with the fingerprint of its type, in the same message.
  const std::size_t n = all || rank_ == root ? static_cast<std::size_t>(size_) : 0;
  const int mine[2] = {count, fingerprint};
  std::vector<int> pairs(2 * n);
  MPI_Request request = MPI_REQUEST_NULL;
  if (all)
    MPX_CHECK_MPI(MPI_Iallgather(mine, 2, MPI_INT, pairs.data(), 2, MPI_INT, comm_, &request),
                  name_, op);
  else
    MPX_CHECK_MPI(MPI_Igather(mine, 2, MPI_INT, pairs.data(), 2, MPI_INT, root, comm_, &request),
                  name_, op);
  wait(request, op, all ? -1 : root);
  std::vector<int> counts(n);
  fingerprints.resize(n);
  for (std::size_t r = 0; r < n; ++r) {
    counts[r] = pairs[2 * r];
    fingerprints[r] = pairs[2 * r + 1];
  }
  return counts;
}

namespace {
std::vector<int> displacements(const std::vector<int>& counts, std::string_view name, std::string_view op) {
  std::vector<int> displs(counts.size());
  long long offset = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    if (offset > INT_MAX)
      detail::fail(name, op, "more than 2 GiB in one collective; send large data with send/recv");
    displs[i] = static_cast<int>(offset);
    offset += counts[i];
  }
  if (offset > INT_MAX)
    detail::fail(name, op, "more than 2 GiB in one collective; send large data with send/recv");
  return displs;
}
int checked_int(std::size_t n, std::string_view name, std::string_view op) {
  if (n > static_cast<std::size_t>(INT_MAX))
    detail::fail(name, op, "more than 2 GiB from one rank in a collective; send it with send/recv");
  return static_cast<int>(n);
}
}  // namespace

std::vector<char> Communicator::gatherv_bytes(std::span<const char> mine, int fingerprint, int root,
                                              bool all, std::vector<int>& counts,
                                              std::string_view op) const {
  const int n = checked_int(mine.size(), name_, op);
  std::vector<int> fingerprints;
  counts = gather_counts(n, fingerprint, root, all, op, fingerprints);
  std::vector<char> out;
  std::vector<int> displs;
  if (all || rank_ == root) {
    displs = displacements(counts, name_, op);
    out.resize(counts.empty() ? 0 : static_cast<std::size_t>(displs.back()) + static_cast<std::size_t>(counts.back()));
  }
  MPI_Request request = MPI_REQUEST_NULL;
  if (all)
    MPX_CHECK_MPI(MPI_Iallgatherv(mine.data(), n, MPI_BYTE, out.data(), counts.data(), displs.data(),
                                  MPI_BYTE, comm_, &request),
                  name_, op);
  else
    MPX_CHECK_MPI(MPI_Igatherv(mine.data(), n, MPI_BYTE, out.data(), counts.data(), displs.data(),
                               MPI_BYTE, root, comm_, &request),
                  name_, op);
  wait(request, op, all ? -1 : root);
  // Checked once the collective is complete, so no rank is left waiting in it. Every rank
  // that reads the values (all of them, or the root) sees the same disagreement and throws.
  for (std::size_t r = 0; r < fingerprints.size(); ++r) {
    if (fingerprints[r] == fingerprint) continue;
    detail::fail<TypeMismatch>(
        name_, op,
        "rank " + std::to_string(r) + " passed " + detail::lookup_type_name(fingerprints[r]) +
            " but this rank passed " + detail::lookup_type_name(fingerprint) +
            "; every rank must pass the same type here (do all ranks run the same program and "
            "create the same objects in the same order?)");
  }
  return out;
}

std::vector<char> Communicator::scatterv_bytes(std::span<const char> all, std::span<const int> counts,
                                               int root, std::string_view op) const {
  int mine = 0;
  MPI_Request request = MPI_REQUEST_NULL;
  MPX_CHECK_MPI(MPI_Iscatter(counts.data(), 1, MPI_INT, &mine, 1, MPI_INT, root, comm_, &request),
                name_, op);
  wait(request, op, root);
  if (mine < 0)  // fail_scatter_at_root: root's arguments were bad, and root throws too
    detail::fail(name_, op,
                 "the root (rank " + std::to_string(root) +
                     ") passed invalid arguments and threw UsageError there (its message says "
                     "which); nothing was scattered");
  std::vector<int> displs;
  if (rank_ == root) displs = displacements(std::vector<int>(counts.begin(), counts.end()), name_, op);
  std::vector<char> out(static_cast<std::size_t>(mine));
  MPX_CHECK_MPI(MPI_Iscatterv(all.data(), counts.data(), displs.data(), MPI_BYTE, out.data(), mine,
                              MPI_BYTE, root, comm_, &request),
                name_, op);
  wait(request, op, root);
  return out;
}

void Communicator::fail_scatter_at_root(int root, std::string_view op,
                                        const std::string& message) const {
  // The others already wait in the scatter of the counts: give each a count of -1, which
  // scatterv_bytes turns into a UsageError, so every rank fails together.
  const std::vector<int> counts(static_cast<std::size_t>(size_), -1);
  int mine = 0;
  MPI_Request request = MPI_REQUEST_NULL;
  MPX_CHECK_MPI(MPI_Iscatter(counts.data(), 1, MPI_INT, &mine, 1, MPI_INT, root, comm_, &request),
                name_, op);
  wait(request, op, root);
  detail::fail(name_, op, message);
}

std::size_t Communicator::agree_on_length(std::size_t n, std::string_view op) const {
  // One allreduce of (n, -n) with MAX gives the longest and the shortest range: every rank
  // sees a disagreement, so every rank throws instead of some waiting in the reduction.
  const auto mine = static_cast<long long>(n);
  long long in[2] = {mine, -mine};
  long long out[2] = {0, 0};
  reduce_raw(in, out, 2, MPI_LONG_LONG, MPI_MAX, 0, true, op);
  if (out[0] != -out[1])
    detail::fail(name_, op,
                 "ranks passed ranges of different lengths (from " + std::to_string(-out[1]) +
                     " to " + std::to_string(out[0]) + " elements; this rank passed " +
                     std::to_string(n) + "); every rank must pass as many elements");
  return n;
}

void Communicator::reduce_raw(const void* in, void* out, int count, MPI_Datatype type, MPI_Op op,
                              int root, bool all, std::string_view operation) const {
  require_member(comm_, name_, operation);
  MPI_Request request = MPI_REQUEST_NULL;
  if (all)
    MPX_CHECK_MPI(MPI_Iallreduce(in, out, count, type, op, comm_, &request), name_, operation);
  else
    MPX_CHECK_MPI(MPI_Ireduce(in, out, count, type, op, root, comm_, &request), name_, operation);
  wait(request, operation, all ? -1 : root);
}

}  // namespace mpx
