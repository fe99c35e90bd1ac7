// mpx/shared.hpp: Python's multiprocessing.Value and multiprocessing.Array for the ranks of
// an MPI job.
//
//   Python                                   C++ (every rank runs the line: collective)
//   counter = Value('i', 0)                  mpx::Value<int> counter(0);
//   with counter.get_lock():                 { std::lock_guard g(counter.get_lock());
//       counter.value += 1                     counter.store(counter.load() + 1); }
//                                            counter.fetch_add(1);   // atomic, no lock needed
//   arr = Array('f', 8)                      mpx::Array<float> arr(8);
//   arr[i] = x                               arr[i] = x;
//   print(arr[:])                            arr.slice()   // std::vector<float>
//   arr[2:4] = [1.0, 2.0]                    arr.assign(2, {1.0f, 2.0f});
//
// Where the state lives:
//   * all ranks on one node: in an MPI shared-memory window (MPI_Win_allocate_shared) that
//     every rank reads and writes directly with C++ atomics: a fetch_add is one CPU
//     instruction, no message;
//   * ranks on several nodes (or MPX_NO_SHARED_MEMORY=1): on the host rank (rank 0 of the
//     communicator), whose progress thread serves loads, stores, fetch_adds and
//     compare-exchanges sent by the other ranks.
// Both give the same guarantees: every single-element operation (load, store, fetch_add,
// compare_exchange, exchange) is atomic. A multi-element operation (slice, assign) is not
// atomic as a whole: hold get_lock() around it (Python's rule too) when others write.
// T must be trivially copyable; the atomic operations need a lock-free T (every integer and
// floating type but long double, and small trivially copyable structs); load and store of
// other types are plain copies that another rank may see half written (use get_lock()).
//
// Lifetime: every rank constructs the object in the same order (as every mpx object) and
// destroys it when it is done; on the cross-node path the host keeps serving until every
// rank has destroyed its handle.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "mpx/communicator.hpp"
#include "mpx/detail/serialize.hpp"
#include "mpx/detail/shared_segment.hpp"
#include "mpx/lock.hpp"

namespace mpx {

/// Options of a Value or Array (Python: Value(typecode, init, lock=True)).
struct SharedOptions {
  /// Create the Lock returned by get_lock() (Python's lock=True). Without it, get_lock()
  /// is a UsageError and construction is a little cheaper.
  bool lock = true;
};

namespace detail {

/// T can be used with std::atomic_ref in memory shared by processes: lock-free (a lock-based
/// atomic would lock a mutex private to each process) and aligned wherever a T sits (the
/// elements start at a page boundary, so a size that is a multiple of the alignment the
/// atomic needs keeps every element aligned).
template <class T>
constexpr bool process_atomic() {
  if constexpr (!std::is_trivially_copyable_v<T>) {
    return false;
  } else {
    return std::atomic_ref<T>::is_always_lock_free &&
           sizeof(T) % std::atomic_ref<T>::required_alignment == 0;
  }
}

/// Types fetch_add works on: arithmetic, not bool, and process_atomic.
template <class T>
constexpr bool addable() {
  return std::is_arithmetic_v<T> && !std::is_same_v<T, bool> && process_atomic<T>();
}

/// Adds the T at `operand` to the T at `target` (both possibly unaligned), wrapping integers.
template <class T>
void add_in_place(void* target, const void* operand) noexcept {
  T a;
  T b;
  std::memcpy(&a, target, sizeof(T));
  std::memcpy(&b, operand, sizeof(T));
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    a = static_cast<T>(static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
  } else {
    a = static_cast<T>(a + b);
  }
  std::memcpy(target, &a, sizeof(T));
}

/// What the type-independent core needs to know about the element type.
struct CellType {
  std::size_t size = 0;
  std::size_t align = 0;
  int fingerprint = 0;
  std::string name;
  void (*add)(void*, const void*) noexcept = nullptr;  // null when T has no fetch_add
};

class HostedState;

/// The type-independent part of Value and Array: creation (checks, shared segment or
/// hosted state, lock) and the byte-level operations of the served (cross-node) path.
class SharedCells {
 public:
  /// Collective over `comm`. `kind` is "Value" or "Array"; `init` holds `count` elements
  /// (rank 0's are used) or is null for zeros.
  SharedCells(std::string_view kind, CellType type, std::size_t count, const void* init,
              const Communicator& comm, SharedOptions options);
  ~SharedCells();
  SharedCells(const SharedCells&) = delete;
  SharedCells& operator=(const SharedCells&) = delete;

  /// The elements in shared memory, or null on the served path (local).
  [[nodiscard]] std::byte* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t count() const noexcept { return count_; }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] const Communicator& comm() const noexcept { return *comm_; }
  Lock& lock(std::string_view operation);

  /// Throws UsageError unless index < count (local).
  void check_index(std::size_t index, std::string_view operation) const;
  /// Throws UsageError unless begin <= end <= count (local).
  void check_range(std::size_t begin, std::size_t end, std::string_view operation) const;

  // Served path (data() == nullptr): each call is one atomic request to the host.
  void load(std::size_t index, std::size_t n, void* out);
  void store(std::size_t index, std::size_t n, const void* in);
  void fetch_add(std::size_t index, const void* operand, void* old);
  void exchange(std::size_t index, const void* desired, void* old);
  /// Byte-wise compare-exchange; on failure writes the current value into `expected`.
  bool compare_exchange(std::size_t index, void* expected, const void* desired);

 private:
  void handle(std::span<const char> request, std::vector<char>& reply);

  std::string name_;
  CellType type_;
  std::size_t count_ = 0;
  std::unique_ptr<Communicator> comm_;
  std::unique_ptr<SharedSegment> segment_;
  std::byte* data_ = nullptr;
  std::vector<std::byte> hosted_;  // the host's copy on the served path
  std::unique_ptr<HostedState> state_;
  std::unique_ptr<Lock> lock_;
};

/// The typed operations shared by Value and Array.
template <class T>
class SharedStore {
  static_assert(std::is_trivially_copyable_v<T> && !std::is_pointer_v<T>,
                "mpx::Value<T> and mpx::Array<T> hold trivially copyable T (numbers, plain structs "
                "of numbers, std::array); a pointer would mean nothing on another rank. For "
                "strings, maps and other types use mpx::Dict");

 public:
  SharedStore(std::string_view kind, std::size_t count, const T* init, const Communicator& comm,
              SharedOptions options)
      : cells_(std::make_unique<SharedCells>(kind, cell_type(), count, init, comm, options)),
        is_value_(kind == "Value") {}

  /// Number of elements (0 once moved from).
  [[nodiscard]] std::size_t count() const noexcept { return cells_ ? cells_->count() : 0; }

  T load(std::size_t i) const {
    if (std::byte* d = cells("load").data()) {
      T* p = reinterpret_cast<T*>(d) + i;
      if constexpr (process_atomic<T>()) {
        return std::atomic_ref<T>(*p).load();
      } else {
        T v;
        std::memcpy(static_cast<void*>(&v), p, sizeof(T));
        return v;
      }
    }
    T v;
    cells_->load(i, 1, &v);
    return v;
  }

  void store(std::size_t i, const T& v) {
    if (std::byte* d = cells("store").data()) {
      T* p = reinterpret_cast<T*>(d) + i;
      if constexpr (process_atomic<T>()) {
        std::atomic_ref<T>(*p).store(v);
      } else {
        std::memcpy(static_cast<void*>(p), &v, sizeof(T));
      }
      return;
    }
    cells_->store(i, 1, &v);
  }

  T fetch_add(std::size_t i, T delta) {
    if (std::byte* d = cells("fetch_add").data())
      return std::atomic_ref<T>(reinterpret_cast<T*>(d)[i]).fetch_add(delta);
    T old;
    cells_->fetch_add(i, &delta, &old);
    return old;
  }

  T exchange(std::size_t i, T desired) {
    if (std::byte* d = cells("exchange").data())
      return std::atomic_ref<T>(reinterpret_cast<T*>(d)[i]).exchange(desired);
    T old;
    cells_->exchange(i, &desired, &old);
    return old;
  }

  bool compare_exchange(std::size_t i, T& expected, T desired) {
    if (std::byte* d = cells("compare_exchange").data())
      return std::atomic_ref<T>(reinterpret_cast<T*>(d)[i])
          .compare_exchange_strong(expected, desired);
    return cells_->compare_exchange(i, &expected, &desired);
  }

  std::vector<T> slice(std::size_t begin, std::size_t end) const {
    std::vector<T> out(end - begin);
    if (cells("slice").data()) {
      for (std::size_t k = begin; k < end; ++k) out[k - begin] = load(k);
    } else if (!out.empty()) {
      cells_->load(begin, out.size(), out.data());
    }
    return out;
  }

  void assign(std::size_t begin, std::span<const T> values) {
    if (cells("assign").data()) {
      for (std::size_t k = 0; k < values.size(); ++k) store(begin + k, values[k]);
    } else if (!values.empty()) {
      cells_->store(begin, values.size(), values.data());
    }
  }

  /// The cells, for `operation`; UsageError once moved from.
  [[nodiscard]] SharedCells& cells(std::string_view operation) const {
    if (!cells_) [[unlikely]]
      moved_from(operation);
    return *cells_;
  }
  /// "Value#N" / "Array#N", or "Value(moved-from)" (local).
  [[nodiscard]] const std::string& name() const noexcept {
    static const std::string moved_value = "Value(moved-from)";
    static const std::string moved_array = "Array(moved-from)";
    return cells_ ? cells_->name() : is_value_ ? moved_value : moved_array;
  }
  /// True when the elements are in node-shared memory (false once moved from).
  [[nodiscard]] bool shared() const noexcept { return cells_ && cells_->data(); }

 private:
  static CellType cell_type() {
    CellType t;
    t.size = sizeof(T);
    t.align = alignof(T);
    t.fingerprint = fingerprint_of<T>();
    t.name = readable_name<T>();
    if constexpr (addable<T>()) t.add = &add_in_place<T>;
    return t;
  }
  [[noreturn]] void moved_from(std::string_view operation) const {
    fail(name(), operation,
         std::string("this ") + (is_value_ ? "value" : "array") +
             " was moved from; use the object it was moved to");
  }
  std::unique_ptr<SharedCells> cells_;
  bool is_value_ = true;
};

}  // namespace detail

/// A single T shared by every rank of a communicator: Python's multiprocessing.Value. Move-only
/// (every call on a moved-from one throws UsageError); every operation is atomic (see the file
/// comment for where the value lives).
template <class T>
class Value {
 public:
  /// Creates the value (collective over `comm`: every rank calls it, in the same order as
  /// other mpx objects). Rank 0's `initial` is used. Python: Value('i', 0).
  explicit Value(T initial = T{}, const Communicator& comm = Communicator::world(),
                 SharedOptions options = {})
      : store_("Value", 1, &initial, comm, options) {}
  /// Same, with options but on the world communicator (collective).
  Value(T initial, SharedOptions options) : Value(initial, Communicator::world(), options) {}

  /// The current value (local on one node; remote otherwise). Python: v.value.
  [[nodiscard]] T load() const { return store_.load(0); }
  /// Python's spelling of load().
  [[nodiscard]] T value() const { return load(); }
  /// Same as load().
  operator T() const { return load(); }  // NOLINT(google-explicit-constructor): reads like Python
  /// Replaces the value (local on one node; remote otherwise). Python: v.value = x.
  void store(const T& v) { store_.store(0, v); }
  /// Same as store(); returns *this.
  Value& operator=(const T& v) {
    store(v);
    return *this;
  }
  /// Atomically adds `delta`; returns the previous value (local on one node; remote
  /// otherwise).
  T fetch_add(T delta) requires(detail::addable<T>()) { return store_.fetch_add(0, delta); }
  /// Atomically subtracts `delta`; returns the previous value.
  T fetch_sub(T delta) requires(detail::addable<T>()) {
    return store_.fetch_add(0, static_cast<T>(-delta));
  }
  /// Atomically replaces the value; returns the previous one.
  T exchange(T desired) {
    static_assert(
        detail::process_atomic<T>(),
        "Value::exchange needs a lock-free element type (integers, floating types but long double, "
        "small plain structs); for other types hold get_lock() and use load()/store()");
    return store_.exchange(0, desired);
  }
  /// If the value equals `expected` (bit for bit), replaces it by `desired` and returns true;
  /// otherwise writes the current value into `expected` and returns false (as
  /// std::atomic::compare_exchange_strong).
  bool compare_exchange(T& expected, T desired) {
    static_assert(
        detail::process_atomic<T>(),
        "Value::compare_exchange needs a lock-free element type (integers, floating types but long "
        "double, small plain structs); for other types hold get_lock() and use load()/store()");
    return store_.compare_exchange(0, expected, desired);
  }

  /// The Lock that guards the value for multi-step updates (Python: v.get_lock()). It is a
  /// BasicLockable mpx::Lock: std::lock_guard g(v.get_lock()); (local to get; acquiring it is
  /// remote). UsageError if the value was created with SharedOptions{.lock = false}.
  Lock& get_lock() { return store_.cells("get_lock").lock("get_lock"); }

  /// True when the value lives in node-shared memory (local).
  [[nodiscard]] bool uses_shared_memory() const noexcept { return store_.shared(); }
  /// "Value#N", as used in error messages (local).
  [[nodiscard]] const std::string& name() const noexcept { return store_.name(); }

 private:
  detail::SharedStore<T> store_;
};

template <class T>
class Array;

/// One element of an Array: reads and writes go to the shared element (local handle).
template <class T>
class ArrayElement {
 public:
  /// The element's value.
  operator T() const { return array_->load(index_); }  // NOLINT(google-explicit-constructor)
  /// Stores `v` into the element.
  ArrayElement& operator=(const T& v) {
    array_->store(index_, v);
    return *this;
  }
  /// Copies another element's value (not the handle).
  ArrayElement& operator=(const ArrayElement& other) { return *this = static_cast<T>(other); }
  ArrayElement(const ArrayElement&) = default;
  /// The element's value.
  [[nodiscard]] T load() const { return array_->load(index_); }
  /// Stores `v` into the element.
  void store(const T& v) { array_->store(index_, v); }
  /// Atomic add; returns the previous value.
  T fetch_add(T delta) requires(detail::addable<T>()) { return array_->fetch_add(index_, delta); }
  /// Atomic compare-exchange (see Array::compare_exchange).
  bool compare_exchange(T& expected, T desired) {
    return array_->compare_exchange(index_, expected, desired);
  }

 private:
  friend class Array<T>;
  ArrayElement(Array<T>* array, std::size_t index) : array_(array), index_(index) {}
  Array<T>* array_;
  std::size_t index_;
};

/// A fixed-length sequence of T shared by every rank: Python's multiprocessing.Array. Move-only
/// (every call on a moved-from one throws UsageError); single-element operations are atomic,
/// slices and assign are not atomic as a whole (hold get_lock()). Indexes out of range are a
/// UsageError.
template <class T>
class Array {
 public:
  /// `size` zero-initialised elements (collective). Python: Array('f', 8).
  explicit Array(std::size_t size, const Communicator& comm = Communicator::world(),
                 SharedOptions options = {})
      : store_("Array", size, nullptr, comm, options) {}
  /// Elements initialised from rank 0's `values` (collective; every rank must pass the
  /// same number of values). Python: Array('i', [1, 2, 3]).
  explicit Array(std::span<const T> values, const Communicator& comm = Communicator::world(),
                 SharedOptions options = {})
      : store_("Array", values.size(), values.data(), comm, options) {}
  /// Same from a vector (collective).
  explicit Array(const std::vector<T>& values, const Communicator& comm = Communicator::world(),
                 SharedOptions options = {})
      : Array(std::span<const T>(values), comm, options) {}
  /// Same from a braced list (collective).
  Array(std::initializer_list<T> values, const Communicator& comm = Communicator::world(),
        SharedOptions options = {})
      : Array(std::span<const T>(values.begin(), values.size()), comm, options) {}

  /// Number of elements (local). Python: len(arr).
  [[nodiscard]] std::size_t size() const noexcept { return store_.count(); }

  /// Element `i` (local on one node; remote otherwise).
  [[nodiscard]] T load(std::size_t i) const {
    store_.cells("load").check_index(i, "load");
    return store_.load(i);
  }
  /// Stores `v` into element `i`.
  void store(std::size_t i, const T& v) {
    store_.cells("store").check_index(i, "store");
    store_.store(i, v);
  }
  /// A handle to element `i` that reads and writes it: arr[i] = x; T x = arr[i];
  ArrayElement<T> operator[](std::size_t i) {
    store_.cells("operator[]").check_index(i, "operator[]");
    return ArrayElement<T>(this, i);
  }
  /// Element `i` (read only).
  T operator[](std::size_t i) const { return load(i); }

  /// Atomically adds `delta` to element `i`; returns its previous value.
  T fetch_add(std::size_t i, T delta) requires(detail::addable<T>()) {
    store_.cells("fetch_add").check_index(i, "fetch_add");
    return store_.fetch_add(i, delta);
  }
  /// Atomically subtracts `delta` from element `i`; returns its previous value.
  T fetch_sub(std::size_t i, T delta) requires(detail::addable<T>()) {
    store_.cells("fetch_sub").check_index(i, "fetch_sub");
    return store_.fetch_add(i, static_cast<T>(-delta));
  }
  /// Atomically replaces element `i`; returns its previous value.
  T exchange(std::size_t i, T desired) {
    static_assert(
        detail::process_atomic<T>(),
        "Array::exchange needs a lock-free element type (integers, floating types but long double, "
        "small plain structs); for other types hold get_lock() and use load()/store()");
    store_.cells("exchange").check_index(i, "exchange");
    return store_.exchange(i, desired);
  }
  /// Compare-exchange of element `i` (see Value::compare_exchange).
  bool compare_exchange(std::size_t i, T& expected, T desired) {
    static_assert(
        detail::process_atomic<T>(),
        "Array::compare_exchange needs a lock-free element type (integers, floating types but long "
        "double, small plain structs); for other types hold get_lock() and use load()/store()");
    store_.cells("compare_exchange").check_index(i, "compare_exchange");
    return store_.compare_exchange(i, expected, desired);
  }

  /// Elements [begin, end) as a vector; slice() is Python's arr[:] (not atomic as a whole).
  [[nodiscard]] std::vector<T> slice(std::size_t begin = 0, std::size_t end = npos) const {
    if (end == npos) end = size();
    store_.cells("slice").check_range(begin, end, "slice");
    return store_.slice(begin, end);
  }
  /// Writes `values` into elements begin, begin+1, ...: Python's arr[a:a+len(v)] = v
  /// (not atomic as a whole).
  void assign(std::size_t begin, std::span<const T> values) {
    store_.cells("assign").check_range(begin, begin + values.size(), "assign");
    store_.assign(begin, values);
  }
  /// Same from a braced list.
  void assign(std::size_t begin, std::initializer_list<T> values) {
    assign(begin, std::span<const T>(values.begin(), values.size()));
  }
  /// Replaces every element: Python's arr[:] = values (lengths must match).
  void assign(std::span<const T> values) {
    if (values.size() != size())
      detail::fail(name(), "assign",
                   "got " + std::to_string(values.size()) + " values for an array of " +
                       std::to_string(size()) + "; pass exactly size() values, or a start index");
    assign(0, values);
  }
  /// Same from a vector.
  void assign(const std::vector<T>& values) { assign(std::span<const T>(values)); }

  /// The Lock guarding the array for multi-element updates (Python: arr.get_lock()).
  Lock& get_lock() { return store_.cells("get_lock").lock("get_lock"); }
  /// True when the array lives in node-shared memory (local).
  [[nodiscard]] bool uses_shared_memory() const noexcept { return store_.shared(); }
  /// "Array#N" (local).
  [[nodiscard]] const std::string& name() const noexcept { return store_.name(); }

  /// "Up to the end" for slice().
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

 private:
  detail::SharedStore<T> store_;
};

}  // namespace mpx
