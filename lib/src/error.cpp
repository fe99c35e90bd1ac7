#include "mpx/error.hpp"

#include <mpi.h>

#include <string>

#include "mpx/detail/check.hpp"

namespace mpx {

namespace {
std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) return "unknown MPI error";
  return std::string(text, static_cast<std::size_t>(length));
}
int mpi_error_class(int code) {
  int cls = 0;
  if (MPI_Error_class(code, &cls) != MPI_SUCCESS) return code;
  return cls;
}
}  // namespace

MpiError::MpiError(int code, std::string_view call, std::string_view context)
    : Error(std::string(context) + std::string(call) + " failed: " + mpi_error_text(code) +
            " (MPI error code " + std::to_string(code) + ", class " +
            std::to_string(mpi_error_class(code)) + ")"),
      code_(code),
      class_(mpi_error_class(code)) {}

RemoteError::RemoteError(int rank, std::string type, std::string message)
    : Error("mpx: task failed on rank " + std::to_string(rank) + " with " + type + ": " + message),
      rank_(rank),
      type_(std::move(type)),
      message_(std::move(message)) {}

namespace detail {

std::string where(std::string_view object, std::string_view operation) {
  std::string s = "mpx: rank ";
  const int rank = world_rank_or_minus_one();
  s += rank >= 0 ? std::to_string(rank) : std::string("?");
  s += ": ";
  s += object;
  if (!operation.empty()) {
    s += '.';
    s += operation;
  }
  s += ": ";
  return s;
}

void throw_mpi_error(int code, const char* call, std::string_view object,
                     std::string_view operation) {
  std::string name(call);
  if (const auto paren = name.find('('); paren != std::string::npos) name.resize(paren);
  throw MpiError(code, name, where(object, operation));
}

}  // namespace detail
}  // namespace mpx
