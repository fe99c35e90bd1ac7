#include "mpx/detail/shared_segment.hpp"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mpx/communicator.hpp"
#include "mpx/detail/check.hpp"

namespace mpx::detail {

// ---- The node arena --------------------------------------------------------------------------
// One shared window per node, made when the Environment starts, from which the small
// segments of objects (a lock's owner word, a Value, a short Array) are carved. A window of
// their own would cost each object a page of shared memory, a file mapping and one of Open
// MPI's ~65,000 communicator ids, and could be freed only collectively; a block of the arena
// costs 64 bytes plus its size and is freed by whichever rank lets go of it last.
//
// Layout: an ArenaHeader, then blocks. Every block starts with a BlockHeader (one cache
// line) and is a multiple of a cache line long; free blocks form a list sorted by offset, so
// freeing merges neighbours. The allocator's own lock is a spin lock in the header (taken
// for a few hundred nanoseconds per create/destroy).

namespace {

constexpr std::size_t line = 64;
constexpr std::uint64_t none = ~std::uint64_t{0};

struct alignas(line) ArenaHeader {
  std::uint32_t lock;
  std::uint64_t capacity;   // bytes after the header
  std::uint64_t free_head;  // offset (from the first block) of the first free block, or none
};

struct alignas(line) BlockHeader {
  std::uint64_t size;       // whole block, header included
  std::uint64_t next_free;  // while free: offset of the next free block, or none
  std::int64_t refs;        // while used: ranks still holding it
};

struct Arena {
  MPI_Comm node = MPI_COMM_NULL;  // the ranks of MPI_COMM_WORLD on this node
  MPI_Group node_group = MPI_GROUP_NULL;
  ArenaHeader* header = nullptr;
  char* blocks = nullptr;
};

Arena g_arena;

std::size_t arena_bytes() {
  if (const char* v = std::getenv("MPX_ARENA_BYTES"); v && *v) {
    const long long n = std::atoll(v);
    if (n >= 0) return static_cast<std::size_t>(n);
  }
  return std::size_t{4} << 20;
}

/// Segments up to this size come from the arena; larger ones get a window of their own.
constexpr std::size_t arena_limit = std::size_t{64} << 10;

class ArenaLock {
 public:
  explicit ArenaLock(ArenaHeader* h) : word_(h->lock) {
    for (int spins = 0;; ++spins) {
      std::uint32_t expected = 0;
      if (word_.load(std::memory_order_relaxed) == 0 &&
          word_.compare_exchange_weak(expected, 1, std::memory_order_acquire))
        return;
      if (spins > 64) std::this_thread::yield();
    }
  }
  ~ArenaLock() { word_.store(0, std::memory_order_release); }
  ArenaLock(const ArenaLock&) = delete;
  ArenaLock& operator=(const ArenaLock&) = delete;

 private:
  std::atomic_ref<std::uint32_t> word_;
};

BlockHeader* block_at(std::uint64_t offset) {
  return reinterpret_cast<BlockHeader*>(g_arena.blocks + offset);
}

// First fit. Returns the block's offset, or none when nothing is large enough.
std::uint64_t arena_allocate(std::size_t payload, std::int64_t refs) {
  const std::uint64_t need = sizeof(BlockHeader) + (payload + line - 1) / line * line;
  ArenaLock lock(g_arena.header);
  std::uint64_t* link = &g_arena.header->free_head;
  for (std::uint64_t at = *link; at != none; link = &block_at(at)->next_free, at = *link) {
    BlockHeader* b = block_at(at);
    if (b->size < need) continue;
    if (b->size - need >= 2 * sizeof(BlockHeader)) {  // split: the tail stays free
      auto* rest = block_at(at + need);
      rest->size = b->size - need;
      rest->next_free = b->next_free;
      *link = at + need;
      b->size = need;
    } else {
      *link = b->next_free;
    }
    b->next_free = none;
    b->refs = refs;
    std::memset(b + 1, 0, b->size - sizeof(BlockHeader));
    return at;
  }
  return none;
}

void arena_free(std::uint64_t at) {
  ArenaLock lock(g_arena.header);
  BlockHeader* b = block_at(at);
  std::uint64_t prev = none;
  std::uint64_t next = g_arena.header->free_head;
  while (next != none && next < at) prev = next, next = block_at(next)->next_free;
  b->next_free = next;
  if (next != none && at + b->size == next) {  // merge with the next free block
    b->size += block_at(next)->size;
    b->next_free = block_at(next)->next_free;
  }
  if (prev != none && prev + block_at(prev)->size == at) {  // merge into the previous one
    block_at(prev)->size += b->size;
    block_at(prev)->next_free = b->next_free;
  } else if (prev != none) {
    block_at(prev)->next_free = at;
  } else {
    g_arena.header->free_head = at;
  }
}

// True when every rank of `comm` runs on this node (local: group arithmetic only).
bool all_on_this_node(const Communicator& comm) {
  if (g_arena.node_group == MPI_GROUP_NULL) return false;
  MPI_Group group = MPI_GROUP_NULL;
  MPI_Comm_group(comm.native(), &group);
  const int size = comm.size();
  std::vector<int> ranks(static_cast<std::size_t>(size));
  std::vector<int> out(static_cast<std::size_t>(size));
  for (int r = 0; r < size; ++r) ranks[static_cast<std::size_t>(r)] = r;
  MPI_Group_translate_ranks(group, size, ranks.data(), g_arena.node_group, out.data());
  MPI_Group_free(&group);
  for (const int r : out)
    if (r == MPI_UNDEFINED) return false;
  return true;
}

}  // namespace

bool SharedSegment::disabled_by_environment() noexcept {
  const char* v = std::getenv("MPX_NO_SHARED_MEMORY");
  return v && *v && std::string(v) != "0";
}

void open_shared_arena() {
  MPI_Comm node = MPI_COMM_NULL;
  MPX_CHECK_MPI(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node),
                "Environment", "init");
  MPI_Comm_group(node, &g_arena.node_group);
  g_arena.node = node;
  int node_rank = 0;
  MPI_Comm_rank(node, &node_rank);
  // MPX_ARENA_BYTES=0 (or MPX_NO_SHARED_MEMORY=1): every segment gets a window of its own.
  // The ranks of a node decide together, so they all take the same path.
  const std::size_t bytes = arena_bytes();
  int wanted = bytes >= 4 * line && !SharedSegment::disabled_by_environment() ? 1 : 0;
  MPX_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, &wanted, 1, MPI_INT, MPI_MIN, node), "Environment",
                "init");
  if (!wanted) return;
  MPI_Info info = MPI_INFO_NULL;
  MPI_Info_create(&info);
  MPI_Info_set(info, "alloc_shared_noncontig", "false");
  void* base = nullptr;
  MPI_Win win = MPI_WIN_NULL;
  const int rc = MPI_Win_allocate_shared(static_cast<MPI_Aint>(node_rank == 0 ? bytes + line : 0), 1,
                                         info, node, &base, &win);
  MPI_Info_free(&info);
  if (rc != MPI_SUCCESS) return;  // no arena: segments get windows of their own
  register_window(win);
  MPI_Aint size = 0;
  int unit = 0;
  MPX_CHECK_MPI(MPI_Win_shared_query(win, 0, &size, &unit, &base), "Environment", "init");
  // The window need not start on a cache line, and the headers are cache-line aligned types
  // (the compiler may use aligned vector moves on them): start at rank 0's next line, which
  // is the same byte for every rank (each maps the window at a page boundary).
  std::uint64_t pad = (line - reinterpret_cast<std::uintptr_t>(base) % line) % line;
  MPX_CHECK_MPI(MPI_Bcast(&pad, 1, MPI_UINT64_T, 0, node), "Environment", "init");
  auto* header = reinterpret_cast<ArenaHeader*>(static_cast<char*>(base) + pad);
  int aligned = reinterpret_cast<std::uintptr_t>(header) % line == 0 ? 1 : 0;
  if (node_rank == 0 && aligned) {
    header->lock = 0;
    header->capacity = (bytes - sizeof(ArenaHeader)) / line * line;
    header->free_head = 0;
    auto* first = reinterpret_cast<BlockHeader*>(header + 1);
    first->size = header->capacity;
    first->next_free = none;
    first->refs = 0;
  }
  // Also orders rank 0's header writes before anyone's use.
  MPX_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, &aligned, 1, MPI_INT, MPI_MIN, node), "Environment",
                "init");
  if (!aligned) return;  // never seen; then every segment gets a window of its own
  g_arena.header = header;
  g_arena.blocks = reinterpret_cast<char*>(header + 1);
}

void close_shared_arena() noexcept {
  // The window itself is freed with the other windows (free_retired_windows).
  g_arena.header = nullptr;
  g_arena.blocks = nullptr;
  if (g_arena.node_group != MPI_GROUP_NULL) MPI_Group_free(&g_arena.node_group);
  if (g_arena.node != MPI_COMM_NULL) MPI_Comm_free(&g_arena.node);
}

std::unique_ptr<SharedSegment> SharedSegment::create(const Communicator& comm, std::size_t bytes,
                                                     std::string_view object) {
  const bool local = all_on_this_node(comm) && !disabled_by_environment();
  if (!comm.allreduce(local ? 1 : 0, minimum{})) return nullptr;
  if (g_arena.header && bytes <= arena_limit) {
    std::uint64_t at = none;
    if (comm.rank() == 0) at = arena_allocate(bytes, comm.size());
    std::atomic_thread_fence(std::memory_order_seq_cst);
    at = comm.bcast(at, 0);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (at != none)
      return std::unique_ptr<SharedSegment>(
          new SharedSegment(block_at(at) + 1, bytes, at));
  }
  // Too large for the arena (or it is full): a window of its own, freed when the
  // Environment ends.
  MPI_Comm node = MPI_COMM_NULL;
  MPX_CHECK_MPI(MPI_Comm_split_type(comm.native(), MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node),
                object, "create");
  MPI_Info info = MPI_INFO_NULL;
  MPI_Info_create(&info);
  MPI_Info_set(info, "alloc_shared_noncontig", "false");
  void* base = nullptr;
  MPI_Win win = MPI_WIN_NULL;
  const auto mine = static_cast<MPI_Aint>(comm.rank() == 0 ? bytes : 0);
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
  return std::unique_ptr<SharedSegment>(new SharedSegment(base, bytes, none));
}

SharedSegment::~SharedSegment() {
  if (block_ == none || !g_arena.header) return;
  auto* b = block_at(block_);
  // The last rank to let go returns the block (its memory is no longer read by anyone).
  if (std::atomic_ref<std::int64_t>(b->refs).fetch_sub(1, std::memory_order_acq_rel) == 1)
    arena_free(block_);
}

std::size_t shared_arena_free_bytes() noexcept {
  if (!g_arena.header) return 0;
  ArenaLock lock(g_arena.header);
  std::size_t total = 0;
  for (std::uint64_t at = g_arena.header->free_head; at != none; at = block_at(at)->next_free)
    total += block_at(at)->size;
  return total;
}

}  // namespace mpx::detail
