#include "mpx/dict.hpp"

#include <array>
#include <atomic>
#include <string>

#include "mpx/detail/check.hpp"

namespace mpx::detail {

namespace {
std::atomic<int> g_dict_count{0};
std::atomic<int> g_namespace_count{0};
}  // namespace

DictCore::DictCore(std::string_view kind, int key_fingerprint, int value_fingerprint,
                   const std::string& key_name, const std::string& value_name,
                   const Communicator& comm, HostedState::Handler handler) {
  const bool is_dict = kind == "Dict";
  name_ = std::string(kind) + "#" + std::to_string(++(is_dict ? g_dict_count : g_namespace_count));
  // Every rank must create the same dictionary; all ranks compare, so all fail together.
  const std::array<int, 3> mine{is_dict ? 1 : 2, key_fingerprint, value_fingerprint};
  const auto all = comm.allgather(mine);
  for (std::size_t r = 1; r < all.size(); ++r) {
    if (all[r][0] != all[0][0])
      fail(name_, "create",
           "rank 0 creates a " + std::string(all[0][0] == 1 ? "Dict" : "Namespace") + " but rank " +
               std::to_string(r) + " a " + (all[r][0] == 1 ? "Dict" : "Namespace") +
               "; every rank must create the same objects in the same order");
    if (all[r][1] != all[0][1] || all[r][2] != all[0][2])
      fail(name_, "create",
           "ranks disagree on the key or value type: rank 0 and rank " + std::to_string(r) +
               " passed different types (this rank: Dict<" + key_name + ", " + value_name +
               ">); every rank must create it with the same types, in the same order");
  }
  comm_ = std::make_unique<Communicator>(comm.duplicate(name_));
  state_ = std::make_unique<HostedState>(*comm_, 0, std::move(handler));
}

DictCore::~DictCore() { state_.reset(); }

HostedReply DictCore::call(const std::vector<char>& request, std::string_view operation) {
  return state_->call(request, operation);
}

void DictCore::missing(std::string_view operation, std::string_view key_text) const {
  if (name_.starts_with("Namespace"))
    fail<KeyError>(name_, operation,
                   std::string(key_text) + " is not set; set() it first, or check contains()");
  fail<KeyError>(name_, operation,
                 std::string(key_text) +
                     " is not in the dictionary; check contains() first, or use get(key), which "
                     "returns std::optional, or get(key, fallback)");
}

}  // namespace mpx::detail
