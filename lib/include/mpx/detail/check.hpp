// mpx/detail/check.hpp: one place that turns MPI return codes and misuse into exceptions.
#pragma once

#include <mpi.h>

#include <string>
#include <string_view>

#include "mpx/error.hpp"

namespace mpx::detail {

/// World rank of this process, or -1 before mpx::Environment initialised MPI.
int world_rank_or_minus_one() noexcept;

/// "mpx: rank R: <object>.<operation>: " — the prefix of every mpx error message.
std::string where(std::string_view object, std::string_view operation);

/// Throws MpiError for a failed MPI call. Out of line so the check itself stays tiny.
[[noreturn]] void throw_mpi_error(int code, const char* call, std::string_view object,
                                  std::string_view operation);

/// Throws `E` with the standard prefix followed by `message`.
template <class E = UsageError>
[[noreturn]] void fail(std::string_view object, std::string_view operation,
                       std::string_view message) {
  throw E(where(object, operation) + std::string(message));
}

}  // namespace mpx::detail

/// Evaluates the MPI call exactly once and throws mpx::MpiError, naming the object and the
/// operation, when it does not return MPI_SUCCESS.
#define MPX_CHECK_MPI(call, object, operation)                                      \
  do {                                                                              \
    const int mpx_check_rc_ = (call);                                               \
    if (mpx_check_rc_ != MPI_SUCCESS) [[unlikely]]                                  \
      ::mpx::detail::throw_mpi_error(mpx_check_rc_, #call, (object), (operation));  \
  } while (false)
