// mpx/dict.hpp: Python's Manager().dict() and Manager().Namespace() for the ranks of an MPI
// job.
//
//   Python                                   C++ (creation is collective: every rank runs it)
//   d = Manager().dict()                     mpx::Dict<int, int> d;
//   d[key] = item                            d[key] = item;          // or d.set(key, item)
//   d[key]        (KeyError if missing)      int x = d[key];         // or d.at(key): mpx::KeyError
//   d.get(key)    (None if missing)          std::optional<int> x = d.get(key);
//   d.get(key, 0)                            d.get(key, 0)
//   key in d                                 d.contains(key)
//   del d[key]                               d.erase(key)            // returns whether it was
//   there d.pop(key, None)                         d.pop(key)              // std::optional<V>
//   d.setdefault(key, v)                     d.setdefault(key, v)    // atomic insert-if-absent
//   d.update(other)                          d.update(other_map)     // atomic as a whole
//   print(d) / dict(d)                       d.items()               // std::map<K, V> snapshot
//   len(d)                                   d.size()
//
// As with Python's manager, the dictionary lives in one place: on the host rank (rank 0 of
// the communicator), whose progress thread serves the other ranks' requests, so it works the
// same on one node and across nodes. Every call is one request, executed atomically on the
// host: concurrent writers never corrupt the dictionary, and a read sees each write whole.
// A read-modify-write made of two calls (`d[k] = d[k] + 1`) is not atomic, as in Python:
// guard it with an mpx::Lock, or use setdefault/pop/update where they fit.
//
// K and V are any types mpx can send (trivially copyable, std::string, containers, types
// with a Boost.Serialization serialize()); K needs operator<. Lifetime: every rank creates
// the object in the same order and destroys it when done; the host keeps serving until
// every rank has destroyed its handle.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mpx/communicator.hpp"
#include "mpx/detail/hosted.hpp"
#include "mpx/detail/serialize.hpp"
#include "mpx/error.hpp"

namespace mpx {

/// A key that is not in a Dict, or a name that is not in a Namespace (Python's KeyError and
/// AttributeError).
class KeyError : public Error {
 public:
  using Error::Error;
};

namespace detail {

/// Requests of a Dict, first byte of every request.
enum class DictOp : char {
  get = 1,
  set = 2,
  contains = 3,
  pop = 4,
  update = 5,
  items = 6,
  size = 7,
  clear = 8,
  setdefault = 9,
  keys = 10,
};

/// The type-independent part of a Dict, Namespace or List (`kind`): creation checks,
/// private communicator, hosting on rank 0.
class DictCore {
 public:
  /// Collective over `comm`: checks that every rank creates the same kind with the same
  /// key and value types, then starts hosting on rank 0.
  DictCore(std::string_view kind, int key_fingerprint, int value_fingerprint,
           const std::string& key_name, const std::string& value_name, const Communicator& comm,
           HostedState::Handler handler);
  ~DictCore();
  DictCore(const DictCore&) = delete;
  DictCore& operator=(const DictCore&) = delete;

  /// Sends one request and returns the reply (remote unless this rank is the host).
  HostedReply call(const std::vector<char>& request, std::string_view operation);
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] const Communicator& comm() const noexcept { return *comm_; }
  [[noreturn]] void missing(std::string_view operation, std::string_view key_text) const;
  /// Throws UsageError "<kind>(moved-from).<operation>: ..." (a call on a moved-from object).
  [[noreturn]] static void moved_from(std::string_view kind, std::string_view operation);

 private:
  std::string name_;
  std::unique_ptr<Communicator> comm_;
  std::unique_ptr<HostedState> state_;
};

/// Printable form of a key for error messages (numbers and strings; "the key" otherwise).
template <class K>
std::string key_text(const K& key) {
  if constexpr (std::is_arithmetic_v<K>) {
    return std::to_string(key);
  } else if constexpr (std::is_convertible_v<const K&, std::string_view>) {
    return "'" + std::string(std::string_view(key)) + "'";
  } else {
    return "the key";
  }
}

/// A request: the operation byte, then the serialized argument.
template <class Op, class T>
std::vector<char> dict_request(Op op, const T& argument) {
  std::vector<char> out(1, static_cast<char>(op));
  serialize_into(out, argument);
  return out;
}
template <class Op>
std::vector<char> dict_request(Op op) {
  return std::vector<char>(1, static_cast<char>(op));
}

template <class T>
T dict_decode(std::span<const char> bytes) {
  T value{};
  deserialize_from(bytes, value);
  return value;
}

}  // namespace detail

template <class K, class V>
class Dict;

/// `d[key]`: reading it is d.at(key) (KeyError if missing), assigning to it is d.set(key, v).
template <class K, class V>
class DictItem {
 public:
  /// The value (remote): throws KeyError if the key is missing.
  operator V() const { return dict_->at(key_); }  // NOLINT(google-explicit-constructor)
  /// Stores `value` under the key (remote).
  DictItem& operator=(const V& value) {
    dict_->set(key_, value);
    return *this;
  }

 private:
  friend class Dict<K, V>;
  DictItem(Dict<K, V>* dict, K key) : dict_(dict), key_(std::move(key)) {}
  Dict<K, V>* dict_;
  K key_;
};

class Namespace;

/// A dictionary shared by every rank: Python's multiprocessing.Manager().dict(). Move-only
/// (every call on a moved-from one throws UsageError).
template <class K, class V>
class Dict {
 public:
  /// Creates an empty dictionary hosted on rank 0 of `comm` (collective over `comm`: every
  /// rank calls it, in the same order as other mpx objects).
  explicit Dict(const Communicator& comm = Communicator::world()) : Dict("Dict", comm) {}

  /// The value under `key`, or nothing (remote). Python: d.get(key).
  [[nodiscard]] std::optional<V> get(const K& key) const { return get_impl(key, "get"); }
  /// The value under `key`, or `fallback` (remote). Python: d.get(key, fallback).
  [[nodiscard]] V get(const K& key, V fallback) const {
    auto v = get(key);
    return v ? std::move(*v) : std::move(fallback);
  }
  /// The value under `key`; throws mpx::KeyError if there is none (remote). Python: d[key].
  [[nodiscard]] V at(const K& key) const {
    auto v = get_impl(key, "at");
    if (!v) core("at").missing("at", detail::key_text(key));
    return std::move(*v);
  }
  /// Stores `value` under `key` (remote). Python: d[key] = value.
  void set(const K& key, const V& value) {
    (void)core("set").call(detail::dict_request(detail::DictOp::set, std::pair<K, V>(key, value)),
                           "set");
  }
  /// A handle that reads (at) or writes (set) `key` (local; using it is remote).
  DictItem<K, V> operator[](const K& key) { return DictItem<K, V>(this, key); }
  /// True if `key` is present (remote). Python: key in d.
  [[nodiscard]] bool contains(const K& key) const {
    const auto reply =
        core("contains").call(detail::dict_request(detail::DictOp::contains, key), "contains");
    return !reply.payload().empty() && reply.payload()[0] != 0;
  }
  /// Removes `key`; returns whether it was present (remote). Python: del d[key].
  bool erase(const K& key) { return pop_impl(key, "erase").has_value(); }
  /// Removes `key` and returns its value, or nothing (remote). Python: d.pop(key, None).
  std::optional<V> pop(const K& key) { return pop_impl(key, "pop"); }
  /// If `key` is missing, stores `value` under it; returns the value now stored, in one
  /// atomic step (remote). Python: d.setdefault(key, value).
  V setdefault(const K& key, const V& value) {
    const auto reply =
        core("setdefault")
            .call(detail::dict_request(detail::DictOp::setdefault, std::pair<K, V>(key, value)),
                  "setdefault");
    return detail::dict_decode<V>(reply.payload());
  }
  /// Stores every entry of `entries`, in one atomic step (remote). Python: d.update(entries).
  void update(const std::map<K, V>& entries) {
    (void)core("update").call(detail::dict_request(detail::DictOp::update, entries), "update");
  }
  /// A consistent copy of every entry, ordered by key (remote). Python: dict(d), d.items().
  [[nodiscard]] std::map<K, V> items() const {
    const auto reply = core("items").call(detail::dict_request(detail::DictOp::items), "items");
    return detail::dict_decode<std::map<K, V>>(reply.payload());
  }
  /// Every key, in order (remote). Python: list(d.keys()).
  [[nodiscard]] std::vector<K> keys() const { return keys_impl("keys"); }
  /// Number of entries (remote). Python: len(d).
  [[nodiscard]] std::size_t size() const {
    const auto reply = core("size").call(detail::dict_request(detail::DictOp::size), "size");
    return detail::dict_decode<std::uint64_t>(reply.payload());
  }
  /// True when there are no entries (remote).
  [[nodiscard]] bool empty() const { return size() == 0; }
  /// Removes every entry (remote). Python: d.clear().
  void clear() { (void)core("clear").call(detail::dict_request(detail::DictOp::clear), "clear"); }

  /// "Dict#N", as used in error messages, or "Dict(moved-from)" (local).
  [[nodiscard]] const std::string& name() const noexcept {
    static const std::string moved_dict = "Dict(moved-from)";
    static const std::string moved_namespace = "Namespace(moved-from)";
    if (state_) return state_->core->name();
    return kind_ == "Namespace" ? moved_namespace : moved_dict;
  }

 private:
  friend class Namespace;

  Dict(std::string_view kind, const Communicator& comm)
      : state_(std::make_unique<State>()), kind_(kind) {
    State* s = state_.get();
    state_->core = std::make_unique<detail::DictCore>(
        kind, detail::fingerprint_of<K>(), detail::fingerprint_of<V>(), detail::readable_name<K>(),
        detail::readable_name<V>(), comm,
        [s](std::span<const char> request, std::vector<char>& reply) {
          handle(*s, request, reply);
        });
  }

  struct State {
    std::map<K, V> map;  // on the host only
    std::unique_ptr<detail::DictCore> core;
  };

  // Every call goes through core(operation): a moved-from Dict is a UsageError, not a crash.
  [[nodiscard]] detail::DictCore& core(std::string_view operation) const {
    if (!state_) [[unlikely]]
      detail::DictCore::moved_from(kind_, operation);
    return *state_->core;
  }

  std::optional<V> get_impl(const K& key, std::string_view operation) const {
    const auto reply =
        core(operation).call(detail::dict_request(detail::DictOp::get, key), operation);
    const auto p = reply.payload();
    if (p.empty() || p[0] == 0) return std::nullopt;
    return detail::dict_decode<V>(p.subspan(1));
  }

  std::vector<K> keys_impl(std::string_view operation) const {
    const auto reply = core(operation).call(detail::dict_request(detail::DictOp::keys), operation);
    return detail::dict_decode<std::vector<K>>(reply.payload());
  }

  std::optional<V> pop_impl(const K& key, std::string_view operation) {
    const auto reply =
        core(operation).call(detail::dict_request(detail::DictOp::pop, key), operation);
    const auto p = reply.payload();
    if (p.empty() || p[0] == 0) return std::nullopt;
    return detail::dict_decode<V>(p.subspan(1));
  }

  // Runs on the host, under the hosted state's mutex.
  static void handle(State& s, std::span<const char> request, std::vector<char>& reply) {
    using detail::DictOp;
    if (request.empty()) throw UsageError("empty request");
    const auto op = static_cast<DictOp>(request[0]);
    const auto arg = request.subspan(1);
    switch (op) {
      case DictOp::get: {
        const auto it = s.map.find(detail::dict_decode<K>(arg));
        reply.push_back(it == s.map.end() ? 0 : 1);
        if (it != s.map.end()) detail::serialize_into(reply, it->second);
        return;
      }
      case DictOp::set: {
        auto kv = detail::dict_decode<std::pair<K, V>>(arg);
        s.map.insert_or_assign(std::move(kv.first), std::move(kv.second));
        return;
      }
      case DictOp::contains:
        reply.push_back(s.map.count(detail::dict_decode<K>(arg)) ? 1 : 0);
        return;
      case DictOp::pop: {
        const auto it = s.map.find(detail::dict_decode<K>(arg));
        reply.push_back(it == s.map.end() ? 0 : 1);
        if (it != s.map.end()) {
          detail::serialize_into(reply, it->second);
          s.map.erase(it);
        }
        return;
      }
      case DictOp::update:
        for (auto& [k, v] : detail::dict_decode<std::map<K, V>>(arg))
          s.map.insert_or_assign(k, std::move(v));
        return;
      case DictOp::items:
        detail::serialize_into(reply, s.map);
        return;
      case DictOp::keys: {
        std::vector<K> keys;
        keys.reserve(s.map.size());
        for (const auto& kv : s.map) keys.push_back(kv.first);
        detail::serialize_into(reply, keys);
        return;
      }
      case DictOp::size:
        detail::serialize_into(reply, static_cast<std::uint64_t>(s.map.size()));
        return;
      case DictOp::clear:
        s.map.clear();
        return;
      case DictOp::setdefault: {
        auto kv = detail::dict_decode<std::pair<K, V>>(arg);
        const auto it = s.map.try_emplace(std::move(kv.first), std::move(kv.second)).first;
        detail::serialize_into(reply, it->second);
        return;
      }
    }
    throw UsageError("unknown request " + std::to_string(static_cast<int>(op)));
  }

  std::unique_ptr<State> state_;
  std::string_view kind_ = "Dict";  // "Dict" or "Namespace" (a literal: survives moves)
};

/// Python's Manager().Namespace(): named values of any sendable type, shared by every rank
/// (hosted on rank 0 like a Dict). Move-only (every call on a moved-from one throws
/// UsageError).
///
///   mpx::Namespace ns;                       // ns = manager.Namespace()
///   ns.set("result", std::vector<double>{}); // ns.result = []
///   auto r = ns.get<std::vector<double>>("result");
class Namespace {
 public:
  /// Creates an empty namespace (collective over `comm`).
  explicit Namespace(const Communicator& comm = Communicator::world())
      : entries_("Namespace", comm) {}

  /// Binds `name` to `value`, replacing what was there, of any type (remote). Python:
  /// ns.name = value.
  template <class T>
  void set(const std::string& name, const T& value) {
    detail::check_sendable<T>();
    Entry e;
    e.first = detail::fingerprint_of<T>();
    detail::encode(e.second, value);
    entries_.set(name, e);
  }
  /// The value bound to `name`, which must have been stored as a T (remote). Throws
  /// mpx::KeyError if there is none (Python's AttributeError), mpx::TypeMismatch if it was
  /// stored with another type.
  template <class T>
  [[nodiscard]] T get(const std::string& name) const {
    auto e = entries_.get(name);
    if (!e) entries_.core("get").missing("get", detail::key_text(name));
    if (e->first != detail::fingerprint_of<T>())
      detail::fail<TypeMismatch>(entries_.name(), "get",
                                 "'" + name + "' holds a " + detail::lookup_type_name(e->first) +
                                     ", not a '" + detail::readable_name<T>() +
                                     "'; get it with the type it was set with");
    return detail::decode<T>(e->second);
  }
  /// True if `name` is bound (remote). Python: hasattr(ns, name).
  [[nodiscard]] bool contains(const std::string& name) const { return entries_.contains(name); }
  /// Unbinds `name`; returns whether it was bound (remote). Python: del ns.name.
  bool erase(const std::string& name) { return entries_.erase(name); }
  /// Every bound name, in order (remote).
  [[nodiscard]] std::vector<std::string> names() const { return entries_.keys_impl("names"); }
  /// "Namespace#N" (local).
  [[nodiscard]] const std::string& name() const noexcept { return entries_.name(); }

 private:
  using Entry = std::pair<int, std::vector<char>>;  // type fingerprint, encoded value
  Dict<std::string, Entry> entries_;
};

}  // namespace mpx
