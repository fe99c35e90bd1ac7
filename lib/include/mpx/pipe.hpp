// mpx/pipe.hpp: Python's multiprocessing.Pipe between two ranks.
//
//   // every rank runs this line (creation is collective), each end belongs to one rank:
//   auto [left, right] = mpx::Pipe(/*rank of left=*/0, /*rank of right=*/1);
//   if (world.rank() == 0) left.send(42);
//   if (world.rank() == 1) int x = right.recv<int>();
//
// As in Python, Pipe(duplex=true) gives two ends that both send and receive; with
// duplex=false the first end only receives and the second only sends. recv() on an end whose
// peer closed, once every message sent before the close has been received, throws
// mpx::EOFError (Python's EOFError). Each pipe owns private communicators, so its messages
// never mix with any other traffic. Both ends may belong to the same rank (threads of one
// rank talking to each other).
#pragma once

#include <array>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "mpx/communicator.hpp"
#include "mpx/environment.hpp"

namespace mpx {

namespace detail {
struct PipeShared;
}

/// One end of a Pipe (Python's multiprocessing.connection.Connection). Move-only; belongs to
/// one rank, and every call on another rank is a UsageError. Destroying an open end closes it.
class Connection {
 public:
  /// An end that refers to no pipe.
  Connection() = default;
  Connection(Connection&&) noexcept;
  Connection& operator=(Connection&&) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  /// Closes the end if this rank owns it and it is still open (never throws).
  ~Connection();

  /// Sends `value` to the other end (remote: returns once the value is handed to MPI;
  /// large values wait until the peer receives them).
  template <class T>
  void send(const T& value);

  /// Receives the next value, which must have been sent as a T (remote). Throws EOFError
  /// when the peer closed and nothing is left, TypeMismatch (keeping the message for a
  /// recv with the right type) when the next value has another type.
  template <class T>
  T recv();

  /// Receives the next value, which must have been sent as a contiguous sequence of E
  /// (std::vector<E>, std::string, std::span<E>), straight into `out` without allocating:
  /// Python's recv_bytes_into. Returns the number of elements received (remote). Throws
  /// EOFError and TypeMismatch as recv() does, and UsageError when the value does not fit in
  /// `out` (the value is kept for a recv() or a larger recv_into()).
  template <class E>
  std::size_t recv_into(std::span<E> out);

  /// True when recv() would not block: a value, or the peer's close, is waiting (remote:
  /// waits up to `timeout`, which must not be negative).
  template <class Rep = long, class Period = std::ratio<1>>
  bool poll(std::chrono::duration<Rep, Period> timeout = std::chrono::seconds(0));

  /// Closes this end; the peer's recv() ends in EOFError once it has drained what was sent
  /// (local). Closing twice is harmless.
  void close();

  /// True after close() (local).
  [[nodiscard]] bool closed() const noexcept { return closed_; }
  /// True if this end can receive (local).
  [[nodiscard]] bool readable() const noexcept { return readable_; }
  /// True if this end can send (local).
  [[nodiscard]] bool writable() const noexcept { return writable_; }
  /// The rank this end belongs to (local).
  [[nodiscard]] int rank() const noexcept { return owner_; }
  /// The rank of the other end (local).
  [[nodiscard]] int peer() const noexcept { return peer_; }
  /// "Pipe#N end 1" or "Pipe#N end 2" (local).
  [[nodiscard]] const std::string& name() const noexcept { return name_; }

 private:
  friend std::pair<Connection, Connection> Pipe(int, int, bool, const Communicator&);
  Connection(std::shared_ptr<detail::PipeShared> shared, int end, int owner, int peer, bool readable,
             bool writable);
  void require(bool want_read, bool want_write, std::string_view operation) const;
  void close_noexcept() noexcept;
  [[noreturn]] void throw_stashed_mismatch(std::string_view expected,
                                           std::string_view operation) const;
  [[nodiscard]] const Communicator& in() const;
  [[nodiscard]] const Communicator& out() const;
  [[nodiscard]] const Communicator& in_bulk() const;
  [[nodiscard]] const Communicator& out_bulk() const;
  [[noreturn]] void throw_eof(std::string_view operation) const;

  // The next message of the pipe. Every message (values, announcements of large values, the
  // close marker) travels in order on in(); a value up to detail::pipe_inline_bytes arrives
  // whole in inbox_, a larger one is announced there and its bytes wait on in_bulk().
  struct Arrival {
    int fingerprint = 0;
    std::size_t bytes = 0;
    bool announced = false;
  };
  // Waits for the next message, into a receive posted before it arrives (remote). The close
  // marker sets peer_closed_ and gives nullopt.
  std::optional<Arrival> next_arrival(std::string_view operation);
  // Copies (inline) or receives (announced) the arrival's bytes into `dest`, which has room
  // for them (remote for announced values).
  void take(const Arrival& arrival, void* dest, std::string_view operation);
  // Keeps the arrival in stash_ for a later recv (remote for announced values).
  void keep(const Arrival& arrival, std::string_view operation);
  // Sends raw bytes as a value of `fingerprint`; large values are announced, then sent on
  // the bulk communicator, waiting hot, then backing off.
  void send_bytes(const void* data, std::size_t bytes, int fingerprint);
  [[noreturn]] void throw_too_small(std::size_t need, std::size_t room) const;
  [[noreturn]] void throw_bad_size(std::size_t bytes, std::size_t element, std::string_view type) const;

  struct Stash {
    int fingerprint = 0;
    std::vector<char> bytes;
  };

  std::shared_ptr<detail::PipeShared> shared_;
  int end_ = 0;  // 1 or 2
  int owner_ = -1;
  int peer_ = -1;
  bool readable_ = false;
  bool writable_ = false;
  bool closed_ = false;
  bool peer_closed_ = false;
  std::optional<Stash> stash_;
  std::vector<char> inbox_;  // receives small values and announcements (readable ends)
  std::string name_;
};

/// Creates a pipe whose first end belongs to `rank1` and second to `rank2` (collective over
/// `comm`: every rank calls it, in the same order as other mpx objects). With
/// duplex=false the first end only receives and the second only sends, as in Python.
std::pair<Connection, Connection> Pipe(int rank1, int rank2, bool duplex = true,
                                       const Communicator& comm = Communicator::world());

// ---- implementation -------------------------------------------------------------------------

namespace detail {
/// Tags on a pipe's private communicators.
inline constexpr int pipe_data_tag = 0;
inline constexpr int pipe_close_tag = 1;
inline constexpr int pipe_announce_tag = 2;  // a large value follows on the bulk communicator
/// Values up to this size travel whole on the ordered communicator (inside the eager limit
/// of shared memory and TCP); larger ones are announced there and sent on the bulk one.
inline constexpr std::size_t pipe_inline_bytes = 4000;
/// MPI tag of the close marker (fingerprint 0 is never used by typed data).
inline int pipe_close_wire_tag() noexcept { return wire_tag(pipe_close_tag, 0); }
}  // namespace detail

template <class T>
void Connection::send(const T& value) {
  detail::check_sendable<T>();
  require(false, true, "send");
  const int fp = detail::fingerprint_of<T>();
  if constexpr (detail::send_sequence<T>::value) {
    send_bytes(std::data(value), std::size(value) * sizeof(typename detail::send_sequence<T>::element), fp);
  } else if constexpr (detail::wire_kind<T>() == detail::WireKind::raw) {
    send_bytes(&value, sizeof(T), fp);
  } else {
    std::vector<char> buffer;
    detail::serialize_into(buffer, value);
    send_bytes(buffer.data(), buffer.size(), fp);
  }
}

template <class T>
T Connection::recv() {
  static_assert(!detail::send_sequence<T>::value || detail::raw_sequence<T>::value,
                "receive a sequence as std::vector<E> or std::string, or into a std::span with "
                "recv_into()");
  require(true, false, "recv");
  const int fp = detail::fingerprint_of<T>();
  if (stash_) {  // a value an earlier recv with the wrong type left here
    if (stash_->fingerprint != fp) throw_stashed_mismatch(detail::readable_name<T>(), "recv");
    auto bytes = std::move(stash_->bytes);
    stash_.reset();
    return detail::decode<T>(bytes);
  }
  if (peer_closed_) throw_eof("recv");
  const auto arrival = next_arrival("recv");
  if (!arrival) throw_eof("recv");
  if (arrival->fingerprint != fp && detail::fingerprints_enabled()) {
    keep(*arrival, "recv");
    throw_stashed_mismatch(detail::readable_name<T>(), "recv");
  }
  const std::size_t bytes = arrival->bytes;
  if constexpr (detail::wire_kind<T>() == detail::WireKind::raw) {
    if (bytes != sizeof(T)) {
      keep(*arrival, "recv");
      throw_bad_size(bytes, sizeof(T), detail::readable_name<T>());
    }
    std::array<std::byte, sizeof(T)> storage;
    take(*arrival, storage.data(), "recv");
    return std::bit_cast<T>(storage);
  } else if constexpr (detail::raw_sequence<T>::value) {
    using E = typename detail::raw_sequence<T>::element;
    if (bytes % sizeof(E) != 0) {
      keep(*arrival, "recv");
      throw_bad_size(bytes, sizeof(E), detail::readable_name<T>());
    }
    T value;
    value.resize(bytes / sizeof(E));
    take(*arrival, value.data(), "recv");
    return value;
  } else {
    std::vector<char> buffer;
    std::span<const char> image(inbox_.data(), bytes);
    if (arrival->announced) {
      buffer.resize(bytes);
      take(*arrival, buffer.data(), "recv");
      image = buffer;
    }
    try {
      return detail::decode<T>(image);
    } catch (const std::exception& e) {
      detail::fail<TypeMismatch>(name_, "recv",
                                 "could not rebuild a " + detail::readable_name<T>() + " from " +
                                     std::to_string(bytes) + " received bytes (" + e.what() +
                                     "); the sender's type differs");
    }
  }
}

template <class E>
std::size_t Connection::recv_into(std::span<E> out) {
  static_assert(detail::trivially_sendable<E> && !std::is_const_v<E>,
                "recv_into needs a writable span of trivially copyable elements");
  require(true, false, "recv_into");
  const int fp = detail::fingerprint_of<std::vector<E>>();
  if (stash_) {
    if (stash_->fingerprint != fp)
      throw_stashed_mismatch(detail::readable_name<std::vector<E>>(), "recv_into");
    if (stash_->bytes.size() > out.size_bytes()) throw_too_small(stash_->bytes.size(), out.size_bytes());
    std::memcpy(static_cast<void*>(out.data()), stash_->bytes.data(), stash_->bytes.size());
    const std::size_t n = stash_->bytes.size() / sizeof(E);
    stash_.reset();
    return n;
  }
  if (peer_closed_) throw_eof("recv_into");
  const auto arrival = next_arrival("recv_into");
  if (!arrival) throw_eof("recv_into");
  if (arrival->fingerprint != fp && detail::fingerprints_enabled()) {
    keep(*arrival, "recv_into");
    throw_stashed_mismatch(detail::readable_name<std::vector<E>>(), "recv_into");
  }
  if (arrival->bytes > out.size_bytes()) {  // keep the value, as a wrong-type recv does
    keep(*arrival, "recv_into");
    throw_too_small(arrival->bytes, out.size_bytes());
  }
  take(*arrival, out.data(), "recv_into");
  return arrival->bytes / sizeof(E);
}

template <class Rep, class Period>
bool Connection::poll(std::chrono::duration<Rep, Period> timeout) {
  require(true, false, "poll");
  const auto deadline = detail::deadline_after(timeout, name_, "poll");
  if (stash_ || peer_closed_) return true;
  return detail::wait_until(
      [&] {
        int found = 0;
        MPX_CHECK_MPI(MPI_Iprobe(peer_, MPI_ANY_TAG, in().native(), &found, MPI_STATUS_IGNORE), name_,
                      "poll");
        return found != 0;
      },
      deadline, {name_, "poll", peer_, in().native()});
}

}  // namespace mpx
