// mpx/detail/shared_segment.hpp: memory that every rank of a communicator reads and writes
// directly, when all of them run on one node. Small segments are blocks of one shared
// window per node (the arena, made when the Environment starts, see shared_segment.cpp),
// returned when the last rank destroys its object; large ones are windows of their own
// (MPI_Win_allocate_shared), freed when the Environment ends. The memory is used with C++
// atomics (std::atomic_ref), never
// with MPI one-sided calls (Open MPI 4.1's default one-sided component crashes on
// compare-and-swap here, see shared/PLATFORM.md). Objects that need state across nodes
// fall back to a rank that hosts it and serves requests through the progress engine.
#pragma once

#include <mpi.h>

#include <cstddef>
#include <cstdint>
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
  /// Local. A block of the arena goes back to it when the last rank lets go of it; a window
  /// of its own is freed when the Environment ends, in creation order (MPI_Win_free is
  /// collective, and objects are not destroyed collectively).
  ~SharedSegment();

  /// Start of the block, the same bytes on every rank (local).
  [[nodiscard]] void* data() const noexcept { return data_; }
  /// Size of the block in bytes (local).
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 private:
  SharedSegment(void* data, std::size_t size, std::uint64_t block)
      : data_(data), size_(size), block_(block) {}
  void* data_;
  std::size_t size_;
  std::uint64_t block_;  // offset of the arena block, or ~0 for a window of its own
};

/// Collective over MPI_COMM_WORLD (Environment's constructor): makes this node's arena.
/// MPX_ARENA_BYTES sets its size (default 4 MiB; 0: no arena).
void open_shared_arena();
/// Environment's destructor: segments destroyed later no longer touch the arena.
void close_shared_arena() noexcept;
/// Bytes of this node's arena not in use (local; for tests). 0 without an arena.
std::size_t shared_arena_free_bytes() noexcept;

/// Records a window to free, in creation order, when the Environment ends.
void register_window(MPI_Win win);

}  // namespace mpx::detail
