#include "mpx/detail/shared_segment.hpp"

#include <cstdlib>
#include <cstring>
#include <string>

#include "mpx/communicator.hpp"
#include "mpx/detail/check.hpp"

namespace mpx::detail {

bool SharedSegment::disabled_by_environment() noexcept {
  const char* v = std::getenv("MPX_NO_SHARED_MEMORY");
  return v && *v && std::string(v) != "0";
}

std::unique_ptr<SharedSegment> SharedSegment::create(const Communicator& comm, std::size_t bytes,
                                                     std::string_view object) {
  // Are all ranks on one node? Split by node and compare sizes (every rank learns the same).
  MPI_Comm node = MPI_COMM_NULL;
  MPX_CHECK_MPI(MPI_Comm_split_type(comm.native(), MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node),
                object, "create");
  int node_size = 0;
  MPI_Comm_size(node, &node_size);
  const int all_local = comm.allreduce(node_size == comm.size() ? 1 : 0, minimum{});
  const int allowed = comm.allreduce(disabled_by_environment() ? 0 : 1, minimum{});
  if (!all_local || !allowed) {
    MPI_Comm_free(&node);
    return nullptr;
  }
  MPI_Info info = MPI_INFO_NULL;
  MPI_Info_create(&info);
  MPI_Info_set(info, "alloc_shared_noncontig", "false");
  void* base = nullptr;
  MPI_Win win = MPI_WIN_NULL;
  const auto mine = static_cast<MPI_Aint>(node == MPI_COMM_NULL ? 0 : (comm.rank() == 0 ? bytes : 0));
  const int rc = MPI_Win_allocate_shared(mine, 1, info, node, &base, &win);
  MPI_Info_free(&info);
  MPI_Comm_free(&node);
  if (rc != MPI_SUCCESS) throw_mpi_error(rc, "MPI_Win_allocate_shared", object, "create");
  register_window(win);
  MPI_Aint size = 0;
  int unit = 0;
  MPX_CHECK_MPI(MPI_Win_shared_query(win, 0, &size, &unit, &base), object, "create");
  if (comm.rank() == 0 && bytes > 0) std::memset(base, 0, bytes);
  comm.barrier();  // nobody uses the block before it is zeroed
  return std::unique_ptr<SharedSegment>(new SharedSegment(win, base, bytes));
}


}  // namespace mpx::detail
