// mpx/detail/serialize.hpp: how a C++ type travels. Trivially copyable values and contiguous
// sequences of them go as raw bytes; everything else through Boost.Serialization into a byte
// vector with mpx's byte archives (detail/byte_archive.hpp: memcpy primitives, no
// std::stringstream, no per-archive std::locale, no MPI_Pack per field).
#pragma once

#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <boost/serialization/array.hpp>
#include <boost/serialization/complex.hpp>
#include <boost/serialization/deque.hpp>
#include <boost/serialization/list.hpp>
#include <boost/serialization/map.hpp>
#include <boost/serialization/set.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/unordered_map.hpp>
#include <boost/serialization/unordered_set.hpp>
#include <boost/serialization/utility.hpp>
#include <boost/serialization/vector.hpp>
#include <cstddef>
#include <span>
#include <streambuf>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "mpx/detail/byte_archive.hpp"
#include "mpx/detail/type_id.hpp"

namespace mpx::detail {

/// A type whose bytes can be copied to another rank as they are.
template <class T>
concept trivially_sendable = std::is_trivially_copyable_v<T> && !std::is_pointer_v<T> &&
                             !std::is_member_pointer_v<T> && !std::is_reference_v<T>;

/// Contiguous sequences of trivially sendable elements that travel as raw bytes:
/// std::vector<E> (E not bool) and std::basic_string<C>.
template <class T>
struct raw_sequence : std::false_type {};
template <class E, class A>
  requires(trivially_sendable<E> && !std::is_same_v<E, bool>)
struct raw_sequence<std::vector<E, A>> : std::true_type {
  using element = E;
};
template <class C, class Tr, class A>
struct raw_sequence<std::basic_string<C, Tr, A>> : std::true_type {
  using element = C;
};

/// Every contiguous sequence that can be sent as raw bytes: the resizable ones above plus
/// views (std::span, std::basic_string_view), which can be sent but not received into.
template <class T>
struct send_sequence : raw_sequence<T> {};
template <class E, std::size_t N>
  requires trivially_sendable<std::remove_cv_t<E>>
struct send_sequence<std::span<E, N>> : std::true_type {
  using element = std::remove_cv_t<E>;
};
template <class C, class Tr>
struct send_sequence<std::basic_string_view<C, Tr>> : std::true_type {
  using element = C;
};

/// How T travels on the wire.
enum class WireKind { raw, sequence, serialized };

template <class T>
constexpr WireKind wire_kind() {
  if constexpr (send_sequence<T>::value)
    return WireKind::sequence;
  else if constexpr (trivially_sendable<T>)
    return WireKind::raw;
  else
    return WireKind::serialized;
}

/// Tag types that name the wire format in the type fingerprint.
template <class E>
struct sequence_of {};
template <class T>
struct serialized {};

/// The type whose fingerprint a message of C++ type T carries. A std::string and a
/// std::vector<char> share one wire type, so do all sequences of the same element.
template <class T>
struct wire_type_of {
  using type = T;
};
template <class T>
  requires(wire_kind<T>() == WireKind::sequence)
struct wire_type_of<T> {
  using type = sequence_of<typename send_sequence<T>::element>;
};
template <class T>
  requires(wire_kind<T>() == WireKind::serialized)
struct wire_type_of<T> {
  using type = serialized<T>;
};

/// Fingerprint of T's wire type; also registers its readable name.
template <class T>
int fingerprint_of() noexcept {
  using W = typename wire_type_of<T>::type;
  (void)wire_id<W>::registered;
  return wire_id<W>::fingerprint;
}

/// A compiler's type spelling made readable: "std::__cxx11::basic_string<char>" becomes
/// "std::string" (communicator.cpp).
std::string tidy_type_name(std::string_view name);

/// Readable name of T for error messages.
template <class T>
std::string readable_name() {
  return tidy_type_name(type_name<T>());
}

/// std::streambuf that appends to a byte vector.
class VectorSink final : public std::streambuf {
 public:
  explicit VectorSink(std::vector<char>& out) : out_(out) {}

 protected:
  int_type overflow(int_type c) override {
    if (c != traits_type::eof()) out_.push_back(static_cast<char>(c));
    return c;
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    out_.insert(out_.end(), s, s + n);
    return n;
  }

 private:
  std::vector<char>& out_;
};

/// std::streambuf that reads from a byte span without copying it.
class SpanSource final : public std::streambuf {
 public:
  explicit SpanSource(std::span<const char> in) {
    char* p = const_cast<char*>(in.data());  // streambuf needs char*; it is never written
    setg(p, p, p + in.size());
  }
};

inline constexpr unsigned archive_flags = boost::archive::no_header | boost::archive::no_codecvt;

/// Appends the Boost.Serialization image of `value` to `out`.
template <class T>
void serialize_into(std::vector<char>& out, const T& value) {
  byte_oarchive ar(out);
  ar << value;
}

/// Rebuilds `value` from bytes written by serialize_into. Throws std::exception (from
/// Boost) when the bytes are not a valid image of T.
template <class T>
void deserialize_from(std::span<const char> bytes, T& value) {
  byte_iarchive ar(bytes);
  ar >> value;
}

}  // namespace mpx::detail
