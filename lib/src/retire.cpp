#include "mpx/detail/retire.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "mpx/detail/check.hpp"
#include "mpx/detail/progress.hpp"
#include "mpx/detail/wait.hpp"

namespace mpx::detail {

namespace {

constexpr int notice_tag = 11;     // on the channel: the payload is the retired id
constexpr int flush_tag = 1 << 30;  // on the retired communicator: above every wire tag
                                    // (user tag | fingerprint << 15 stays below 2^30)

// One communicator this rank retired, on its way to MPI_Comm_free.
struct Retired {
  MPI_Comm comm = MPI_COMM_NULL;
  std::uint64_t id = 0;
  std::vector<int> peers_world;  // the other members, as world ranks (who must send notices)
  std::vector<int> peers_local;  // the same members, as ranks of `comm` (for the flush)
  std::vector<MPI_Request> sends;         // this rank's notices, then its flush messages
  std::vector<MPI_Request> flush_recvs;   // one per peer, posted once all notices are in
  bool flushing = false;
  char flush_out = 0;
  std::vector<char> flush_in;
};

class Retirement final : public Service {
 public:
  bool progress() override {
    std::lock_guard lock(mutex_);
    bool worked = receive_notices();
    for (auto it = retired_.begin(); it != retired_.end();) {
      if (advance(*it)) {
        worked = true;
        it = retired_.erase(it);
      } else {
        ++it;
      }
    }
    return worked;
  }
  [[nodiscard]] const char* service_name() const noexcept override { return "retirement"; }

  void open() {
    MPI_Comm channel = MPI_COMM_NULL;
    MPX_CHECK_MPI(MPI_Comm_dup(MPI_COMM_WORLD, &channel), "Environment", "init");
    MPI_Comm_set_errhandler(channel, MPI_ERRORS_RETURN);
    void* value = nullptr;
    int flag = 0;
    MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &value, &flag);
    const bool tags_fit = flag && *static_cast<int*>(value) >= flush_tag;
    if (keyval_ == MPI_KEYVAL_INVALID)
      MPX_CHECK_MPI(MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, MPI_COMM_NULL_DELETE_FN, &keyval_,
                                           nullptr),
                    "Environment", "init");
    std::lock_guard lock(mutex_);
    if (world_group_ == MPI_GROUP_NULL) MPI_Comm_group(MPI_COMM_WORLD, &world_group_);
    channel_ = tags_fit ? channel : MPI_COMM_NULL;
    if (!tags_fit) MPI_Comm_free(&channel);
    mode_ = tags_fit ? Mode::retire : Mode::keep;
  }

  void register_comm(MPI_Comm comm) {
    if (mode() != Mode::retire) return;
    // The id: larger than any this rank used before, agreed by every member, so a rank's
    // ids never repeat and the members of one communicator all call it the same.
    std::uint64_t mine = next_id_.load();
    std::uint64_t agreed = 0;
    MPI_Request request = MPI_REQUEST_NULL;
    MPX_CHECK_MPI(MPI_Iallreduce(&mine, &agreed, 1, MPI_UINT64_T, MPI_MAX, comm, &request),
                  "Communicator", "create");
    wait_until(
        [&] {
          int done = 0;
          MPX_CHECK_MPI(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "Communicator", "create");
          return done != 0;
        },
        no_deadline, {"Communicator", "create", -1, comm, true});
    next_id_.store(agreed + 1);
    MPX_CHECK_MPI(MPI_Comm_set_attr(comm, keyval_, reinterpret_cast<void*>(static_cast<std::uintptr_t>(agreed))),
                  "Communicator", "create");
  }

  // false: the caller keeps the communicator for the end of the Environment.
  bool retire(MPI_Comm comm) {
    void* value = nullptr;
    int flag = 0;
    if (MPI_Comm_get_attr(comm, keyval_, &value, &flag) != MPI_SUCCESS || !flag) return false;
    Retired entry;
    entry.comm = comm;
    entry.id = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(value));
    MPI_Comm_delete_attr(comm, keyval_);
    int size = 0;
    int me = 0;
    MPI_Comm_size(comm, &size);
    MPI_Comm_rank(comm, &me);
    MPI_Group group = MPI_GROUP_NULL;
    MPI_Comm_group(comm, &group);
    for (int r = 0; r < size; ++r) {
      if (r == me) continue;
      int world = MPI_UNDEFINED;
      MPI_Group_translate_ranks(group, 1, &r, world_group_, &world);
      if (world == MPI_UNDEFINED) {  // a member outside MPI_COMM_WORLD: keep it for the end
        MPI_Group_free(&group);
        return false;
      }
      entry.peers_local.push_back(r);
      entry.peers_world.push_back(world);
    }
    MPI_Group_free(&group);
    std::lock_guard lock(mutex_);
    if (mode_ != Mode::retire) return false;
    Retired& e = retired_.emplace_back(std::move(entry));
    for (const int world : e.peers_world) {
      MPI_Request request = MPI_REQUEST_NULL;
      if (MPI_Isend(&e.id, 1, MPI_UINT64_T, world, notice_tag, channel_, &request) == MPI_SUCCESS)
        e.sends.push_back(request);
    }
    return true;
  }

  // Called by retire_communicator after retire(), without mutex_ held (attach takes the
  // engine's lock, which the engine holds while it calls progress()). On the engine thread
  // itself attaching would deadlock: the next retirement from another thread attaches.
  void ensure_attached() {
    bool attach = false;
    if (!ProgressEngine::instance().on_engine_thread()) {
      std::lock_guard lock(mutex_);
      attach = !attached_;
      attached_ = true;
    }
    if (attach) ProgressEngine::instance().attach(*this);
    ProgressEngine::instance().wake();
  }

  void close() noexcept {
    bool was_attached = false;
    {
      std::lock_guard lock(mutex_);
      was_attached = attached_;
      attached_ = false;
    }
    if (was_attached) ProgressEngine::instance().detach(*this);
    std::lock_guard lock(mutex_);
    for (Retired& e : retired_) {
      for (MPI_Request& r : e.flush_recvs)
        if (r != MPI_REQUEST_NULL) {
          MPI_Cancel(&r);
          MPI_Wait(&r, MPI_STATUS_IGNORE);
        }
      for (MPI_Request& r : e.sends)
        if (r != MPI_REQUEST_NULL) MPI_Request_free(&r);
      MPI_Comm_free(&e.comm);
    }
    retired_.clear();
    notices_.clear();
    // The channel is left to MPI_Finalize: notices from other ranks may still be in flight.
    channel_ = MPI_COMM_NULL;
    mode_ = Mode::closed;
    if (world_group_ != MPI_GROUP_NULL) MPI_Group_free(&world_group_);
  }

  std::size_t pending() {
    std::lock_guard lock(mutex_);
    return retired_.size();
  }

  /// closed: no Environment (free at once: nothing new will be created); keep: free when
  /// the Environment ends; retire: the protocol above.
  enum class Mode { closed, keep, retire };
  Mode mode() {
    std::lock_guard lock(mutex_);
    return mode_;
  }

 private:
  bool receive_notices() {
    bool any = false;
    for (;;) {
      int found = 0;
      MPI_Message message = MPI_MESSAGE_NULL;
      MPI_Status status{};
      if (MPI_Improbe(MPI_ANY_SOURCE, notice_tag, channel_, &found, &message, &status) !=
              MPI_SUCCESS ||
          !found)
        return any;
      std::uint64_t id = 0;
      MPI_Mrecv(&id, 1, MPI_UINT64_T, &message, MPI_STATUS_IGNORE);
      notices_[id].push_back(status.MPI_SOURCE);
      any = true;
    }
  }

  // Moves one retired communicator on; true once it is freed.
  bool advance(Retired& e) {
    if (!e.flushing) {
      auto it = notices_.find(e.id);
      const std::size_t have = it == notices_.end() ? 0 : it->second.size();
      if (have < e.peers_world.size()) return false;
      notices_.erase(it);
      // Every member has let go: nobody sends on `comm` or has a receive posted there.
      e.flushing = true;
      e.flush_in.resize(e.peers_local.size());
      for (std::size_t i = 0; i < e.peers_local.size(); ++i) {
        MPI_Request out = MPI_REQUEST_NULL;
        MPI_Request in = MPI_REQUEST_NULL;
        MPI_Isend(&e.flush_out, 1, MPI_CHAR, e.peers_local[i], flush_tag, e.comm, &out);
        MPI_Irecv(&e.flush_in[i], 1, MPI_CHAR, e.peers_local[i], flush_tag, e.comm, &in);
        e.sends.push_back(out);
        e.flush_recvs.push_back(in);
      }
    }
    int done = 0;
    MPI_Testall(static_cast<int>(e.flush_recvs.size()), e.flush_recvs.data(), &done,
                MPI_STATUSES_IGNORE);
    if (!done) return false;
    discard_leftovers(e.comm);
    MPI_Testall(static_cast<int>(e.sends.size()), e.sends.data(), &done, MPI_STATUSES_IGNORE);
    if (!done) return false;
    MPI_Comm_free(&e.comm);
    return true;
  }

  std::mutex mutex_;
  MPI_Comm channel_ = MPI_COMM_NULL;
  Mode mode_ = Mode::closed;
  MPI_Group world_group_ = MPI_GROUP_NULL;
  int keyval_ = MPI_KEYVAL_INVALID;
  std::atomic<std::uint64_t> next_id_{1};
  std::list<Retired> retired_;  // a list: the send buffers inside must not move
  std::map<std::uint64_t, std::vector<int>> notices_;  // id -> world ranks that retired it
  bool attached_ = false;

 public:
  // Receives and drops every message still queued on `comm` (all of them arrived: see the
  // flush above). Also used for communicators with no other member.
  static void discard_leftovers(MPI_Comm comm) noexcept {
    std::vector<char> sink;
    for (;;) {
      int found = 0;
      MPI_Message message = MPI_MESSAGE_NULL;
      MPI_Status status{};
      if (MPI_Improbe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm, &found, &message, &status) != MPI_SUCCESS ||
          !found)
        return;
      int bytes = 0;
      MPI_Get_count(&status, MPI_BYTE, &bytes);
      if (bytes == MPI_UNDEFINED || bytes < 0) bytes = 0;
      sink.resize(static_cast<std::size_t>(bytes) + 1);
      MPI_Mrecv(sink.data(), bytes, MPI_BYTE, &message, MPI_STATUS_IGNORE);
    }
  }
};

Retirement& retirement() {
  static auto* r = new Retirement();  // never destroyed: the engine may hold it at exit
  return *r;
}

std::mutex g_kept_mutex;
std::vector<MPI_Comm> g_kept;  // no id: freed when the Environment ends

}  // namespace

void open_retirement_channel() { retirement().open(); }

void register_for_retirement(MPI_Comm comm) { retirement().register_comm(comm); }

void retire_communicator(MPI_Comm comm) noexcept {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized || comm == MPI_COMM_NULL) return;
  try {
    int size = 0;
    MPI_Comm_size(comm, &size);
    const auto mode = retirement().mode();
    if (size == 1 || mode == Retirement::Mode::closed) {
      // Nobody else can send here (or the Environment is gone and nothing new will be made).
      Retirement::discard_leftovers(comm);
      MPI_Comm_free(&comm);
      return;
    }
    if (mode == Retirement::Mode::retire && retirement().retire(comm)) {
      retirement().ensure_attached();
      return;
    }
    std::lock_guard lock(g_kept_mutex);
    g_kept.push_back(comm);
  } catch (...) {
    // Out of memory while recording it: leaking one communicator is the safe outcome.
  }
}

void close_retirement_channel() noexcept {
  retirement().close();  // from now on, retired communicators are freed at once
  std::lock_guard lock(g_kept_mutex);
  for (MPI_Comm& c : g_kept) MPI_Comm_free(&c);
  g_kept.clear();
}

std::size_t communicators_awaiting_release() noexcept {
  try {
    std::lock_guard lock(g_kept_mutex);
    return retirement().pending() + g_kept.size();
  } catch (...) {
    return 0;
  }
}

}  // namespace mpx::detail
