#include "mpx/detail/sync_core.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "mpx/detail/check.hpp"
#include "mpx/detail/creation.hpp"
#include "mpx/detail/progress.hpp"
#include "mpx/environment.hpp"

namespace mpx::detail {

namespace {

constexpr int request_tag = 0;
constexpr std::int32_t cancel_op = -1;   // a = id of the request to abandon
constexpr std::int32_t bye_op = -2;      // this rank's object is being destroyed
constexpr std::size_t guard_bytes = 64;  // guard word alone on its cache line

int reply_tag(std::uint64_t id) noexcept { return 1 + static_cast<int>(id % 32000u); }

std::atomic<unsigned> g_thread_count{0};

// Short critical sections only: the guard protects a handful of integer updates.
void lock_guard_word(std::uint32_t& word) noexcept {
  std::atomic_ref<std::uint32_t> g(word);
  std::uint32_t expected = 0;
  if (g.compare_exchange_weak(expected, 1, std::memory_order_acquire, std::memory_order_relaxed))
    return;
  Backoff backoff;
  for (;;) {
    expected = 0;
    if (g.load(std::memory_order_relaxed) == 0 &&
        g.compare_exchange_weak(expected, 1, std::memory_order_acquire, std::memory_order_relaxed))
      return;
    backoff.pause();
  }
}
void unlock_guard_word(std::uint32_t& word) noexcept {
  std::atomic_ref<std::uint32_t>(word).store(0, std::memory_order_release);
}

std::mutex g_names_mutex;
std::map<std::string, int, std::less<>> g_names;

}  // namespace

std::uint64_t make_thread_token() noexcept {
  thread_local const unsigned thread = ++g_thread_count;
  const int rank = world_rank_or_minus_one();
  const std::uint64_t token = (static_cast<std::uint64_t>(rank + 1) << 32) | thread;
  if (rank >= 0) t_thread_token = token;  // cache only once the rank is known
  return token;
}

std::string describe_token(std::uint64_t token) {
  if (token == 0) return "nobody";
  return "rank " + std::to_string(token_rank(token)) + " (thread " +
         std::to_string(token_thread(token)) + ")";
}

std::string next_object_name(std::string_view type) {
  std::lock_guard lock(g_names_mutex);
  auto it = g_names.find(type);
  if (it == g_names.end()) it = g_names.emplace(std::string(type), 0).first;
  return std::string(type) + "#" + std::to_string(++it->second);
}

std::vector<std::vector<std::int64_t>> gather_creation(const Communicator& comm,
                                                       std::string_view object,
                                                       const std::vector<std::int64_t>& params) {
  // The record: the kind ("Lock"), a zero byte, the parameters. Records of different sizes
  // (another kind of mpx object doing its own collective here) are caught as well.
  const std::string_view kind = object.substr(0, object.find('#'));
  std::vector<char> mine(kind.begin(), kind.end());
  mine.push_back('\0');
  const auto* bytes = reinterpret_cast<const char*>(params.data());
  mine.insert(mine.end(), bytes, bytes + params.size() * sizeof(std::int64_t));
  // A rank creating a Pipe or Queue here gathers another type: gather_parameters turns
  // that TypeMismatch into the same UsageError the other side gets.
  const auto all = gather_parameters(comm, mine, std::string(object));
  std::vector<std::vector<std::int64_t>> out(all.size());
  for (std::size_t r = 0; r < all.size(); ++r) {
    const auto& record = all[r];
    const auto zero = std::find(record.begin(), record.end(), '\0');
    const auto rest = static_cast<std::size_t>(record.end() - zero);
    const std::string_view theirs(record.data(), static_cast<std::size_t>(zero - record.begin()));
    if (zero == record.end() || theirs != kind || rest != mine.size() - kind.size())
      fail(object, "create",
           "rank " + std::to_string(r) + " creates " +
               (zero == record.end() || theirs.empty() ? std::string("another kind of object")
                                                       : "an mpx::" + std::string(theirs)) +
               " where this rank creates an mpx::" + std::string(kind) +
               "; every rank must create the same objects, with the same arguments, in the same "
               "order");
    out[r].resize(params.size());
    if (!params.empty())
      std::memcpy(out[r].data(), &*zero + 1, params.size() * sizeof(std::int64_t));
  }
  return out;
}

void check_same_everywhere(const Communicator& comm, std::string_view object, std::string_view what,
                           std::int64_t v0, std::int64_t v1, std::int64_t v2) {
  const auto all = gather_creation(comm, object, {v0, v1, v2});
  for (std::size_t r = 1; r < all.size(); ++r) {
    if (all[r] == all[0]) continue;
    // One argument (the others zero everywhere) prints as "2", several as "(2, 0, -1)".
    const bool single =
        std::all_of(all.begin(), all.end(), [](const auto& p) { return p[1] == 0 && p[2] == 0; });
    auto show = [single](const std::vector<std::int64_t>& p) {
      if (single) return std::to_string(p[0]);
      return "(" + std::to_string(p[0]) + ", " + std::to_string(p[1]) + ", " +
             std::to_string(p[2]) + ")";
    };
    fail(object, "create",
         "ranks disagree on " + std::string(what) + ": rank 0 passed " + show(all[0]) +
             " but rank " + std::to_string(r) + " passed " + show(all[r]) +
             "; every rank must create the same objects with the same arguments, in the same "
             "order");
  }
}

// ---- host path ------------------------------------------------------------------------------

/// Keeps the state on the host rank and answers requests on the progress thread.
class SyncCore::Host final : public Service {
 public:
  Host(SyncCore& core) : core_(core), state_(core.machine_->state_bytes() / 8 + 1, 0) {
    core_.machine_->init(state_.data());
  }
  ~Host() override = default;
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  bool progress() override {
    bool worked = false;
    for (int n = 0; n < 64; ++n) {
      const auto status = core_.comm_.iprobe(Communicator::any_source, request_tag);
      if (!status) break;
      const auto req = core_.comm_.recv<SyncRequest>(status->source, request_tag);
      handle(req, status->source);
      worked = true;
    }
    sends_.erase(
        std::remove_if(sends_.begin(), sends_.end(), [](Future<void>& f) { return f.test(); }),
        sends_.end());
    return worked;
  }
  [[nodiscard]] const char* service_name() const noexcept override { return core_.name_.c_str(); }

  /// Number of ranks that have said goodbye (read by the destructor on the host's own rank).
  std::atomic<int> byes{0};

 private:
  struct Pending {
    int source;
    SyncRequest req;
  };

  void reply(int dest, SyncReply r, std::uint64_t id) {
    r.id = id;
    sends_.push_back(core_.comm_.isend(r, dest, reply_tag(id)));
  }

  void handle(const SyncRequest& req, int source) {
    const SyncMachine& m = *core_.machine_;
    if (req.op == bye_op) {
      byes.fetch_add(1);
      return;
    }
    if (req.op == cancel_op) {
      for (auto it = pending_.begin(); it != pending_.end(); ++it) {
        if (it->source != source || it->req.id != static_cast<std::uint64_t>(req.a)) continue;
        const Pending p = *it;
        pending_.erase(it);
        const SyncReply r = m.abandon(state_.data(), p.req);
        reply(source, r, p.req.id);
        if (r.status != SyncStatus::cancelled) rescan();  // abandon may change state (Barrier)
        return;
      }
      return;  // already answered: the answer is on its way
    }
    const SyncReply r = m.apply(state_.data(), req);
    if (r.status == SyncStatus::blocked && !(req.flags & sync_no_wait)) {
      pending_.push_back({source, req});
      return;
    }
    reply(source, r, req.id);
    if (r.status != SyncStatus::blocked) rescan();
  }

  // The state changed: answer, oldest first, every queued request that can now proceed.
  void rescan() {
    const SyncMachine& m = *core_.machine_;
    bool again = true;
    while (again) {
      again = false;
      for (auto it = pending_.begin(); it != pending_.end(); ++it) {
        const SyncReply r = m.apply(state_.data(), it->req);
        if (r.status == SyncStatus::blocked) continue;
        const Pending p = *it;
        pending_.erase(it);
        reply(p.source, r, p.req.id);
        again = true;
        break;
      }
    }
  }

  SyncCore& core_;
  std::vector<std::uint64_t> state_;
  std::deque<Pending> pending_;
  std::vector<Future<void>> sends_;
};

// ---- SyncCore ------------------------------------------------------------------------------

namespace {
// The object's communicator, once every rank has been seen to create the same kind of object.
Communicator checked_duplicate(const Communicator& comm, const std::string& name, bool checked) {
  if (!checked) (void)gather_creation(comm, name, {});
  return comm.duplicate(name);
}
}  // namespace

SyncCore::SyncCore(const Communicator& comm, std::string name, std::unique_ptr<SyncMachine> machine,
                   bool checked)
    : name_(std::move(name)),
      comm_(checked_duplicate(comm, name_, checked)),
      machine_(std::move(machine)) {
  segment_ = SharedSegment::create(comm_, guard_bytes + machine_->state_bytes(), name_);
  if (segment_) {
    if (comm_.rank() == 0) machine_->init(state());
    comm_.barrier();  // nobody operates before the state is initialised
  } else if (comm_.rank() == host()) {
    host_ = std::make_unique<Host>(*this);
    ProgressEngine::instance().attach(*host_);
  }
}

SyncCore::~SyncCore() {
  if (segment_ || !Environment::active()) {
    if (host_) ProgressEngine::instance().detach(*host_);
    return;
  }
  // Host path: the host keeps serving until every other rank has reached its destructor, so
  // a late release() from a peer is still answered. Skipped while an exception unwinds (the
  // job is ending anyway; waiting could hang it).
  try {
    if (comm_.rank() != host()) {
      SyncRequest bye;
      bye.op = bye_op;
      comm_.send(bye, host(), request_tag);
    } else if (std::uncaught_exceptions() == 0) {
      wait_until([&] { return host_->byes.load() >= comm_.size() - 1; }, no_deadline,
                 {name_, "destroy", -1});
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
  }
  if (host_) ProgressEngine::instance().detach(*host_);
}

void* SyncCore::state() const noexcept {
  return segment_ ? static_cast<char*>(segment_->data()) + guard_bytes : nullptr;
}

SyncReply SyncCore::apply_shared(const SyncRequest& req, bool abandon) {
  auto& guard = *static_cast<std::uint32_t*>(segment_->data());
  lock_guard_word(guard);
  const SyncReply r = abandon ? machine_->abandon(state(), req) : machine_->apply(state(), req);
  unlock_guard_word(guard);
  return r;
}

SyncReply SyncCore::try_once(SyncRequest req) {
  req.flags |= sync_no_wait;
  if (segment_) return apply_shared(req, false);
  return call_remote(req, no_deadline, "call");
}

SyncReply SyncCore::call(SyncRequest req, Clock::time_point deadline, std::string_view operation) {
  if (!segment_) return call_remote(req, deadline, operation);
  SyncReply r = apply_shared(req, false);
  if (r.status != SyncStatus::blocked) return r;
  const bool ok = wait_until(
      [&] {
        r = apply_shared(req, false);
        return r.status != SyncStatus::blocked;
      },
      deadline, {name_, operation, -1});
  if (ok) return r;
  return apply_shared(req, true);
}

SyncReply SyncCore::call_remote(SyncRequest req, Clock::time_point deadline,
                                std::string_view operation) {
  req.id = next_id_.fetch_add(1, std::memory_order_relaxed);
  const int tag = reply_tag(req.id);
  auto answer = comm_.irecv<SyncReply>(host(), tag);
  {
    auto sent = comm_.isend(req, host(), request_tag);
    if (comm_.rank() == host()) ProgressEngine::instance().wake();
    const WaitSite site{name_, operation, host()};
    wait_until([&] { return sent.test(); }, no_deadline, site);
  }
  const WaitSite site{name_, operation, host()};
  if (!wait_until([&] { return answer.test(); }, deadline, site)) {
    SyncRequest cancel;
    cancel.op = cancel_op;
    cancel.a = static_cast<std::int64_t>(req.id);
    auto sent = comm_.isend(cancel, host(), request_tag);
    if (comm_.rank() == host()) ProgressEngine::instance().wake();
    wait_until([&] { return sent.test(); }, no_deadline, site);
    answer.wait();  // the grant (it raced the timeout) or the cancellation
  }
  return answer.get();
}

}  // namespace mpx::detail
