// mpx/list.hpp: Python's Manager().list() for the ranks of an MPI job.
//
//   Python                                   C++ (creation is collective: every rank runs it)
//   l = Manager().list()                     mpx::List<double> l;
//   l.append(x)                              l.append(x);
//   l.extend([x, y])                         l.extend({x, y});
//   l[i]        (IndexError if out of range) l.at(i)                 // mpx::IndexError
//   l[i] = x                                 l.set(i, x);
//   l.pop() / l.pop(0)                       l.pop() / l.pop(0)      // std::optional<T>
//   len(l)                                   l.size()
//   print(l) / list(l)                       l.values()              // std::vector<T> snapshot
//
// Like Dict, the list lives on the host rank (rank 0 of the communicator) and its progress
// thread serves the other ranks, on one node and across nodes alike. Every call is one
// atomic request: appends of concurrent ranks never get lost, a pop hands each element to
// exactly one caller, values() is a consistent snapshot. T is any type mpx can send.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "mpx/dict.hpp"

namespace mpx {

/// An index outside a List (Python's IndexError).
class IndexError : public Error {
 public:
  using Error::Error;
};

namespace detail {
/// Requests of a List, first byte of every request.
enum class ListOp : char {
  append = 1,
  extend = 2,
  get = 3,
  set = 4,
  pop = 5,
  size = 6,
  values = 7,
  clear = 8,
};
/// pop() without an index: the last element.
inline constexpr std::uint64_t list_last = ~std::uint64_t{0};
}  // namespace detail

/// A list shared by every rank: Python's multiprocessing.Manager().list(). Move-only (every
/// call on a moved-from one throws UsageError).
template <class T>
class List {
 public:
  /// Creates an empty list hosted on rank 0 of `comm` (collective over `comm`: every rank
  /// calls it, in the same order as other mpx objects).
  explicit List(const Communicator& comm = Communicator::world())
      : state_(std::make_unique<State>()) {
    State* s = state_.get();
    state_->core = std::make_unique<detail::DictCore>(
        "List", detail::fingerprint_of<T>(), 0, detail::readable_name<T>(), std::string(), comm,
        [s](std::span<const char> request, std::vector<char>& reply) {
          handle(*s, request, reply);
        });
  }

  /// Appends `value` at the end (remote). Python: l.append(value).
  void append(const T& value) {
    (void)core("append").call(detail::dict_request(detail::ListOp::append, value), "append");
  }
  /// Appends every element of `values`, in one atomic step (remote). Python: l.extend(values).
  void extend(const std::vector<T>& values) {
    (void)core("extend").call(detail::dict_request(detail::ListOp::extend, values), "extend");
  }
  /// Same from a braced list.
  void extend(std::initializer_list<T> values) { extend(std::vector<T>(values)); }

  /// Element `index`, or nothing when the list is shorter (remote).
  [[nodiscard]] std::optional<T> get(std::size_t index) const { return get_impl(index, "get"); }
  /// Element `index`; throws mpx::IndexError when the list is shorter (remote). Python: l[i].
  [[nodiscard]] T at(std::size_t index) const {
    auto v = get_impl(index, "at");
    if (!v) out_of_range("at", index);
    return std::move(*v);
  }
  /// Replaces element `index`; throws mpx::IndexError when the list is shorter (remote).
  /// Python: l[i] = value.
  void set(std::size_t index, const T& value) {
    const auto reply = core("set").call(
        detail::dict_request(detail::ListOp::set,
                             std::pair<std::uint64_t, T>(static_cast<std::uint64_t>(index), value)),
        "set");
    if (reply.payload().empty() || reply.payload()[0] == 0) out_of_range("set", index);
  }
  /// Removes and returns the last element, or nothing when the list is empty (remote).
  /// Python: l.pop().
  std::optional<T> pop() { return pop_at(detail::list_last, "pop"); }
  /// Removes and returns element `index`, or nothing when the list is shorter (remote).
  /// Python: l.pop(index).
  std::optional<T> pop(std::size_t index) {
    return pop_at(static_cast<std::uint64_t>(index), "pop");
  }
  /// Number of elements (remote). Python: len(l).
  [[nodiscard]] std::size_t size() const {
    const auto reply = core("size").call(detail::dict_request(detail::ListOp::size), "size");
    return detail::dict_decode<std::uint64_t>(reply.payload());
  }
  /// True when the list is empty (remote).
  [[nodiscard]] bool empty() const { return size() == 0; }
  /// A consistent copy of every element (remote). Python: list(l), print(l).
  [[nodiscard]] std::vector<T> values() const {
    const auto reply = core("values").call(detail::dict_request(detail::ListOp::values), "values");
    return detail::dict_decode<std::vector<T>>(reply.payload());
  }
  /// Removes every element (remote). Python: l.clear() / del l[:].
  void clear() { (void)core("clear").call(detail::dict_request(detail::ListOp::clear), "clear"); }

  /// "List#N", as used in error messages, or "List(moved-from)" (local).
  [[nodiscard]] const std::string& name() const noexcept {
    static const std::string moved = "List(moved-from)";
    return state_ ? state_->core->name() : moved;
  }

 private:
  struct State {
    std::vector<T> items;  // on the host only
    std::unique_ptr<detail::DictCore> core;
  };

  // Every call goes through core(operation): a moved-from List is a UsageError, not a crash.
  [[nodiscard]] detail::DictCore& core(std::string_view operation) const {
    if (!state_) [[unlikely]]
      detail::DictCore::moved_from("List", operation);
    return *state_->core;
  }

  std::optional<T> get_impl(std::size_t index, std::string_view operation) const {
    const auto reply = core(operation).call(
        detail::dict_request(detail::ListOp::get, static_cast<std::uint64_t>(index)), operation);
    const auto p = reply.payload();
    if (p.empty() || p[0] == 0) return std::nullopt;
    return detail::dict_decode<T>(p.subspan(1));
  }

  [[noreturn]] void out_of_range(std::string_view operation, std::size_t index) const {
    detail::fail<IndexError>(name(), operation,
                             "index " + std::to_string(index) +
                                 " is out of range (the list is shorter); check size(), or use "
                                 "get(index), which returns std::optional");
  }

  std::optional<T> pop_at(std::uint64_t index, std::string_view operation) {
    const auto reply =
        core(operation).call(detail::dict_request(detail::ListOp::pop, index), operation);
    const auto p = reply.payload();
    if (p.empty() || p[0] == 0) return std::nullopt;
    return detail::dict_decode<T>(p.subspan(1));
  }

  // Runs on the host, under the hosted state's mutex.
  static void handle(State& s, std::span<const char> request, std::vector<char>& reply) {
    using detail::ListOp;
    if (request.empty()) throw UsageError("empty request");
    const auto op = static_cast<ListOp>(request[0]);
    const auto arg = request.subspan(1);
    switch (op) {
      case ListOp::append:
        s.items.push_back(detail::dict_decode<T>(arg));
        return;
      case ListOp::extend:
        for (auto& v : detail::dict_decode<std::vector<T>>(arg)) s.items.push_back(std::move(v));
        return;
      case ListOp::get: {
        const auto i = detail::dict_decode<std::uint64_t>(arg);
        reply.push_back(i < s.items.size() ? 1 : 0);
        if (i < s.items.size()) detail::serialize_into(reply, s.items[i]);
        return;
      }
      case ListOp::set: {
        auto iv = detail::dict_decode<std::pair<std::uint64_t, T>>(arg);
        reply.push_back(iv.first < s.items.size() ? 1 : 0);
        if (iv.first < s.items.size()) s.items[iv.first] = std::move(iv.second);
        return;
      }
      case ListOp::pop: {
        auto i = detail::dict_decode<std::uint64_t>(arg);
        if (i == detail::list_last && !s.items.empty()) i = s.items.size() - 1;
        reply.push_back(i < s.items.size() ? 1 : 0);
        if (i < s.items.size()) {
          detail::serialize_into(reply, s.items[i]);
          s.items.erase(s.items.begin() + static_cast<std::ptrdiff_t>(i));
        }
        return;
      }
      case ListOp::size:
        detail::serialize_into(reply, static_cast<std::uint64_t>(s.items.size()));
        return;
      case ListOp::values:
        detail::serialize_into(reply, s.items);
        return;
      case ListOp::clear:
        s.items.clear();
        return;
    }
    throw UsageError("unknown request " + std::to_string(static_cast<int>(op)));
  }

  std::unique_ptr<State> state_;
};

}  // namespace mpx
