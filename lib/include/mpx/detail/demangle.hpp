// mpx/detail/demangle.hpp: readable C++ type names for messages.
#pragma once

#include <string>

namespace mpx::detail {

/// The demangled form of a mangled type name ("std::out_of_range" for "St12out_of_range");
/// the name itself when it cannot be demangled (local).
std::string demangle(const char* mangled);

/// The demangled type of the exception being handled, or "unknown exception" outside a
/// handler or for a foreign exception (local).
std::string current_exception_type();

}  // namespace mpx::detail
