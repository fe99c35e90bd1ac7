#include "mpx/shared.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <limits>
#include <string>

#include "mpx/detail/check.hpp"
#include "mpx/detail/hosted.hpp"
#include "mpx/detail/sync_core.hpp"

// Set to 1 once mpx::Lock is part of the library (lib/src/sync_core.cpp).
#ifndef MPX_SHARED_WITH_LOCK
#define MPX_SHARED_WITH_LOCK 1
#endif

namespace mpx::detail {

namespace {

std::atomic<int> g_value_count{0};
std::atomic<int> g_array_count{0};

enum class CellOp : std::uint8_t { load = 1, store = 2, add = 3, exchange = 4, cas = 5 };

/// Fixed header of a request on the served path, followed by the operands.
struct CellRequest {
  CellOp op;
  std::uint8_t unused[7];
  std::uint64_t index;
  std::uint64_t count;
};

/// This node's physical memory in bytes (0 if unknown): no object can be larger.
std::int64_t physical_memory_bytes() noexcept {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return 0;
  return static_cast<std::int64_t>(pages) * page;
}

std::vector<char> make_request(CellOp op, std::size_t index, std::size_t count,
                               std::size_t payload) {
  std::vector<char> out(sizeof(CellRequest) + payload);
  CellRequest header{};
  header.op = op;
  header.index = index;
  header.count = count;
  std::memcpy(out.data(), &header, sizeof header);
  return out;
}

}  // namespace

SharedCells::SharedCells(std::string_view kind, CellType type, std::size_t count, const void* init,
                         const Communicator& comm, SharedOptions options)
    : type_(std::move(type)), count_(count) {
  const bool is_value = kind == "Value";  // "Value" or "Array"
  name_ = std::string(kind) + "#" + std::to_string(++(is_value ? g_value_count : g_array_count));

  // Every rank must create the same object, or some would serve or wait for nothing. All
  // ranks compare the same table, so all of them fail together; only then are the (now
  // common) arguments checked, so a bad size on one rank fails every rank too.
  const auto all =
      gather_creation(comm, name_,
                      {static_cast<std::int64_t>(type_.size), static_cast<std::int64_t>(count),
                       type_.fingerprint, options.lock ? 1 : 0, physical_memory_bytes()});
  std::int64_t smallest_memory = 0;  // 0: unknown
  for (const auto& p : all)
    if (p[4] > 0 && (smallest_memory == 0 || p[4] < smallest_memory)) smallest_memory = p[4];
  for (std::size_t r = 1; r < all.size(); ++r) {
    const auto& a = all[0];
    const auto& b = all[r];
    if (a[0] != b[0] || a[2] != b[2])
      fail(name_, "create",
           "ranks disagree on the element type: rank 0 and rank " + std::to_string(r) +
               " passed different types (this rank: " + type_.name + ", " +
               std::to_string(type_.size) +
               " bytes); every rank must create it with the same T, in the same order");
    if (a[1] != b[1])
      fail(name_, "create",
           "ranks disagree on the length: rank 0 asked for " +
               std::to_string(static_cast<std::uint64_t>(a[1])) + " elements, rank " +
               std::to_string(r) + " for " + std::to_string(static_cast<std::uint64_t>(b[1])) +
               "; every rank must pass the same size");
    if (a[3] != b[3])
      fail(name_, "create",
           "ranks disagree on SharedOptions::lock (rank 0: " + std::to_string(a[3]) + ", rank " +
               std::to_string(r) + ": " + std::to_string(b[3]) +
               "); pass the same options everywhere");
  }
  constexpr std::size_t line = 64;  // elements start on a cache line: atomics need alignment
  if (count > (std::numeric_limits<std::size_t>::max() - line) / type_.size ||
      (smallest_memory > 0 && count * type_.size > static_cast<std::uint64_t>(smallest_memory)))
    fail(name_, "create",
         "a length of " + std::to_string(count) + " elements of " + type_.name + " (" +
             std::to_string(type_.size) + " bytes each) is too large: the smallest node has " +
             std::to_string(smallest_memory) +
             " bytes of memory (a negative length converted to std::size_t becomes huge); pass "
             "the number of elements you need");

  comm_ = std::make_unique<Communicator>(comm.duplicate(name_));
  const std::size_t bytes = count * type_.size;
  segment_ = SharedSegment::create(*comm_, bytes + line, name_);
  if (segment_) {
    // The window need not start on a cache line. Every rank maps it at a page boundary plus
    // the same offset, so rank 0's padding is everyone's.
    const auto base = reinterpret_cast<std::uintptr_t>(segment_->data());
    const auto pad = comm_->bcast(static_cast<std::uint64_t>((line - base % line) % line), 0);
    data_ = static_cast<std::byte*>(segment_->data()) + pad;
    const int misaligned =
        comm_->allreduce(reinterpret_cast<std::uintptr_t>(data_) % line != 0 ? 1 : 0, maximum{});
    if (misaligned)
      fail(name_, "create",
           "the shared-memory window is mapped at different cache-line offsets on different ranks");
    if (comm_->rank() == 0 && init && bytes > 0) std::memcpy(data_, init, bytes);
    comm_->barrier();  // nobody reads before rank 0 wrote the initial values
  } else {
    if (comm_->rank() == 0) {
      hosted_.assign(bytes, std::byte{0});
      if (init && bytes > 0) std::memcpy(hosted_.data(), init, bytes);
    }
    state_ = std::make_unique<HostedState>(
        *comm_, 0, [this](std::span<const char> request, std::vector<char>& reply) {
          handle(request, reply);
        });
  }
#if MPX_SHARED_WITH_LOCK
  if (options.lock) lock_ = std::make_unique<Lock>(comm);
#endif
}

SharedCells::~SharedCells() {
  lock_.reset();
  state_.reset();  // the host serves until every rank has let go
}

Lock& SharedCells::lock(std::string_view operation) {
#if MPX_SHARED_WITH_LOCK
  if (!lock_)
    fail(name_, operation,
         "this object was created with SharedOptions{.lock = false}, so it has no lock; create it "
         "with the default options, or use a separate mpx::Lock");
  return *lock_;
#else
  fail(name_, operation, "get_lock() is not available in this build of mpx (no mpx::Lock yet)");
#endif
}

void SharedCells::check_index(std::size_t index, std::string_view operation) const {
  if (index < count_) return;
  fail(name_, operation,
       "index " + std::to_string(index) + " is out of range: the object has " +
           std::to_string(count_) + " element(s), numbered 0.." +
           (count_ == 0 ? std::string("(none)") : std::to_string(count_ - 1)));
}

void SharedCells::check_range(std::size_t begin, std::size_t end,
                              std::string_view operation) const {
  if (begin <= end && end <= count_) return;
  fail(name_, operation,
       "range [" + std::to_string(begin) + ", " + std::to_string(end) +
           ") is out of range: the object has " + std::to_string(count_) +
           " element(s); pass begin <= end <= size()");
}

// ---- served path: the requests ----------------------------------------------------------

namespace {
void expect_payload(const HostedReply& reply, std::size_t bytes, const std::string& name,
                    std::string_view operation) {
  if (reply.payload().size() != bytes)
    fail<Error>(name, operation,
                "the host replied with " + std::to_string(reply.payload().size()) +
                    " bytes, expected " + std::to_string(bytes));
}
}  // namespace

void SharedCells::load(std::size_t index, std::size_t n, void* out) {
  auto request = make_request(CellOp::load, index, n, 0);
  const auto reply = state_->call(request, "load");
  expect_payload(reply, n * type_.size, name_, "load");
  std::memcpy(out, reply.payload().data(), n * type_.size);
}

void SharedCells::store(std::size_t index, std::size_t n, const void* in) {
  auto request = make_request(CellOp::store, index, n, n * type_.size);
  std::memcpy(request.data() + sizeof(CellRequest), in, n * type_.size);
  (void)state_->call(request, "store");
}

void SharedCells::fetch_add(std::size_t index, const void* operand, void* old) {
  auto request = make_request(CellOp::add, index, 1, type_.size);
  std::memcpy(request.data() + sizeof(CellRequest), operand, type_.size);
  const auto reply = state_->call(request, "fetch_add");
  expect_payload(reply, type_.size, name_, "fetch_add");
  std::memcpy(old, reply.payload().data(), type_.size);
}

void SharedCells::exchange(std::size_t index, const void* desired, void* old) {
  auto request = make_request(CellOp::exchange, index, 1, type_.size);
  std::memcpy(request.data() + sizeof(CellRequest), desired, type_.size);
  const auto reply = state_->call(request, "exchange");
  expect_payload(reply, type_.size, name_, "exchange");
  std::memcpy(old, reply.payload().data(), type_.size);
}

bool SharedCells::compare_exchange(std::size_t index, void* expected, const void* desired) {
  auto request = make_request(CellOp::cas, index, 1, 2 * type_.size);
  std::memcpy(request.data() + sizeof(CellRequest), expected, type_.size);
  std::memcpy(request.data() + sizeof(CellRequest) + type_.size, desired, type_.size);
  const auto reply = state_->call(request, "compare_exchange");
  expect_payload(reply, 1 + type_.size, name_, "compare_exchange");
  const bool swapped = reply.payload()[0] != 0;
  if (!swapped) std::memcpy(expected, reply.payload().data() + 1, type_.size);
  return swapped;
}

// ---- served path: the host ----------------------------------------------------------------

void SharedCells::handle(std::span<const char> request, std::vector<char>& reply) {
  if (request.size() < sizeof(CellRequest))
    fail(name_, "serve", "malformed request of " + std::to_string(request.size()) + " bytes");
  CellRequest header{};
  std::memcpy(&header, request.data(), sizeof header);
  const auto operands = request.subspan(sizeof(CellRequest));
  const std::size_t size = type_.size;
  if (header.index > count_ || header.count > count_ - header.index)
    fail(name_, "serve", "request for elements out of range");
  char* cell = reinterpret_cast<char*>(hosted_.data()) + header.index * size;
  const std::size_t span_bytes = header.count * size;
  auto need = [&](std::size_t bytes) {
    if (operands.size() != bytes)
      fail(name_, "serve",
           "malformed request: " + std::to_string(operands.size()) + " operand bytes, expected " +
               std::to_string(bytes));
  };
  switch (header.op) {
    case CellOp::load:
      reply.insert(reply.end(), cell, cell + span_bytes);
      return;
    case CellOp::store:
      need(span_bytes);
      if (span_bytes) std::memcpy(cell, operands.data(), span_bytes);
      return;
    case CellOp::add:
      need(size);
      if (!type_.add)
        fail(name_, "fetch_add", "the element type " + type_.name + " cannot be added");
      reply.insert(reply.end(), cell, cell + size);
      type_.add(cell, operands.data());
      return;
    case CellOp::exchange:
      need(size);
      reply.insert(reply.end(), cell, cell + size);
      std::memcpy(cell, operands.data(), size);
      return;
    case CellOp::cas: {
      need(2 * size);
      const bool equal = std::memcmp(cell, operands.data(), size) == 0;
      reply.push_back(equal ? 1 : 0);
      reply.insert(reply.end(), cell, cell + size);  // the value before the exchange
      if (equal) std::memcpy(cell, operands.data() + size, size);
      return;
    }
  }
  fail(name_, "serve", "unknown request " + std::to_string(static_cast<int>(header.op)));
}

}  // namespace mpx::detail
