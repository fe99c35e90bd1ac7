// mpx/detail/type_id.hpp: compile-time type names and the 15-bit type fingerprint that every
// typed message carries in its MPI tag, so a receiver that asks for the wrong type gets a
// clear TypeMismatch instead of garbage.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mpx::detail {

/// The spelling of T as the compiler prints it, available at compile time.
template <class T>
constexpr std::string_view type_name() noexcept {
  constexpr std::string_view p = __PRETTY_FUNCTION__;
  constexpr std::string_view key = "T = ";
  constexpr auto start = p.find(key) + key.size();
  constexpr auto end = p.find_first_of(";]", start);
  return p.substr(start, end - start);
}

/// 32-bit FNV-1a of a string, usable at compile time.
constexpr std::uint32_t fnv1a(std::string_view s, std::uint32_t h = 2166136261u) noexcept {
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 16777619u;
  }
  return h;
}

/// Number of tag bits left to the user; user tags are 0 .. max_user_tag.
inline constexpr int user_tag_bits = 15;
/// Largest tag a user may pass to send/recv.
inline constexpr int max_user_tag = (1 << user_tag_bits) - 1;
/// Number of bits of the type fingerprint stored above the user tag.
inline constexpr int fingerprint_bits = 15;
inline constexpr int fingerprint_mask = (1 << fingerprint_bits) - 1;

/// Records "fingerprint -> type name" so a TypeMismatch can name the sender's type. Filled at
/// start-up for every type the program sends or receives (all ranks run the same binary).
bool register_type_name(int fingerprint, std::string_view name) noexcept;
/// The registered name for a fingerprint, or "<unknown type #N>".
std::string lookup_type_name(int fingerprint);

/// The wire identity of a message type: a fingerprint of its name folded to 15 bits (never 0,
/// which marks untyped internal messages) plus the readable name for error messages.
template <class Wire>
struct wire_id {
  static constexpr int fingerprint = [] {
    const std::uint32_t h = fnv1a(type_name<Wire>());
    const int f = static_cast<int>((h ^ (h >> 15) ^ (h >> 30)) & fingerprint_mask);
    return f == 0 ? 1 : f;
  }();
  static inline const bool registered = register_type_name(fingerprint, type_name<Wire>());
};

}  // namespace mpx::detail
