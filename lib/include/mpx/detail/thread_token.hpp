// mpx/detail/thread_token.hpp: a 64-bit name of the calling thread of this rank, used as the
// owner of locks: (world rank + 1) << 32 | thread number. Never 0. Inline and cached in a
// thread_local, because the lock fast path reads it on every acquire and release.
#pragma once

#include <cstdint>

namespace mpx::detail {

/// Computes the calling thread's token (out of line; needs a live Environment).
std::uint64_t make_thread_token() noexcept;

inline thread_local std::uint64_t t_thread_token = 0;

/// The calling thread's token (local, a few nanoseconds after the first call).
inline std::uint64_t this_thread_token() noexcept {
  const std::uint64_t t = t_thread_token;
  if (t != 0) [[likely]]
    return t;
  return make_thread_token();
}

}  // namespace mpx::detail
