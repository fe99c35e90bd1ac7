// mpx/detail/shared_segment.hpp: memory that every rank of a communicator reads and writes
// directly, when all of them run on one node. Built on MPI_Win_allocate_shared over the
// node-local communicator; the memory is used with C++ atomics (std::atomic_ref), never
// with MPI one-sided calls (Open MPI 4.1's default one-sided component crashes on
// compare-and-swap here, see shared/PLATFORM.md). Objects that need state across nodes
// fall back to a rank that hosts it and serves requests through the progress engine.
#pragma once

#include <mpi.h>

#include <cstddef>
#include <memory>
#include <string_view>

namespace mpx {
class Communicator;
}

namespace mpx::detail {

/// A zero-initialised block of `size()` bytes mapped into every rank of a communicator.
class SharedSegment {
 public:
  /// Collective over `comm`. Returns nullptr when the ranks of `comm` are not all on one
  /// node, or when MPX_NO_SHARED_MEMORY=1 is set (so tests can force the cross-node path on
  /// one machine). Every rank gets the same answer. `bytes` must be the same on every rank.
  static std::unique_ptr<SharedSegment> create(const Communicator& comm, std::size_t bytes,
                                               std::string_view object);

  /// True when the environment forbids shared memory (MPX_NO_SHARED_MEMORY=1) (local).
  static bool disabled_by_environment() noexcept;

  SharedSegment(const SharedSegment&) = delete;
  SharedSegment& operator=(const SharedSegment&) = delete;
  /// The window itself is freed when the Environment ends, in creation order
  /// (MPI_Win_free is collective, and objects are not destroyed collectively).
  ~SharedSegment() = default;

  /// Start of the block, the same bytes on every rank (local).
  [[nodiscard]] void* data() const noexcept { return data_; }
  /// Size of the block in bytes (local).
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 private:
  SharedSegment(MPI_Win win, void* data, std::size_t size) : win_(win), data_(data), size_(size) {}
  MPI_Win win_;
  void* data_;
  std::size_t size_;
};

/// Records a window to free, in creation order, when the Environment ends.
void register_window(MPI_Win win);

}  // namespace mpx::detail
