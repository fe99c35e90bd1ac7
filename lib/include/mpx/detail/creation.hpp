// mpx/detail/creation.hpp: the collective parameter check every object runs at creation
// (Pipe, Queue and ProcessSlots directly; the objects of lock.hpp ... list.hpp through
// gather_creation of detail/sync_core.hpp, which adds the kind of object to the record).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "mpx/communicator.hpp"
#include "mpx/detail/check.hpp"
#include "mpx/error.hpp"

namespace mpx::detail {

/// Every rank's creation parameters (collective over `comm`). A rank that is creating another
/// kind of object at this point (another program, or objects created in another order) passes
/// parameters of another type: then every rank throws UsageError naming `object`.`operation`
/// instead of a TypeMismatch of the inner allgather.
template <class T>
std::vector<T> gather_parameters(const Communicator& comm, const T& mine, const std::string& object,
                                 std::string_view operation = "create") {
  if (comm.is_null())
    fail(object, operation,
         "this rank is not a member of " + comm.name() +
             " (split() gave it a null communicator); create the object only on the ranks of "
             "its communicator");
  try {
    return comm.allgather(mine);
  } catch (const TypeMismatch& e) {
    std::string what = e.what();
    constexpr std::string_view marker = "allgather: ";
    if (const auto at = what.find(marker); at != std::string::npos)
      what.erase(0, at + marker.size());
    fail(object, operation, "not every rank is creating this object at this point: " + what);
  }
}

}  // namespace mpx::detail
