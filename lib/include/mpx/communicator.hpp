// mpx/communicator.hpp: typed point-to-point messaging and collectives, the layer every mpx
// object is built on.
//
//   const auto& world = mpx::Communicator::world();
//   if (world.rank() == 0) world.send(std::string("hi"), 1);
//   if (world.rank() == 1) std::string s = world.recv<std::string>(0);
//   double total = world.allreduce(my_part, std::plus<>{});
//
// How values travel:
//   * trivially copyable types (int, double, structs of them, std::array) and contiguous
//     sequences of them (std::vector<E>, std::string, std::span<E>) go as raw bytes, straight
//     from and into your memory: no serialization, no extra copy;
//   * anything else (std::map, std::vector<std::string>, your struct with serialize()) goes
//     through Boost.Serialization's binary archive in one message.
// Messages larger than 2 GiB work. Every message carries a 15-bit fingerprint of its type in
// the MPI tag, so receiving a different type than was sent throws mpx::TypeMismatch naming
// both types instead of handing you garbage (two types share a fingerprint with probability
// 1/32768). User tags are 0..32767.
//
// Nothing here spins a core while it waits: blocking calls post non-blocking MPI operations
// and wait with mpx's backoff (see detail/wait.hpp).
#pragma once

#include <mpi.h>

#include <array>
#include <concepts>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "mpx/detail/check.hpp"
#include "mpx/detail/serialize.hpp"
#include "mpx/detail/wait.hpp"
#include "mpx/error.hpp"
#include "mpx/future.hpp"

namespace mpx {

/// Function object for reductions: the smaller of two values (MPI_MIN for arithmetic types).
struct minimum {
  template <class T>
  constexpr T operator()(const T& a, const T& b) const {
    return b < a ? b : a;
  }
};
/// Function object for reductions: the larger of two values (MPI_MAX for arithmetic types).
struct maximum {
  template <class T>
  constexpr T operator()(const T& a, const T& b) const {
    return a < b ? b : a;
  }
};

namespace detail {

// ---- wire format -------------------------------------------------------------------------

/// True when the fingerprint bits fit in this MPI's tag range (MPI_TAG_UB >= 2^30 - 1).
bool fingerprints_enabled() noexcept;

/// The MPI tag for a user tag and a type fingerprint.
inline int wire_tag(int user_tag, int fingerprint) noexcept {
  return fingerprints_enabled() ? (user_tag | (fingerprint << user_tag_bits)) : user_tag;
}
inline int user_tag_of(int wire) noexcept {
  return fingerprints_enabled() ? (wire & max_user_tag) : wire;
}
inline int fingerprint_of_tag(int wire) noexcept {
  return fingerprints_enabled() ? ((wire >> user_tag_bits) & fingerprint_mask) : 0;
}

/// An MPI datatype and count that describe `bytes` bytes, also beyond 2^31 - 1.
class ByteType {
 public:
  explicit ByteType(std::size_t bytes);
  ~ByteType();
  ByteType(ByteType&& o) noexcept : type_(o.type_), count_(o.count_), owned_(o.owned_) {
    o.owned_ = false;
  }
  ByteType& operator=(ByteType&&) = delete;
  ByteType(const ByteType&) = delete;
  ByteType& operator=(const ByteType&) = delete;
  [[nodiscard]] MPI_Datatype type() const noexcept { return type_; }
  [[nodiscard]] int count() const noexcept { return count_; }

 private:
  MPI_Datatype type_ = MPI_BYTE;
  int count_ = 0;
  bool owned_ = false;
};

/// Size in bytes of a probed or received message (works beyond 2 GiB).
std::size_t message_bytes(const MPI_Status& status);

/// The MPI datatype of an arithmetic type, or MPI_DATATYPE_NULL.
template <class T>
MPI_Datatype builtin_datatype() noexcept {
  using U = std::remove_cv_t<T>;
  if constexpr (std::is_same_v<U, char>) return MPI_CHAR;
  else if constexpr (std::is_same_v<U, signed char>) return MPI_SIGNED_CHAR;
  else if constexpr (std::is_same_v<U, unsigned char>) return MPI_UNSIGNED_CHAR;
  else if constexpr (std::is_same_v<U, short>) return MPI_SHORT;
  else if constexpr (std::is_same_v<U, unsigned short>) return MPI_UNSIGNED_SHORT;
  else if constexpr (std::is_same_v<U, int>) return MPI_INT;
  else if constexpr (std::is_same_v<U, unsigned>) return MPI_UNSIGNED;
  else if constexpr (std::is_same_v<U, long>) return MPI_LONG;
  else if constexpr (std::is_same_v<U, unsigned long>) return MPI_UNSIGNED_LONG;
  else if constexpr (std::is_same_v<U, long long>) return MPI_LONG_LONG;
  else if constexpr (std::is_same_v<U, unsigned long long>) return MPI_UNSIGNED_LONG_LONG;
  else if constexpr (std::is_same_v<U, float>) return MPI_FLOAT;
  else if constexpr (std::is_same_v<U, double>) return MPI_DOUBLE;
  else if constexpr (std::is_same_v<U, long double>) return MPI_LONG_DOUBLE;
  else if constexpr (std::is_same_v<U, bool>) return MPI_CXX_BOOL;
  else return MPI_DATATYPE_NULL;
}

/// The predefined MPI operation matching `Op` for arithmetic T, or MPI_OP_NULL.
template <class Op, class T>
MPI_Op builtin_op() noexcept {
  if constexpr (!std::is_arithmetic_v<T>) return MPI_OP_NULL;
  else if constexpr (std::is_same_v<Op, std::plus<>> || std::is_same_v<Op, std::plus<T>>) return MPI_SUM;
  else if constexpr (std::is_same_v<Op, std::multiplies<>> || std::is_same_v<Op, std::multiplies<T>>) return MPI_PROD;
  else if constexpr (std::is_same_v<Op, minimum>) return MPI_MIN;
  else if constexpr (std::is_same_v<Op, maximum>) return MPI_MAX;
  else if constexpr (std::is_same_v<Op, std::logical_and<>> || std::is_same_v<Op, std::logical_and<T>>) return MPI_LAND;
  else if constexpr (std::is_same_v<Op, std::logical_or<>> || std::is_same_v<Op, std::logical_or<T>>) return MPI_LOR;
  else if constexpr (std::is_integral_v<T> && (std::is_same_v<Op, std::bit_and<>> || std::is_same_v<Op, std::bit_and<T>>)) return MPI_BAND;
  else if constexpr (std::is_integral_v<T> && (std::is_same_v<Op, std::bit_or<>> || std::is_same_v<Op, std::bit_or<T>>)) return MPI_BOR;
  else if constexpr (std::is_integral_v<T> && (std::is_same_v<Op, std::bit_xor<>> || std::is_same_v<Op, std::bit_xor<T>>)) return MPI_BXOR;
  else return MPI_OP_NULL;
}

/// A committed contiguous datatype of sizeof(T) bytes, created once per T.
template <class T>
MPI_Datatype block_datatype();
MPI_Datatype make_block_datatype(std::size_t bytes);

template <class T>
MPI_Datatype block_datatype() {
  static const MPI_Datatype type = make_block_datatype(sizeof(T));
  return type;
}

/// MPI user operation that applies a stateless C++ function object element by element.
template <class T, class Fn>
void apply_user_op(void* in, void* inout, int* len, MPI_Datatype*) {
  Fn fn{};
  auto* a = static_cast<const T*>(in);
  auto* b = static_cast<T*>(inout);
  for (int i = 0; i < *len; ++i) b[i] = static_cast<T>(fn(a[i], b[i]));
}
MPI_Op make_user_op(MPI_User_function* fn);
template <class T, class Fn>
MPI_Op user_op() {
  static const MPI_Op op = make_user_op(&apply_user_op<T, Fn>);
  return op;
}

/// Appends the wire image of `value` (raw bytes, sequence bytes or archive) to `out`.
template <class T>
void encode(std::vector<char>& out, const T& value) {
  auto append = [&out](const void* p, std::size_t n) {
    const std::size_t old = out.size();
    out.resize(old + n);
    if (n > 0) std::memcpy(out.data() + old, p, n);
  };
  if constexpr (wire_kind<T>() == WireKind::raw) {
    append(&value, sizeof(T));
  } else if constexpr (send_sequence<T>::value) {
    append(std::data(value), std::size(value) * sizeof(typename send_sequence<T>::element));
  } else {
    serialize_into(out, value);
  }
}

/// Rebuilds a value from its wire image.
template <class T>
T decode(std::span<const char> bytes) {
  if constexpr (wire_kind<T>() == WireKind::raw) {
    T value;
    std::memcpy(static_cast<void*>(&value), bytes.data(), sizeof(T));
    return value;
  } else if constexpr (raw_sequence<T>::value) {
    using E = typename raw_sequence<T>::element;
    T value;
    value.resize(bytes.size() / sizeof(E));
    if (!bytes.empty()) std::memcpy(value.data(), bytes.data(), bytes.size());
    return value;
  } else {
    static_assert(std::is_default_constructible_v<T>,
                  "mpx receives serialized types by default-constructing them and then "
                  "loading the archive: give this type a default constructor");
    T value;
    deserialize_from(bytes, value);
    return value;
  }
}

/// decode() for values a collective received from rank `from`: bytes that are not a T (that
/// rank passed another type) throw TypeMismatch instead of being misread.
template <class T>
T decode_from(std::span<const char> bytes, const std::string& comm, std::string_view op, int from) {
  const std::string advice =
      "; every rank must pass the same type here (do all ranks run the same program and create "
      "the same objects in the same order?)";
  bool fits = true;
  if constexpr (wire_kind<T>() == WireKind::raw)
    fits = bytes.size() == sizeof(T);
  else if constexpr (raw_sequence<T>::value)
    fits = bytes.size() % sizeof(typename raw_sequence<T>::element) == 0;
  if (!fits)
    fail<TypeMismatch>(comm, op,
                       "rank " + std::to_string(from) + " passed " + std::to_string(bytes.size()) +
                           " bytes, which is not a '" + readable_name<T>() + "'" + advice);
  try {
    return decode<T>(bytes);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail<TypeMismatch>(comm, op,
                       "rank " + std::to_string(from) + " passed " + std::to_string(bytes.size()) +
                           " bytes that are not a '" + readable_name<T>() + "' (" + e.what() + ")" +
                           advice);
  }
}

/// Compile-time gate with a readable message.
template <class T>
constexpr void check_sendable() {
  static_assert(!std::is_pointer_v<std::remove_cvref_t<T>>,
                "mpx cannot send a raw pointer: an address means nothing on another rank. "
                "Send the value it points to, or a std::vector / std::span of the data.");
  static_assert(!std::is_reference_v<T>, "mpx sends values, not references");
}

class Orphans;

}  // namespace detail

/// A group of ranks that talk to each other: a wrapper of an MPI communicator. The world
/// communicator comes from world(); every mpx object duplicates one, so its messages can
/// never be confused with anyone else's. Move-only; an owning communicator frees its MPI
/// handle on destruction (while MPI is still initialised).
class Communicator {
 public:
  /// Wildcard source for recv/probe.
  static constexpr int any_source = MPI_ANY_SOURCE;
  /// Wildcard tag for recv/probe.
  static constexpr int any_tag = MPI_ANY_TAG;

  /// The communicator of all ranks (local; needs a live Environment).
  static const Communicator& world();

  /// Wraps an existing MPI communicator without owning it (local).
  static Communicator view(MPI_Comm comm, std::string name);

  /// A private copy of this communicator: same ranks, separate message space, errors
  /// returned as exceptions (collective; waits without spinning).
  [[nodiscard]] Communicator duplicate(std::string name) const;

  /// Splits into sub-communicators by `color`, ordered by `key` (collective). A rank that
  /// passes a negative colour joins none and gets a null communicator (is_null()).
  [[nodiscard]] Communicator split(int color, int key, std::string name) const;

  Communicator(Communicator&& other) noexcept;
  Communicator& operator=(Communicator&& other) noexcept;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;
  ~Communicator();

  /// True for the communicator a rank gets from split() with a negative colour (local).
  [[nodiscard]] bool is_null() const noexcept { return comm_ == MPI_COMM_NULL; }
  /// The MPI handle (local).
  [[nodiscard]] MPI_Comm native() const noexcept { return comm_; }
  /// This rank's number in the communicator (local).
  [[nodiscard]] int rank() const noexcept { return rank_; }
  /// Number of ranks (local).
  [[nodiscard]] int size() const noexcept { return size_; }
  /// Name used in error messages, for example "world" or "Pipe#2" (local).
  [[nodiscard]] const std::string& name() const noexcept { return name_; }

  // ---- point to point ----------------------------------------------------------------------

  /// Sends `value` to rank `dest` with `tag` (0..32767). Returns when the buffer may be
  /// reused: small messages at once, large ones when the receiver has taken them (remote).
  template <class T>
  void send(const T& value, int dest, int tag = 0) const;

  /// Receives a T from `source` (or any_source) with `tag` (or any_tag) (remote).
  /// Throws TypeMismatch if the next matching message was sent as another type.
  template <class T>
  T recv(int source = any_source, int tag = 0, Status* status = nullptr) const;

  /// Receives a sequence of E straight into `out` (no copy); returns the origin and size.
  /// A message larger than `out` throws UsageError and stays for another receive (remote).
  template <class E>
  Status recv_into(std::span<E> out, int source = any_source, int tag = 0) const;

  /// Starts sending `value`, which the future owns until MPI is done with it. Pass large
  /// buffers with std::move, or a std::span you keep alive, to avoid a copy (local).
  template <class T>
  [[nodiscard]] Future<void> isend(T value, int dest, int tag = 0) const;

  /// Starts receiving a T (local; the future's wait/get is remote).
  template <class T>
  [[nodiscard]] Future<T> irecv(int source = any_source, int tag = 0) const;

  /// Waits until a message from `source` with `tag` is pending and describes it (remote).
  Status probe(int source = any_source, int tag = any_tag) const;
  /// Describes a pending message from `source` with `tag`, if there is one (local).
  std::optional<Status> iprobe(int source = any_source, int tag = any_tag) const;

  // ---- collectives (every rank of the communicator must call, in the same order) ------------

  /// Waits until every rank has arrived (collective).
  void barrier() const;

  /// Returns root's `value` on every rank (collective). A rank that asks for another type
  /// than the root sent (sequences, serialized values) throws TypeMismatch.
  template <class T>
  T bcast(T value, int root = 0) const;

  /// Root passes one value per rank; each rank gets its own (collective). Too few or too many
  /// values at the root make every rank throw UsageError.
  template <class T>
  T scatter(const std::vector<T>& values, int root = 0) const;

  /// Root passes a range; each rank gets a contiguous block: sizes differ by at most one,
  /// lower ranks get the larger blocks (collective). Trivially copyable elements only.
  template <class E>
  std::vector<E> scatterv(std::span<const E> values, int root = 0) const;
  /// Same with explicit per-rank counts (significant at root only) (collective). Bad counts
  /// at the root make every rank throw UsageError.
  template <class E>
  std::vector<E> scatterv(std::span<const E> values, std::span<const int> counts,
                          int root = 0) const;

  /// Root receives every rank's value in rank order; other ranks get an empty vector
  /// (collective).
  template <class T>
  std::vector<T> gather(const T& value, int root = 0) const;

  /// Root receives the concatenation of every rank's range, in rank order; ranks may pass
  /// different lengths (collective). Trivially copyable elements only.
  template <class E>
  std::vector<E> gatherv(std::span<const E> values, int root = 0) const;

  /// Every rank receives every rank's value in rank order (collective). Ranks that pass
  /// different types make every rank throw TypeMismatch (gather: the root).
  template <class T>
  std::vector<T> allgather(const T& value) const;

  /// Every rank receives the concatenation of every rank's range (collective).
  template <class E>
  std::vector<E> allgatherv(std::span<const E> values) const;

  /// Combines every rank's value with `op` in rank order; the result is valid on root
  /// (other ranks get `value` back). Uses MPI's own operation for arithmetic types with
  /// std::plus, std::multiplies, mpx::minimum, mpx::maximum, logical and bit operations;
  /// any other stateless function object runs as an MPI user operation; other types and
  /// stateful functions are gathered and folded on root (collective).
  template <class T, class Op>
  T reduce(const T& value, Op op, int root = 0) const;

  /// reduce() whose result every rank receives (collective). Other types and stateful
  /// functions are gathered by every rank and folded there, in rank order.
  template <class T, class Op>
  T allreduce(const T& value, Op op) const;

  /// Element-wise reduction of equally long ranges (collective); different lengths make
  /// every rank throw UsageError.
  template <class E, class Op>
  std::vector<std::remove_const_t<E>> reduce(std::span<E> values, Op op, int root = 0) const;
  /// Element-wise allreduce of equally long ranges (collective).
  template <class E, class Op>
  std::vector<std::remove_const_t<E>> allreduce(std::span<E> values, Op op) const;

  // ---- helpers for objects built on this layer --------------------------------------------

  /// Throws UsageError unless 0 <= rank < size() (or rank == any_source when allowed).
  void check_rank(int rank, std::string_view operation, bool allow_any = false) const;
  /// Throws UsageError unless 0 <= tag <= 32767 (or any_tag when allowed).
  void check_tag(int tag, std::string_view operation, bool allow_any = false) const;
  /// Waits for `request` without spinning; throws MpiError on failure (remote).
  void wait(MPI_Request& request, std::string_view operation, int peer = -1,
            MPI_Status* status = nullptr) const;
  /// Waits for a transfer of `bytes` bytes: polls hot for about as long as the bytes take to
  /// move at 1 GB/s plus 200 us (at most 50 ms), then falls back to the sleeping backoff. A
  /// sleeping waiter would notice the end of a large transfer up to a millisecond late, which
  /// costs large messages up to 40% of their bandwidth; a waiter whose peer is not there still
  /// ends up sleeping, so a long wait stays cheap (remote).
  void wait_transfer(MPI_Request& request, std::size_t bytes, std::string_view operation,
                     int peer) const;
  /// Sends raw bytes with an already composed wire tag (remote).
  void send_bytes(const void* data, std::size_t bytes, int dest, int wire_tag,
                  std::string_view operation) const;
  /// Starts sending raw bytes with a composed wire tag (local).
  [[nodiscard]] MPI_Request isend_bytes(const void* data, std::size_t bytes, int dest,
                                        int wire_tag, std::string_view operation) const;
  /// Throws UsageError for a message too large for recv_into's buffer of `room` bytes, which
  /// is still there (`kept`) or was lost.
  [[noreturn]] void recv_into_too_small(const MPI_Status& status, std::size_t room,
                                        bool kept) const;
  /// Throws TypeMismatch if the next message from `source` with `user_tag` carries a
  /// fingerprint other than `fingerprint` (local).
  void check_pending_type(int source, int user_tag, int fingerprint, std::string_view expected,
                          std::string_view operation) const;

 private:
  Communicator(MPI_Comm comm, std::string name, bool owned);
  void bcast_bytes(void* data, std::size_t bytes, int root, std::string_view op) const;
  std::vector<int> gather_counts(int count, int fingerprint, int root, bool all,
                                 std::string_view op, std::vector<int>& fingerprints) const;
  /// Gathers every rank's bytes; `fingerprint` is the type of the values: a rank that passed
  /// another type makes every rank that reads the values throw TypeMismatch.
  std::vector<char> gatherv_bytes(std::span<const char> mine, int fingerprint, int root, bool all,
                                  std::vector<int>& counts, std::string_view op) const;
  std::vector<char> scatterv_bytes(std::span<const char> all, std::span<const int> counts,
                                   int root, std::string_view op) const;
  void reduce_raw(const void* in, void* out, int count, MPI_Datatype type, MPI_Op op, int root,
                  bool all, std::string_view operation) const;
  template <class T>
  std::vector<T> decode_all(const std::vector<char>& bytes, const std::vector<int>& counts,
                            std::string_view op) const;
  /// Root only: tells the other ranks of a scatter that root's arguments were bad (they
  /// throw UsageError too, instead of waiting for ever), then throws `message` (collective).
  [[noreturn]] void fail_scatter_at_root(int root, std::string_view op,
                                         const std::string& message) const;
  /// Checks that every rank passed `n` elements; every rank throws UsageError if not
  /// (collective).
  std::size_t agree_on_length(std::size_t n, std::string_view op) const;
  template <class E, class Op>
  std::vector<std::remove_const_t<E>> reduce_elements(std::span<E> values, Op op, int root, bool all,
                                                      std::string_view operation) const;

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 0;
  std::string name_;
  bool owned_ = false;
};

namespace detail {

/// The receive operation behind recv and irecv.
template <class T>
class RecvOp final : public Op<T> {
  static constexpr WireKind kind = wire_kind<T>();

 public:
  RecvOp(const Communicator& comm, int source, int tag, std::string_view operation = "recv")
      : comm_(comm), source_(source), tag_(tag), fingerprint_(fingerprint_of<T>()) {
    comm.check_rank(source, operation, true);
    comm.check_tag(tag, operation, true);
    if constexpr (kind == WireKind::raw) {
      if (tag != Communicator::any_tag) {
        MPX_CHECK_MPI(MPI_Irecv(&storage_, sizeof(T), MPI_BYTE, source,
                                wire_tag(tag, fingerprint_), comm.native(), &request_),
                      comm.name(), "recv");
        state_ = State::receiving;
      }
    }
  }
  ~RecvOp() override { abandon(); }
  RecvOp(const RecvOp&) = delete;
  RecvOp& operator=(const RecvOp&) = delete;

  bool progress() override {
    if (error_) std::rethrow_exception(error_);  // a wrong-type message stays an error
    if (state_ == State::done) return true;
    if (state_ == State::probing) {
      MPI_Message message;
      int found = 0;
      if (tag_ == Communicator::any_tag) {
        MPX_CHECK_MPI(MPI_Iprobe(source_, MPI_ANY_TAG, comm_.native(), &found, &status_),
                      comm_.name(), "recv");
        if (!found) return false;
        if (fingerprints_enabled() && fingerprint_of_tag(status_.MPI_TAG) != fingerprint_)
          comm_.check_pending_type(status_.MPI_SOURCE, user_tag_of(status_.MPI_TAG), fingerprint_,
                                   readable_name<T>(), "recv");
        MPX_CHECK_MPI(MPI_Improbe(status_.MPI_SOURCE, status_.MPI_TAG, comm_.native(), &found,
                                  &message, &status_),
                      comm_.name(), "recv");
      } else {
        MPX_CHECK_MPI(MPI_Improbe(source_, wire_tag(tag_, fingerprint_), comm_.native(), &found,
                                  &message, &status_),
                      comm_.name(), "recv");
      }
      if (!found) {
        check_mismatch();
        return state_ == State::done;
      }
      start_matched(message);
    }
    int done = 0;
    MPX_CHECK_MPI(MPI_Test(&request_, &done, &status_), comm_.name(), "recv");
    if (done) {
      state_ = State::done;
      return true;
    }
    check_mismatch();
    return state_ == State::done;
  }

  bool abandon() noexcept override {
    if (state_ == State::receiving && request_ != MPI_REQUEST_NULL) {
      MPI_Cancel(&request_);
      MPI_Wait(&request_, MPI_STATUS_IGNORE);
    }
    state_ = State::done;
    return false;
  }

  T take() override {
    if constexpr (kind == WireKind::raw) {
      if (message_bytes(status_) != sizeof(T)) bad_size(sizeof(T));
      T value;
      std::memcpy(static_cast<void*>(&value), &storage_, sizeof(T));
      return value;
    } else if constexpr (kind == WireKind::sequence) {
      return std::move(value_);
    } else {
      try {
        return decode<T>(buffer_);
      } catch (const std::exception& e) {
        detail::fail<TypeMismatch>(comm_.name(), "recv",
                                   "could not rebuild a " + readable_name<T>() + " from " +
                                       std::to_string(buffer_.size()) + " received bytes (" +
                                       e.what() + "); the sender's type differs");
      }
    }
  }

  [[nodiscard]] Status status() const noexcept override {
    return {status_.MPI_SOURCE, user_tag_of(status_.MPI_TAG), message_bytes(status_)};
  }
  [[nodiscard]] WaitSite site() const noexcept override {
    return {comm_.name(), "recv", source_, comm_.native()};
  }

 private:
  enum class State { probing, receiving, done };

  void start_matched(MPI_Message& message) {
    const std::size_t bytes = message_bytes(status_);
    void* dest = nullptr;
    if constexpr (kind == WireKind::raw) {
      if (bytes != sizeof(T)) {  // take the message off the wire, then report it
        buffer_.resize(bytes);
        const ByteType drain(bytes);
        MPI_Mrecv(buffer_.data(), drain.count(), drain.type(), &message, MPI_STATUS_IGNORE);
        bad_size(sizeof(T));
      }
      dest = &storage_;
    } else if constexpr (kind == WireKind::sequence) {
      using E = typename raw_sequence<T>::element;
      value_.resize(bytes / sizeof(E));
      dest = value_.data();
    } else {
      buffer_.resize(bytes);
      dest = buffer_.data();
    }
    const ByteType type(bytes);
    MPX_CHECK_MPI(MPI_Imrecv(dest, type.count(), type.type(), &message, &request_), comm_.name(),
                  "recv");
    state_ = State::receiving;
  }

  // Every eighth poll: is the next message on our (source, tag) of another type? If so,
  // withdraw the posted receive and throw; if the receive matched meanwhile, finish instead.
  void check_mismatch() {
    if (!fingerprints_enabled() || tag_ == Communicator::any_tag) return;
    if ((++polls_ & 7u) != 0) return;
    try {
      comm_.check_pending_type(source_, tag_, fingerprint_, readable_name<T>(), "recv");
    } catch (...) {
      if (state_ == State::receiving) {
        MPI_Cancel(&request_);
        MPI_Wait(&request_, &status_);
        int cancelled = 0;
        MPI_Test_cancelled(&status_, &cancelled);
        state_ = State::done;
        if (!cancelled) return;
      }
      state_ = State::done;
      error_ = std::current_exception();  // the withdrawn receive has no value to take
      throw;
    }
  }

  [[noreturn]] void bad_size(std::size_t expected) const {
    detail::fail<TypeMismatch>(comm_.name(), "recv",
                               "expected " + std::to_string(expected) + " bytes for a " +
                                   readable_name<T>() + " but the message from rank " +
                                   std::to_string(status_.MPI_SOURCE) + " has " +
                                   std::to_string(message_bytes(status_)) +
                                   " bytes; sender and receiver disagree on the type");
  }

  const Communicator& comm_;
  int source_;
  int tag_;
  int fingerprint_;
  State state_ = State::probing;
  MPI_Request request_ = MPI_REQUEST_NULL;
  MPI_Status status_{};
  unsigned polls_ = 0;
  std::exception_ptr error_;
  struct Empty {};
  alignas(T) std::conditional_t<kind == WireKind::raw, unsigned char[sizeof(T)], Empty> storage_{};
  std::conditional_t<kind == WireKind::sequence, T, Empty> value_{};
  std::vector<char> buffer_;
};

/// Receives a message already matched by MPI_Improbe into a T, straight into the T's own
/// storage for raw types and sequences (remote: waits for the data without spinning).
template <class T>
T receive_matched(const Communicator& comm, MPI_Message& message, const MPI_Status& status,
                  std::string_view operation) {
  const std::size_t bytes = message_bytes(status);
  const ByteType type(bytes);
  MPI_Request request = MPI_REQUEST_NULL;
  auto receive = [&](void* dest) {
    MPX_CHECK_MPI(MPI_Imrecv(dest, type.count(), type.type(), &message, &request), comm.name(),
                  operation);
    comm.wait_transfer(request, bytes, operation, status.MPI_SOURCE);
  };
  if constexpr (wire_kind<T>() == WireKind::sequence) {
    T value;
    value.resize(bytes / sizeof(typename raw_sequence<T>::element));
    receive(value.data());
    return value;
  } else {
    std::vector<char> buffer(bytes);
    receive(buffer.data());
    if constexpr (wire_kind<T>() == WireKind::raw) {
      if (bytes != sizeof(T))
        fail<TypeMismatch>(comm.name(), operation,
                           "expected " + std::to_string(sizeof(T)) + " bytes for a " +
                               readable_name<T>() + " but the message has " + std::to_string(bytes));
    }
    try {
      return decode<T>(buffer);
    } catch (const std::exception& e) {
      fail<TypeMismatch>(comm.name(), operation,
                         "could not rebuild a " + readable_name<T>() + " from " +
                             std::to_string(bytes) + " received bytes (" + e.what() +
                             "); the sender's type differs");
    }
  }
}

/// The send operation behind isend: owns the value (or its serialized image).
template <class T>
class SendOp final : public Op<void> {
 public:
  SendOp(const Communicator& comm, T value, int dest, int tag)
      : comm_(comm), value_(std::move(value)), dest_(dest) {
    const void* data = nullptr;
    std::size_t bytes = 0;
    if constexpr (wire_kind<T>() == WireKind::raw) {
      data = &value_;
      bytes = sizeof(T);
    } else if constexpr (send_sequence<T>::value) {
      data = std::data(value_);
      bytes = std::size(value_) * sizeof(typename send_sequence<T>::element);
    } else {
      serialize_into(buffer_, value_);
      data = buffer_.data();
      bytes = buffer_.size();
    }
    request_ = comm.isend_bytes(data, bytes, dest, wire_tag(tag, fingerprint_of<T>()), "isend");
  }
  SendOp(const SendOp&) = delete;
  SendOp& operator=(const SendOp&) = delete;
  ~SendOp() override = default;

  bool progress() override {
    int done = 0;
    MPX_CHECK_MPI(MPI_Test(&request_, &done, MPI_STATUS_IGNORE), comm_.name(), "isend");
    return done != 0;
  }
  bool abandon() noexcept override { return request_ != MPI_REQUEST_NULL; }
  void take() override {}
  [[nodiscard]] WaitSite site() const noexcept override { return {comm_.name(), "isend", dest_, comm_.native()}; }

 private:
  const Communicator& comm_;
  T value_;
  int dest_;
  std::vector<char> buffer_;
  MPI_Request request_ = MPI_REQUEST_NULL;
};

}  // namespace detail

// ---- point to point -----------------------------------------------------------------------

template <class T>
void Communicator::send(const T& value, int dest, int tag) const {
  detail::check_sendable<T>();
  check_rank(dest, "send");
  check_tag(tag, "send");
  const int wtag = detail::wire_tag(tag, detail::fingerprint_of<T>());
  if constexpr (detail::send_sequence<T>::value) {
    send_bytes(std::data(value), std::size(value) * sizeof(typename detail::send_sequence<T>::element),
               dest, wtag, "send");
  } else if constexpr (detail::wire_kind<T>() == detail::WireKind::raw) {
    send_bytes(&value, sizeof(T), dest, wtag, "send");
  } else {
    std::vector<char> buffer;
    detail::serialize_into(buffer, value);
    send_bytes(buffer.data(), buffer.size(), dest, wtag, "send");
  }
}

template <class T>
T Communicator::recv(int source, int tag, Status* status) const {
  static_assert(!detail::send_sequence<T>::value || detail::raw_sequence<T>::value,
                "receive a sequence as std::vector<E> or std::string, or into a std::span with "
                "recv_into()");
  detail::RecvOp<T> op(*this, source, tag);
  detail::wait_until([&] { return op.progress(); }, detail::no_deadline, op.site());
  if (status) *status = op.status();
  return op.take();
}

template <class E>
Status Communicator::recv_into(std::span<E> out, int source, int tag) const {
  static_assert(detail::trivially_sendable<E> && !std::is_const_v<E>,
                "recv_into needs a writable span of trivially copyable elements");
  check_rank(source, "recv_into", true);
  check_tag(tag, "recv_into");
  const int fp = detail::fingerprint_of<std::vector<E>>();
  const int wtag = detail::wire_tag(tag, fp);
  // Look before taking: a message too large for `out` stays for another receive (UsageError),
  // as does one of another type (TypeMismatch). The matched message then moves straight into
  // `out` (MPI_Imrecv): large messages without any copy.
  MPI_Message message = MPI_MESSAGE_NULL;
  MPI_Status st{};
  unsigned polls = 0;
  detail::wait_until(
      [&] {
        int found = 0;
        MPX_CHECK_MPI(MPI_Iprobe(source, wtag, comm_, &found, &st), name_, "recv_into");
        if (found) {
          if (detail::message_bytes(st) > out.size_bytes())
            recv_into_too_small(st, out.size_bytes(), true);
          MPX_CHECK_MPI(MPI_Improbe(st.MPI_SOURCE, wtag, comm_, &found, &message, &st), name_,
                        "recv_into");
          return found != 0;  // (another thread of this rank may have taken it: look again)
        }
        if ((++polls & 7u) == 0)
          check_pending_type(source, tag, fp, detail::readable_name<std::vector<E>>(), "recv_into");
        return false;
      },
      detail::no_deadline, {name_, "recv_into", source, comm_});
  const std::size_t bytes = detail::message_bytes(st);
  const bool fits = bytes <= out.size_bytes();
  std::vector<char> spill(fits ? 0 : bytes);  // only when another thread took the probed one
  const detail::ByteType type(bytes);
  MPI_Request request = MPI_REQUEST_NULL;
  MPX_CHECK_MPI(MPI_Imrecv(fits ? static_cast<void*>(out.data()) : spill.data(), type.count(),
                           type.type(), &message, &request),
                name_, "recv_into");
  wait_transfer(request, bytes, "recv_into", st.MPI_SOURCE);
  if (!fits) recv_into_too_small(st, out.size_bytes(), false);
  return {st.MPI_SOURCE, detail::user_tag_of(st.MPI_TAG), bytes};
}

template <class T>
Future<void> Communicator::isend(T value, int dest, int tag) const {
  detail::check_sendable<T>();
  check_rank(dest, "isend");
  check_tag(tag, "isend");
  return Future<void>(std::make_unique<detail::SendOp<T>>(*this, std::move(value), dest, tag));
}

template <class T>
Future<T> Communicator::irecv(int source, int tag) const {
  return Future<T>(std::make_unique<detail::RecvOp<T>>(*this, source, tag, "irecv"));
}

// ---- collectives --------------------------------------------------------------------------

template <class T>
T Communicator::bcast(T value, int root) const {
  check_rank(root, "bcast");
  if constexpr (detail::wire_kind<T>() == detail::WireKind::raw && sizeof(T) <= 256) {
    // Small values travel with their type's fingerprint (4 bytes more in the same message), so
    // a rank that expects another type than the root sent throws TypeMismatch; a rank whose
    // type is smaller than the root's gets MPI's truncation error (MpiError).
    const int fingerprint = detail::fingerprint_of<T>();
    std::array<char, sizeof(T) + sizeof(int)> image{};  // zeros: no fingerprint is 0
    if (rank_ == root) {
      std::memcpy(image.data(), static_cast<const void*>(&value), sizeof(T));
      std::memcpy(image.data() + sizeof(T), &fingerprint, sizeof(int));
    }
    bcast_bytes(image.data(), image.size(), root, "bcast");
    if (rank_ == root) return value;
    int sent_as = 0;
    std::memcpy(&sent_as, image.data() + sizeof(T), sizeof(int));
    if (sent_as != fingerprint)
      detail::fail<TypeMismatch>(
          name_, "bcast",
          "asked for a '" + detail::readable_name<T>() + "' but the root (rank " +
              std::to_string(root) + ") sent " +
              (sent_as == 0 ? std::string("a smaller value") : detail::lookup_type_name(sent_as)) +
              "; every rank must pass the same type here (do all ranks run the same program and "
              "create the same objects in the same order?)");
    std::memcpy(static_cast<void*>(&value), image.data(), sizeof(T));
    return value;
  } else if constexpr (detail::wire_kind<T>() == detail::WireKind::raw) {
    bcast_bytes(&value, sizeof(T), root, "bcast");
    return value;
  } else {
    // A header (size in bytes, type fingerprint) goes first: a rank that expects another type
    // than the root sent takes the bytes off the wire and throws TypeMismatch, never misreads.
    constexpr bool sequence = detail::raw_sequence<T>::value;
    const int fingerprint = detail::fingerprint_of<T>();
    std::vector<char> image;
    std::uint64_t header[2] = {0, static_cast<std::uint64_t>(fingerprint)};
    if (rank_ == root) {
      if constexpr (sequence) {
        header[0] = value.size() * sizeof(typename detail::raw_sequence<T>::element);
      } else {
        detail::serialize_into(image, value);
        header[0] = image.size();
      }
    }
    bcast_bytes(header, sizeof header, root, "bcast");
    const auto bytes = static_cast<std::size_t>(header[0]);
    if (rank_ != root && static_cast<int>(header[1]) != fingerprint) {
      image.resize(bytes);
      bcast_bytes(image.data(), bytes, root, "bcast");
      detail::fail<TypeMismatch>(
          name_, "bcast",
          "asked for a '" + detail::readable_name<T>() + "' but the root (rank " +
              std::to_string(root) + ") sent " +
              detail::lookup_type_name(static_cast<int>(header[1])) +
              "; every rank must pass the same type here (do all ranks run the same program and "
              "create the same objects in the same order?)");
    }
    if constexpr (sequence) {
      if (rank_ != root) value.resize(bytes / sizeof(typename detail::raw_sequence<T>::element));
      bcast_bytes(value.data(), bytes, root, "bcast");
      return value;
    } else {
      if (rank_ != root) image.resize(bytes);
      bcast_bytes(image.data(), bytes, root, "bcast");
      return rank_ == root ? std::move(value) : detail::decode_from<T>(image, name_, "bcast", root);
    }
  }
}

template <class T>
std::vector<T> Communicator::decode_all(const std::vector<char>& bytes,
                                        const std::vector<int>& counts, std::string_view op) const {
  std::vector<T> out;
  out.reserve(counts.size());
  std::size_t offset = 0;
  for (std::size_t r = 0; r < counts.size(); ++r) {
    const auto c = static_cast<std::size_t>(counts[r]);
    out.push_back(detail::decode_from<T>(std::span<const char>(bytes).subspan(offset, c), name_, op,
                                         static_cast<int>(r)));
    offset += c;
  }
  return out;
}

template <class T>
T Communicator::scatter(const std::vector<T>& values, int root) const {
  check_rank(root, "scatter");
  if (rank_ == root && values.size() != static_cast<std::size_t>(size_))
    fail_scatter_at_root(root, "scatter",
                         "needs exactly one value per rank (" + std::to_string(size_) + "), got " +
                             std::to_string(values.size()) +
                             "; use scatterv() to split a range into blocks");
  std::vector<char> all;
  std::vector<int> counts;
  if (rank_ == root) {
    counts.reserve(values.size());
    for (const auto& v : values) {
      const auto before = all.size();
      detail::encode(all, v);
      counts.push_back(static_cast<int>(all.size() - before));
    }
  }
  const auto mine = scatterv_bytes(all, counts, root, "scatter");
  return detail::decode_from<T>(mine, name_, "scatter", root);
}

template <class E>
std::vector<E> Communicator::scatterv(std::span<const E> values, int root) const {
  check_rank(root, "scatterv");
  std::uint64_t n = rank_ == root ? values.size() : 0;
  bcast_bytes(&n, sizeof n, root, "scatterv");
  std::vector<int> counts(static_cast<std::size_t>(size_));
  const auto p = static_cast<std::uint64_t>(size_);
  for (std::uint64_t r = 0; r < p; ++r) counts[r] = static_cast<int>(n / p + (r < n % p ? 1 : 0));
  return scatterv(values, std::span<const int>(counts), root);
}

template <class E>
std::vector<E> Communicator::scatterv(std::span<const E> values, std::span<const int> counts,
                                      int root) const {
  static_assert(detail::trivially_sendable<E>, "scatterv moves trivially copyable elements only; "
                                               "use scatter() with one serializable value per rank");
  check_rank(root, "scatterv");
  std::vector<int> byte_counts;
  if (rank_ == root) {
    if (counts.size() != static_cast<std::size_t>(size_))
      fail_scatter_at_root(root, "scatterv",
                           "needs one count per rank (" + std::to_string(size_) + "), got " +
                               std::to_string(counts.size()));
    std::size_t total = 0;
    for (int c : counts) {
      if (c < 0)
        fail_scatter_at_root(root, "scatterv",
                             "counts must not be negative (got " + std::to_string(c) + ")");
      total += static_cast<std::size_t>(c);
      byte_counts.push_back(static_cast<int>(static_cast<std::size_t>(c) * sizeof(E)));
    }
    if (total != values.size())
      fail_scatter_at_root(root, "scatterv",
                           "counts add up to " + std::to_string(total) + " but " +
                               std::to_string(values.size()) + " values were given");
  }
  const auto bytes = scatterv_bytes(
      {reinterpret_cast<const char*>(values.data()), values.size_bytes()}, byte_counts, root,
      "scatterv");
  std::vector<E> out(bytes.size() / sizeof(E));
  if (!bytes.empty()) std::memcpy(static_cast<void*>(out.data()), bytes.data(), bytes.size());
  return out;
}

template <class T>
std::vector<T> Communicator::gather(const T& value, int root) const {
  check_rank(root, "gather");
  std::vector<char> mine;
  detail::encode(mine, value);
  std::vector<int> counts;
  auto all = gatherv_bytes(mine, detail::fingerprint_of<T>(), root, false, counts, "gather");
  if (rank_ != root) return {};
  return decode_all<T>(all, counts, "gather");
}

template <class E>
std::vector<E> Communicator::gatherv(std::span<const E> values, int root) const {
  static_assert(detail::trivially_sendable<E>, "gatherv moves trivially copyable elements only; "
                                               "use gather() for serializable values");
  check_rank(root, "gatherv");
  std::vector<int> counts;
  auto all =
      gatherv_bytes({reinterpret_cast<const char*>(values.data()), values.size_bytes()},
                    detail::fingerprint_of<std::vector<E>>(), root, false, counts, "gatherv");
  std::vector<E> out(all.size() / sizeof(E));
  if (!all.empty()) std::memcpy(static_cast<void*>(out.data()), all.data(), all.size());
  return out;
}

template <class T>
std::vector<T> Communicator::allgather(const T& value) const {
  std::vector<char> mine;
  detail::encode(mine, value);
  std::vector<int> counts;
  auto all = gatherv_bytes(mine, detail::fingerprint_of<T>(), 0, true, counts, "allgather");
  return decode_all<T>(all, counts, "allgather");
}

template <class E>
std::vector<E> Communicator::allgatherv(std::span<const E> values) const {
  static_assert(detail::trivially_sendable<E>, "allgatherv moves trivially copyable elements only; "
                                               "use allgather() for serializable values");
  std::vector<int> counts;
  auto all = gatherv_bytes({reinterpret_cast<const char*>(values.data()), values.size_bytes()},
                           detail::fingerprint_of<std::vector<E>>(), 0, true, counts, "allgatherv");
  std::vector<E> out(all.size() / sizeof(E));
  if (!all.empty()) std::memcpy(static_cast<void*>(out.data()), all.data(), all.size());
  return out;
}

template <class T, class Op>
T Communicator::reduce(const T& value, Op op, int root) const {
  check_rank(root, "reduce");
  if constexpr (detail::wire_kind<T>() == detail::WireKind::raw) {
    const MPI_Op builtin = detail::builtin_op<Op, T>();
    if (builtin != MPI_OP_NULL) {
      T out = value;
      reduce_raw(&value, &out, 1, detail::builtin_datatype<T>(), builtin, root, false, "reduce");
      return out;
    }
    if constexpr (std::is_empty_v<Op> && std::is_default_constructible_v<Op>) {
      T out = value;
      reduce_raw(&value, &out, 1, detail::block_datatype<T>(), detail::user_op<T, Op>(), root,
                 false, "reduce");
      return out;
    }
  }
  auto all = gather(value, root);
  if (rank_ != root) return value;
  T acc = std::move(all.front());
  for (std::size_t i = 1; i < all.size(); ++i) acc = op(std::move(acc), all[i]);
  return acc;
}

template <class T, class Op>
T Communicator::allreduce(const T& value, Op op) const {
  if constexpr (detail::wire_kind<T>() == detail::WireKind::raw) {
    const MPI_Op builtin = detail::builtin_op<Op, T>();
    if (builtin != MPI_OP_NULL) {
      T out = value;
      reduce_raw(&value, &out, 1, detail::builtin_datatype<T>(), builtin, 0, true, "allreduce");
      return out;
    }
    if constexpr (std::is_empty_v<Op> && std::is_default_constructible_v<Op>) {
      T out = value;
      reduce_raw(&value, &out, 1, detail::block_datatype<T>(), detail::user_op<T, Op>(), 0, true,
                 "allreduce");
      return out;
    }
  }
  // Other types and stateful operations: every rank gathers every value and folds them in
  // rank order, so a value of another type, or an operation that throws, fails on every rank
  // alike instead of leaving the others waiting for the root's result.
  std::vector<char> mine;
  detail::encode(mine, value);
  std::vector<int> counts;
  const auto bytes = gatherv_bytes(mine, detail::fingerprint_of<T>(), 0, true, counts, "allreduce");
  auto all = decode_all<T>(bytes, counts, "allreduce");
  T acc = std::move(all.front());
  for (std::size_t i = 1; i < all.size(); ++i) acc = op(std::move(acc), all[i]);
  return acc;
}

template <class E, class Op>
std::vector<std::remove_const_t<E>> Communicator::reduce_elements(std::span<E> values, Op, int root,
                                                                  bool all,
                                                                  std::string_view operation) const {
  using V = std::remove_const_t<E>;
  static_assert(detail::trivially_sendable<V>, "element-wise reductions need trivially copyable elements");
  check_rank(root, operation);
  const std::size_t n = agree_on_length(values.size(), operation);
  std::vector<V> out(values.begin(), values.end());
  MPI_Op mop = detail::builtin_op<Op, V>();
  MPI_Datatype type = detail::builtin_datatype<V>();
  if (mop == MPI_OP_NULL) {
    if constexpr (std::is_empty_v<Op> && std::is_default_constructible_v<Op>) {
      mop = detail::user_op<V, Op>();
      type = detail::block_datatype<V>();
    } else {
      static_assert(std::is_empty_v<Op>, "element-wise reductions need a stateless function object");
    }
  }
  reduce_raw(values.data(), out.data(), static_cast<int>(n), type, mop, root, all, operation);
  return out;
}

template <class E, class Op>
std::vector<std::remove_const_t<E>> Communicator::reduce(std::span<E> values, Op op, int root) const {
  return reduce_elements(values, std::move(op), root, false, "reduce");
}

template <class E, class Op>
std::vector<std::remove_const_t<E>> Communicator::allreduce(std::span<E> values, Op op) const {
  return reduce_elements(values, std::move(op), 0, true, "allreduce");
}

}  // namespace mpx
