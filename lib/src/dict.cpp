#include "mpx/dict.hpp"

#include <array>
#include <atomic>
#include <string>

#include "mpx/detail/check.hpp"
#include "mpx/detail/sync_core.hpp"
#include "mpx/detail/type_id.hpp"

namespace mpx::detail {

namespace {
// The kinds of hosted containers, each with its own object counter ("Dict#3").
constexpr std::array<std::string_view, 3> kinds{"Dict", "Namespace", "List"};
std::array<std::atomic<int>, 3> g_counts{};
int kind_id(std::string_view kind) {
  for (std::size_t i = 0; i < kinds.size(); ++i)
    if (kinds[i] == kind) return static_cast<int>(i);
  return 0;
}
}  // namespace

DictCore::DictCore(std::string_view kind, int key_fingerprint, int value_fingerprint,
                   const std::string& key_name, const std::string& value_name,
                   const Communicator& comm, HostedState::Handler handler) {
  const int id = kind_id(kind);
  name_ = std::string(kinds[static_cast<std::size_t>(id)]) + "#" +
          std::to_string(++g_counts[static_cast<std::size_t>(id)]);
  // Every rank must create the same container; all ranks compare, so all fail together.
  // The fingerprints name the wire types, which some types share (std::string and
  // std::vector<char>); entries travel as Boost archives, which differ for those, so the
  // exact type names are compared too.
  const auto all = gather_creation(
      comm, name_, {key_fingerprint, value_fingerprint, fnv1a(key_name), fnv1a(value_name)});
  for (std::size_t r = 1; r < all.size(); ++r) {
    if (all[r] != all[0])
      fail(name_, "create",
           "ranks disagree on the key or value type: rank 0 and rank " + std::to_string(r) +
               " passed different types (this rank: " + std::string(kind) + "<" +
               (id == 2 ? key_name : key_name + ", " + value_name) +
               ">); every rank must create it with the same types, in the same order");
  }
  comm_ = std::make_unique<Communicator>(comm.duplicate(name_));
  state_ = std::make_unique<HostedState>(*comm_, 0, std::move(handler));
}

DictCore::~DictCore() { state_.reset(); }

HostedReply DictCore::call(const std::vector<char>& request, std::string_view operation) {
  return state_->call(request, operation);
}

void DictCore::moved_from(std::string_view kind, std::string_view operation) {
  fail(std::string(kind) + "(moved-from)", operation,
       "this " + std::string(kind) + " was moved from; use the object it was moved to");
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
