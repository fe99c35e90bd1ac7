// mpx/detail/pool_registry.hpp: how a Pool task crosses ranks.
//
// A callable never travels as an address. Every (callable type, argument type) pair that a
// program hands to a Pool instantiates an *invoker*; each invoker registers itself during
// static initialisation and gets the next index of a registry. All ranks run the identical
// binary (Pool checks it at start), so static initialisation runs in the same order and an
// index means the same invoker everywhere. A task message carries that index, a checksum of
// the invoker's name (so a mismatch is reported instead of calling the wrong code), the
// callable's state and the serialized arguments.
//
//   * function objects and captureless lambdas: the type is the identity, the object is
//     rebuilt on the worker (default-constructed when empty, decoded when it has state);
//   * free functions: MPX_REGISTER(f) at namespace scope gives the function an index of its
//     own; the task carries that index.
#pragma once

#include <boost/archive/binary_oarchive.hpp>
#include <cstdint>
#include <cstring>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "mpx/communicator.hpp"
#include "mpx/detail/serialize.hpp"
#include "mpx/detail/type_id.hpp"

namespace mpx::detail {

// ---- byte codec: arguments and results as one flat buffer -----------------------------------

/// Reads values back out of a buffer written by put()/put_items().
class Reader {
 public:
  explicit Reader(std::span<const char> bytes) : bytes_(bytes) {}
  /// The next `n` bytes; throws std::out_of_range if the buffer is shorter.
  std::span<const char> take(std::size_t n);
  /// A trivially copyable value.
  template <class T>
  T raw() {
    T value;
    const auto b = take(sizeof(T));
    std::memcpy(static_cast<void*>(&value), b.data(), sizeof(T));
    return value;
  }
  [[nodiscard]] std::size_t left() const noexcept { return bytes_.size() - pos_; }

 private:
  std::span<const char> bytes_;
  std::size_t pos_ = 0;
};

template <class T>
void put_raw(std::vector<char>& out, const T& value) {
  const auto* p = reinterpret_cast<const char*>(&value);
  out.insert(out.end(), p, p + sizeof(T));
}

template <class T>
struct tuple_like : std::false_type {};
template <class... E>
struct tuple_like<std::tuple<E...>> : std::true_type {};
template <class A, class B>
struct tuple_like<std::pair<A, B>> : std::true_type {};

/// Appends `value` with mpx's wire rules: raw bytes for trivially copyable types, element by
/// element for std::tuple / std::pair, a length-prefixed wire image for everything else.
template <class T>
void put(std::vector<char>& out, const T& value) {
  if constexpr (trivially_sendable<T>) {
    put_raw(out, value);
  } else if constexpr (tuple_like<T>::value) {
    std::apply([&](const auto&... e) { (put(out, e), ...); }, value);
  } else {
    const std::size_t at = out.size();
    put_raw(out, std::uint64_t{0});
    encode(out, value);
    const std::uint64_t n = out.size() - at - sizeof(std::uint64_t);
    std::memcpy(out.data() + at, &n, sizeof n);
  }
}

/// Reads a value written by put().
template <class T>
T get(Reader& in) {
  if constexpr (trivially_sendable<T>) {
    return in.raw<T>();
  } else if constexpr (tuple_like<T>::value) {
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return T{get<std::tuple_element_t<I, T>>(in)...};  // braces: evaluated left to right
    }
    (std::make_index_sequence<std::tuple_size_v<T>>{});
  } else {
    const auto n = in.raw<std::uint64_t>();
    return decode<T>(in.take(n));
  }
}

/// Appends a count and the items (one block copy when the items are trivially copyable).
template <class T>
void put_items(std::vector<char>& out, std::span<const T> items) {
  put_raw(out, static_cast<std::uint64_t>(items.size()));
  if constexpr (trivially_sendable<T>) {
    const auto* p = reinterpret_cast<const char*>(items.data());
    out.insert(out.end(), p, p + items.size_bytes());
  } else {
    for (const auto& item : items) put(out, item);
  }
}

/// Reads items written by put_items(), appending them to `out`.
template <class T>
void get_items(Reader& in, std::vector<T>& out) {
  const auto n = static_cast<std::size_t>(in.raw<std::uint64_t>());
  if constexpr (trivially_sendable<T> && !std::is_same_v<T, bool>) {  // vector<bool>: no data()
    const auto b = in.take(n * sizeof(T));
    const std::size_t old = out.size();
    out.resize(old + n);
    if (n) std::memcpy(static_cast<void*>(out.data() + old), b.data(), b.size());
  } else {
    out.reserve(out.size() + n);
    for (std::size_t i = 0; i < n; ++i) out.push_back(get<T>(in));
  }
}

/// Stands for the result of a function that returns void.
struct NoValue {};

// ---- registries ---------------------------------------------------------------------------

/// Runs one chunk: rebuilds the callable from `state`, calls it on every item of `args` and
/// appends the results (put_items) to `out`. Exceptions propagate to the caller.
using InvokeFn = void (*)(std::span<const char> state, Reader& args, std::vector<char>& out);

/// Identity of an invoker on the wire: registry index plus a checksum of its name.
struct InvokerId {
  std::uint32_t index = 0;
  std::uint32_t check = 0;
};

/// Adds an invoker during static initialisation; returns its identity.
InvokerId register_invoker(std::string_view name, InvokeFn fn) noexcept;
/// The invoker for `id`; throws UsageError when the index is unknown or the checksum differs
/// (the ranks do not run the same program).
InvokeFn find_invoker(InvokerId id);

/// A compiled loop over a registered unary function: reads `n` items (raw bytes of its
/// argument type) from `items`, writes the `n` results (raw bytes) to `results`. The call
/// inlines, so a cheap function vectorises as in a hand-written loop.
using BatchFn = void (*)(const char* items, char* results, std::size_t n);

/// Adds a free function during static initialisation (MPX_REGISTER); returns true. `batch`
/// is its compiled loop, or null.
bool register_function(void (*fn)(), std::string_view name, std::string_view type,
                       std::string_view file, int line, BatchFn batch = nullptr) noexcept;
/// The registry index of `fn`; throws UsageError naming MPX_REGISTER when it is missing.
std::uint32_t function_index(void (*fn)(), std::string_view type, std::string_view operation);
/// The function registered under `index`, checking that it has function type `type`.
void (*function_at(std::uint32_t index, std::string_view type))();
/// The compiled loop of the function registered under `index`, or null (local).
BatchFn function_batch(std::uint32_t index) noexcept;
/// Fingerprint of both registries (names in order), compared across ranks at Pool start.
std::uint64_t registry_fingerprint() noexcept;

template <class Fn>
requires std::is_function_v<Fn>
bool register_function_pointer(Fn* fn, std::string_view name, std::string_view file,
                               int line) noexcept {
  return register_function(reinterpret_cast<void (*)()>(fn), name, type_name<Fn*>(), file, line);
}

/// Argument and result of a unary function pointer type (value false for anything else).
template <class P>
struct unary_function_traits : std::false_type {};
template <class R, class A>
struct unary_function_traits<R (*)(A)> : std::true_type {
  using arg = std::remove_cvref_t<A>;
  using result = std::decay_t<R>;
};
template <class R, class A>
struct unary_function_traits<R (*)(A) noexcept> : unary_function_traits<R (*)(A)> {};

/// True when a function pointer type gets a compiled loop: one argument and a result, both
/// plain data.
template <class P>
constexpr bool has_batch_loop() {
  if constexpr (unary_function_traits<P>::value) {
    using A = typename unary_function_traits<P>::arg;
    using R = typename unary_function_traits<P>::result;
    return !std::is_void_v<R> && trivially_sendable<A> && trivially_sendable<R> &&
           std::is_default_constructible_v<A>;
  } else {
    return false;
  }
}

/// The compiled loop of function `Fn` (its address is a template argument, so the call
/// inlines).
template <auto Fn>
void batch_loop(const char* items, char* results, std::size_t n) {
  using A = typename unary_function_traits<decltype(Fn)>::arg;
  using R = typename unary_function_traits<decltype(Fn)>::result;
  for (std::size_t i = 0; i < n; ++i) {
    A a;
    std::memcpy(static_cast<void*>(&a), items + i * sizeof(A), sizeof(A));
    const R r = Fn(a);
    std::memcpy(results + i * sizeof(R), static_cast<const void*>(&r), sizeof(R));
  }
}

/// What MPX_REGISTER(fn) runs: registers `Fn` and, for a unary function of plain data, its
/// compiled loop.
template <auto Fn>
bool register_function_value(std::string_view name, std::string_view file, int line) noexcept {
  using P = decltype(Fn);
  static_assert(std::is_pointer_v<P> && std::is_function_v<std::remove_pointer_t<P>>,
                "MPX_REGISTER takes the name of a free function");
  BatchFn batch = nullptr;
  if constexpr (has_batch_loop<P>()) batch = &batch_loop<Fn>;
  return register_function(reinterpret_cast<void (*)()>(Fn), name, type_name<P>(), file, line,
                           batch);
}

// ---- callables ----------------------------------------------------------------------------

template <class F>
concept has_serialize_member = requires(F& f, boost::archive::binary_oarchive& ar) {
  f.serialize(ar, 0u);
};

template <class F>
concept free_function_pointer =
    std::is_pointer_v<F> && std::is_function_v<std::remove_pointer_t<F>>;

/// A callable that can be rebuilt on another rank.
template <class F>
concept shippable_callable = free_function_pointer<F> ||
    (std::is_class_v<F>&& std::is_default_constructible_v<F> &&
     (std::is_empty_v<F> || trivially_sendable<F> || has_serialize_member<F>));

template <class F>
constexpr void check_shippable() {
  static_assert(!std::is_member_pointer_v<F>,
                "mpx::Pool cannot ship a pointer to member: wrap the call in a captureless "
                "lambda that takes the object as an argument");
  static_assert(shippable_callable<F>,
                "mpx::Pool cannot ship this callable to another rank. A lambda with captures "
                "(or std::function, or a function object with state but no serialize()) "
                "holds data, maybe addresses, that mean nothing in another process. Pass the "
                "captured values as task arguments (starmap, apply_async with a tuple), or "
                "write a struct with operator() and a Boost.Serialization serialize() member.");
}

/// Bytes that rebuild `f` on a worker: a registry index for a free function, nothing for a
/// stateless object, its wire image otherwise.
template <class F>
std::vector<char> callable_state(const F& f, std::string_view operation) {
  std::vector<char> out;
  if constexpr (free_function_pointer<F>) {
    put_raw(out, function_index(reinterpret_cast<void (*)()>(f), type_name<F>(), operation));
  } else if constexpr (!std::is_empty_v<F>) {
    encode(out, f);
  }
  return out;
}

template <class F>
F rebuild_callable(std::span<const char> state) {
  if constexpr (free_function_pointer<F>) {
    Reader in(state);
    return reinterpret_cast<F>(function_at(in.raw<std::uint32_t>(), type_name<F>()));
  } else if constexpr (std::is_empty_v<F>) {
    return F{};
  } else {
    return decode<F>(state);
  }
}

/// The result type a task produces: R, or NoValue for void.
template <class R>
using stored_t = std::conditional_t<std::is_void_v<R>, NoValue, std::decay_t<R>>;

/// Calls f with one item (Star = false) or with the item's elements (Star = true).
template <bool Star, class F, class Item>
decltype(auto) call_item(F& f, const Item& item) {
  if constexpr (Star)
    return std::apply(f, item);
  else
    return std::invoke(f, item);
}

template <bool Star, class F, class Item>
using call_result_t = decltype(call_item<Star>(std::declval<F&>(), std::declval<const Item&>()));

/// The invoker of callable F over items of type Item.
template <class F, bool Star, class Item>
struct Invoker {
  using R = stored_t<call_result_t<Star, F, Item>>;
  static void run(std::span<const char> state, Reader& args, std::vector<char>& out) {
    F f = rebuild_callable<F>(state);
    using Raw = call_result_t<Star, F, Item>;
    if constexpr (trivially_sendable<Item> && trivially_sendable<R> && !std::is_void_v<Raw>) {
      // One pass: items read from the message, results written into it, no vectors between.
      const auto n = static_cast<std::size_t>(args.raw<std::uint64_t>());
      const auto in = args.take(n * sizeof(Item));
      const std::size_t at = out.size();
      put_raw(out, static_cast<std::uint64_t>(n));
      out.resize(at + sizeof(std::uint64_t) + n * sizeof(R));
      char* dst = out.data() + at + sizeof(std::uint64_t);
      if constexpr (!Star && has_batch_loop<F>()) {
        // A registered function whose argument is exactly the item type: its compiled loop.
        if constexpr (std::is_same_v<Item, typename unary_function_traits<F>::arg>) {
          Reader index(state);
          if (const BatchFn batch = function_batch(index.raw<std::uint32_t>())) {
            batch(in.data(), dst, n);
            return;
          }
        }
      }
      for (std::size_t i = 0; i < n; ++i) {
        Item item;
        std::memcpy(static_cast<void*>(&item), in.data() + i * sizeof(Item), sizeof(Item));
        const R r = call_item<Star>(f, item);
        std::memcpy(dst + i * sizeof(R), static_cast<const void*>(&r), sizeof(R));
      }
    } else {
      std::vector<Item> items;
      get_items(args, items);
      // As put_items: the count, then each result (no vector of results in between).
      put_raw(out, static_cast<std::uint64_t>(items.size()));
      for (const auto& item : items) {
        if constexpr (std::is_void_v<Raw>) {
          call_item<Star>(f, item);
          put(out, NoValue{});
        } else {
          put(out, static_cast<const R&>(call_item<Star>(f, item)));
        }
      }
    }
  }
  static inline const InvokerId id = register_invoker(type_name<Invoker>(), &Invoker::run);
};

}  // namespace mpx::detail

#define MPX_DETAIL_CONCAT2(a, b) a##b
#define MPX_DETAIL_CONCAT(a, b) MPX_DETAIL_CONCAT2(a, b)

/// Makes the free function `fn` usable as a Pool task: write it once at namespace scope,
/// next to the function (`MPX_REGISTER(function_square);`). Functions cross ranks as their
/// registry index, never as an address. An overloaded name cannot be registered: give the
/// overload you want a name of its own. Lambdas and function objects need no registration.
#define MPX_REGISTER(fn)                                                                      \
  [[maybe_unused]] static inline const bool MPX_DETAIL_CONCAT(mpx_registered_, __COUNTER__) = \
      ::mpx::detail::register_function_value<&fn>(#fn, __FILE__, __LINE__)
