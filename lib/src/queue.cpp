// The engine of mpx::Queue / mpx::JoinableQueue (see mpx/detail/queue_core.hpp for the
// protocol).
#include "mpx/detail/queue_core.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <utility>

#include "mpx/detail/check.hpp"
#include "mpx/detail/creation.hpp"
#include "mpx/environment.hpp"
#include "mpx/error.hpp"
#include "mpx/future.hpp"

namespace mpx::detail {

namespace {

// Tags on the queue's private communicator.
enum : int {
  // client -> host
  t_put = 1,         // item; fire-and-forget
  t_put_batch = 10,  // a = count; count x (u32 length, item); fire-and-forget
  t_put_wait = 2,    // id, a = nowait; item
  t_get = 3,         // id, a = nowait
  t_cancel = 4,      // id
  t_close = 5,       // id
  t_state = 6,       // id
  t_task_done = 7,   // id
  t_join = 8,        // id
  t_flush_ack = 9,   // a = epoch
  // host -> client
  t_item = 20,         // id; item
  t_ack = 21,          // id, a = credits granted
  t_empty = 22,        // id (get: nothing; put: full)
  t_closed = 23,       // id
  t_cancelled = 24,    // id
  t_state_reply = 25,  // id, a = size, b = closed
  t_flush = 26,        // a = epoch, b = closing
  t_error = 27,        // id (task_done called too often)
};

struct Header {
  std::uint64_t id = 0;
  std::int64_t a = 0;
  std::int64_t b = 0;
};
static_assert(sizeof(Header) == queue_header_bytes);

Header read_header(const Blob& blob) {
  Header h;
  if (blob.size() >= sizeof h) std::memcpy(&h, blob.data(), sizeof h);
  return h;
}
void write_header(Blob& blob, const Header& h) {
  if (blob.size() < sizeof h) blob.resize(sizeof h);
  std::memcpy(blob.data(), &h, sizeof h);
}

// Matched messages up to this size are received at once (their data is already here: Open
// MPI's shared-memory eager limit); larger ones with MPI_Imrecv, completed later in order.
constexpr std::size_t eager_limit = 4096;
// Messages taken per progress call.
constexpr int batch = 256;
// Client puts of items up to this size are coalesced while a thread streams puts into one
// queue (each put follows the previous one within batch_window, with no other queue
// operation of the thread in between): they go into the rank's batch for the queue,
// which leaves when it holds batch_bytes, when this rank sends anything else to the host
// (a get, qsize, close, the answer to a close: so order and "own puts are counted" hold),
// when any thread of this rank waits on a queue, or when the progress thread next runs
// (a put that starts a batch wakes it). An isolated put is sent at once.
constexpr std::size_t batch_item_limit = 512;
constexpr std::size_t batch_bytes = 4000;
constexpr std::size_t batch_max_items = 256;
// Polls a waiting thread makes back to back before it starts backing off.
constexpr std::uint32_t hot_polls = 256;
// A cheap clock for the streaming test (the TSC where there is one: a put must not pay for
// clock_gettime), in ticks; batch_window_ticks is about 20 us.
inline std::uint64_t ticks() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_ia32_rdtsc();
#else
  return static_cast<std::uint64_t>(Clock::now().time_since_epoch().count());
#endif
}
#if defined(__x86_64__) || defined(__i386__)
constexpr std::uint64_t batch_window_ticks = 50000;  // 10-25 us at 2-5 GHz
#else
constexpr std::uint64_t batch_window_ticks = 20000;  // ns
#endif

// A thread streams into a queue when its previous queue operation was a put on the same
// queue, a short while ago. Any other queue operation of the thread (a get, a wait, ...)
// ends the stream, so a put in a request/reply exchange is always sent at once.
thread_local const void* t_stream_queue = nullptr;

// Threads of this rank that are waiting on a queue and polling hot (spinning or yielding).
// They drive every queue of the rank themselves, so the progress thread keeps out of their
// way meanwhile: two threads polling the same MPI matching queues only slow each other down.
std::atomic<int> g_hot_waiters{0};

/// Counts the calling thread as a hot waiter while it lives (and not while it sleeps).
class HotWaiter {
 public:
  HotWaiter() { g_hot_waiters.fetch_add(1, std::memory_order_relaxed); }
  ~HotWaiter() { cool(); }
  HotWaiter(const HotWaiter&) = delete;
  HotWaiter& operator=(const HotWaiter&) = delete;
  void cool() {
    if (hot_) g_hot_waiters.fetch_sub(1, std::memory_order_relaxed);
    hot_ = false;
  }

 private:
  bool hot_ = true;
};
thread_local std::uint64_t t_stream_time = 0;

std::atomic<int> g_queue_serial{0};

// Every live queue of this rank: a thread waiting on one queue also drives the others, so a
// request that reaches another queue this rank hosts (a ping-pong through two queues) is not
// left for the progress thread, which may be backing off.
std::mutex g_registry_mutex;
std::vector<QueueCore*>& registry() {
  static std::vector<QueueCore*> cores;
  return cores;
}
std::atomic<int> g_joinable_serial{0};

/// Keeps a request and its buffer alive after the queue is gone, until MPI completes it.
class OrphanRequest final : public PendingOp {
 public:
  OrphanRequest(MPI_Request request, Blob blob) : request_(request), blob_(std::move(blob)) {}
  bool progress() override {
    int done = 0;
    MPI_Test(&request_, &done, MPI_STATUS_IGNORE);
    return done != 0;
  }
  bool abandon() noexcept override { return true; }
  [[nodiscard]] WaitSite site() const noexcept override { return {"Queue", "orphan", -1}; }

 private:
  MPI_Request request_;
  Blob blob_;
};

std::string describe(const QueueParams& p) {
  return "(maxsize " + std::to_string(p.maxsize) + ", host " + std::to_string(p.host) +
         (p.joinable ? ", joinable" : "") + ", item type " + lookup_type_name(p.fingerprint) +
         ", creation #" + std::to_string(p.serial) + ")";
}

}  // namespace

// ---- creation and destruction ----------------------------------------------------------------

QueueParams QueueCore::numbered(std::string_view kind, QueueParams params) {
  params.serial = kind == "JoinableQueue" ? ++g_joinable_serial : ++g_queue_serial;
  return params;
}

Communicator QueueCore::checked_duplicate(const Communicator& comm, std::string_view kind,
                                          const QueueParams& params, const std::string& name) {
  // Every rank checks every rank's parameters the same way, so all of them throw together
  // instead of some waiting for ever for a peer that gave up.
  const std::array<std::int64_t, 5> mine{params.maxsize, params.host, params.joinable,
                                         params.fingerprint, params.serial};
  const auto all = gather_parameters(comm, mine, name);
  auto unpack = [](const std::array<std::int64_t, 5>& a) {
    QueueParams p;
    p.maxsize = a[0];
    p.host = static_cast<std::int32_t>(a[1]);
    p.joinable = static_cast<std::int32_t>(a[2]);
    p.fingerprint = static_cast<std::int32_t>(a[3]);
    p.serial = static_cast<std::int32_t>(a[4]);
    return p;
  };
  for (std::size_t r = 0; r < all.size(); ++r) {
    const QueueParams p = unpack(all[r]);
    const std::string who =
        r == static_cast<std::size_t>(comm.rank()) ? "this rank" : "rank " + std::to_string(r);
    if (p.maxsize < 0)
      fail(name, "create",
           who + " passed maxsize " + std::to_string(p.maxsize) +
               "; maxsize must be >= 0 (0 means unbounded, as in Python)");
    if (p.host < 0 || p.host >= comm.size())
      fail(name, "create",
           who + " passed host rank " + std::to_string(p.host) + " but " + comm.name() + " has " +
               std::to_string(comm.size()) + " rank(s), numbered 0.." +
               std::to_string(comm.size() - 1));
  }
  for (std::size_t r = 0; r < all.size(); ++r) {
    if (all[r] == all[0]) continue;
    const QueueParams p = unpack(all[r]);
    const QueueParams p0 = unpack(all[0]);
    std::string what = "ranks disagree on the queue: rank 0 created " + std::string(kind) + " " +
                       describe(p0) + " but rank " + std::to_string(r) + " created " +
                       std::string(kind) + " " + describe(p);
    if (p.fingerprint != p0.fingerprint)
      what += " (a different item type";
    else if (p.serial != p0.serial)
      what += " (queues created in a different order";
    else
      what += " (different arguments";
    what +=
        "); every rank must create the same queues, with the same item type and "
        "arguments, in the same order";
    fail(name, "create", what);
  }
  return comm.duplicate(name);
}

QueueCore::QueueCore(const Communicator& comm, std::string kind, QueueParams params)
    : params_(numbered(kind, params)),
      name_(kind + "#" + std::to_string(params_.serial)),
      comm_(checked_duplicate(comm, kind, params_, name_)),
      rank_(comm_.rank()),
      size_(comm_.size()),
      is_host_(rank_ == params_.host) {
  ProgressEngine::instance().attach(*this);
  attached_ = true;
  std::lock_guard lock(g_registry_mutex);
  registry().push_back(this);
}

void QueueCore::poll_other_queues() {
  std::unique_lock registry_lock(g_registry_mutex, std::try_to_lock);
  if (!registry_lock.owns_lock()) return;
  for (QueueCore* core : registry()) {
    if (core == this) continue;
    std::unique_lock lock(core->mutex_, std::try_to_lock);
    if (lock.owns_lock()) core->progress_locked();
  }
}

QueueCore::~QueueCore() {
  if (!attached_) return;
  {
    std::lock_guard lock(g_registry_mutex);
    auto& cores = registry();
    cores.erase(std::remove(cores.begin(), cores.end(), this), cores.end());
  }
  if (Environment::active()) {
    // Collective: nobody stops serving while another rank may still need an answer.
    try {
      {
        std::lock_guard lock(mutex_);
        flush_batch_locked();
      }
      MPI_Request request = MPI_REQUEST_NULL;
      if (MPI_Ibarrier(comm_.native(), &request) == MPI_SUCCESS) {
        Backoff backoff;
        for (;;) {
          int done = 0;
          MPI_Test(&request, &done, MPI_STATUS_IGNORE);
          if (done) break;
          {
            std::unique_lock lock(mutex_, std::try_to_lock);
            if (lock.owns_lock()) progress_locked();
          }
          backoff.pause();
        }
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
    }
  }
  ProgressEngine::instance().detach(*this);
  if (!Environment::active()) return;
  std::lock_guard lock(mutex_);
  for (std::size_t i = 0; i < out_requests_.size(); ++i)
    if (out_requests_[i] != MPI_REQUEST_NULL)
      adopt_orphan(std::make_unique<OrphanRequest>(out_requests_[i], std::move(out_blobs_[i])));
  for (auto& m : inbox_)
    if (m.request != MPI_REQUEST_NULL)
      adopt_orphan(std::make_unique<OrphanRequest>(m.request, std::move(m.blob)));
}

// ---- messaging ----------------------------------------------------------------------------------

void QueueCore::post(int dest, int tag, Blob blob) {
  if (blob.size() <= eager_limit && !ProgressEngine::instance().on_engine_thread()) {
    // A user thread (waiting or putting): a small message goes out at once, with no request
    // to complete later. The progress thread never calls a blocking send.
    MPX_CHECK_MPI(
        MPI_Send(blob.data(), static_cast<int>(blob.size()), MPI_BYTE, dest, tag, comm_.native()),
        name_, "send");
    return;
  }
  MPI_Request request = MPI_REQUEST_NULL;
  const ByteType type(blob.size());
  MPX_CHECK_MPI(
      MPI_Isend(blob.data(), type.count(), type.type(), dest, tag, comm_.native(), &request), name_,
      "send");
  out_requests_.push_back(request);
  out_blobs_.push_back(std::move(blob));
}

void QueueCore::post_header(int dest, int tag, std::uint64_t id, std::int64_t a, std::int64_t b) {
  Blob blob(sizeof(Header));
  write_header(blob, {id, a, b});
  post(dest, tag, std::move(blob));
}

void QueueCore::send_now(int dest, int tag, Blob& blob) {
  // Called by user threads only (never by the progress thread, which must not block).
  if (blob.size() <= eager_limit) {
    MPX_CHECK_MPI(
        MPI_Send(blob.data(), static_cast<int>(blob.size()), MPI_BYTE, dest, tag, comm_.native()),
        name_, "put");
  } else {
    post(dest, tag, std::move(blob));
  }
}

bool QueueCore::progress() {
  if (g_hot_waiters.load(std::memory_order_relaxed) > 0) return false;  // a waiter drives it
  std::unique_lock lock(mutex_, std::try_to_lock);
  if (!lock.owns_lock()) return false;  // a waiting thread is driving it right now
  // A batch a producer is still filling is left to it for a while (it leaves when full);
  // one that has aged is sent from here (the put that started it woke this thread, whose
  // backoff then polls often enough to see it age).
  if (batch_count_ > 0 && ticks() - batch_started_ < batch_window_ticks) return false;
  return progress_locked();
}

void QueueCore::flush_batch_locked() {
  if (batch_count_ == 0) return;
  write_header(batch_, {0, static_cast<std::int64_t>(batch_count_), 0});
  Blob out;
  out.swap(batch_);
  batch_count_ = 0;
  post(params_.host, t_put_batch, std::move(out));
}

bool QueueCore::progress_locked() {
  bool worked = false;
  if (batch_count_ > 0) {
    flush_batch_locked();
    worked = true;
  }
  if (!out_requests_.empty()) {
    int count = 0;
    out_indices_.resize(out_requests_.size());
    MPX_CHECK_MPI(MPI_Testsome(static_cast<int>(out_requests_.size()), out_requests_.data(), &count,
                               out_indices_.data(), MPI_STATUSES_IGNORE),
                  name_, "send");
    (void)count;
    // Compact: drop completed (now MPI_REQUEST_NULL) entries.
    std::size_t keep = 0;
    for (std::size_t i = 0; i < out_requests_.size(); ++i) {
      if (out_requests_[i] == MPI_REQUEST_NULL) continue;
      if (keep != i) {
        out_requests_[keep] = out_requests_[i];
        out_blobs_[keep] = std::move(out_blobs_[i]);
      }
      ++keep;
    }
    if (keep != out_requests_.size()) worked = true;
    out_requests_.resize(keep);
    out_blobs_.resize(keep);
  }
  const int source = is_host_ ? MPI_ANY_SOURCE : params_.host;
  for (int n = 0; n < batch; ++n) {
    int found = 0;
    MPI_Message message = MPI_MESSAGE_NULL;
    MPI_Status status{};
    MPX_CHECK_MPI(MPI_Improbe(source, MPI_ANY_TAG, comm_.native(), &found, &message, &status),
                  name_, "receive");
    if (!found) break;
    worked = true;
    Incoming m;
    m.source = status.MPI_SOURCE;
    m.tag = status.MPI_TAG;
    m.blob.resize(message_bytes(status));
    const ByteType type(m.blob.size());
    if (m.blob.size() <= eager_limit) {
      MPX_CHECK_MPI(
          MPI_Mrecv(m.blob.data(), type.count(), type.type(), &message, MPI_STATUS_IGNORE), name_,
          "receive");
    } else {
      MPX_CHECK_MPI(MPI_Imrecv(m.blob.data(), type.count(), type.type(), &message, &m.request),
                    name_, "receive");
    }
    inbox_.push_back(std::move(m));
  }
  // Handle messages strictly in the order they were matched.
  while (!inbox_.empty()) {
    Incoming& front = inbox_.front();
    if (front.request != MPI_REQUEST_NULL) {
      int done = 0;
      MPX_CHECK_MPI(MPI_Test(&front.request, &done, MPI_STATUS_IGNORE), name_, "receive");
      if (!done) break;
    }
    Incoming m = std::move(front);
    inbox_.pop_front();
    if (is_host_)
      handle_host(m);
    else
      handle_client(m);
    worked = true;
  }
  return worked;
}

// ---- slots (one per waiting request) ----------------------------------------------------------

// A rank has a handful of requests in flight at most (one per waiting thread): a flat list
// searched linearly beats a hash map, and a finished slot's storage is reused.
std::uint64_t QueueCore::new_slot() {
  const std::uint64_t id = next_id_++;
  slots_.emplace_back(id, Slot{});
  return id;
}

QueueCore::Slot* QueueCore::find_slot(std::uint64_t id) {
  for (auto& [key, slot] : slots_)
    if (key == id) return &slot;
  return nullptr;
}

void QueueCore::fill_slot(std::uint64_t id, SlotState state, Blob blob, std::int64_t a,
                          std::int64_t b) {
  Slot* slot = find_slot(id);
  if (!slot) return;
  slot->state = state;
  slot->blob = std::move(blob);
  slot->a = a;
  slot->b = b;
  if (sleepers_ > 0) cv_.notify_all();
}

QueueCore::Slot QueueCore::take_slot(std::uint64_t id) {
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].first != id) continue;
    Slot s = std::move(slots_[i].second);
    if (i + 1 != slots_.size()) slots_[i] = std::move(slots_.back());
    slots_.pop_back();
    return s;
  }
  return {};
}

bool QueueCore::slot_done(std::uint64_t id) const {
  for (const auto& [key, slot] : slots_)
    if (key == id) return slot.state != SlotState::waiting;
  return true;
}

bool QueueCore::wait_slot(std::uint64_t id, Clock::time_point deadline, const char* operation) {
  t_stream_queue = nullptr;
  Backoff backoff;
  HotWaiter hot;
  const auto since = Clock::now();
  for (std::uint32_t n = 1;; ++n) {
    {
      std::unique_lock lock(mutex_);
      progress_locked();  // the waiting thread drives the queue itself: no hand-off latency
      if (slot_done(id)) return true;
    }
    if ((n & 7u) == 0) poll_other_queues();  // less often: every poll costs an MPI_Improbe
    if (deadline != no_deadline && Clock::now() >= deadline) return false;
    // The first polls (a few tens of microseconds) go back to back: an answer that is on its
    // way is seen at once. Then the common backoff: pause, yield, sleep.
    if (n <= hot_polls) continue;
    auto sleep = backoff.next_sleep();  // spins or yields itself while it returns 0
    if (sleep.count() > 0) {
      hot.cool();  // from now on the progress thread serves the queues while this one sleeps
      if (deadline != no_deadline) {
        const auto left =
            std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now());
        sleep = std::max(std::chrono::microseconds(1), std::min(sleep, left));
      }
      std::unique_lock lock(mutex_);
      ++sleepers_;
      cv_.wait_for(lock, sleep, [&] { return slot_done(id); });
      --sleepers_;
    }
    if (interrupt_hook) interrupt_hook();  // a Process target being terminated unwinds here
    if ((n & 255u) == 0) note_long_wait({name_, operation, params_.host, comm_.native()}, since);
  }
}

QueueCore::Slot QueueCore::client_request(int tag, Blob blob, Clock::time_point deadline,
                                          const char* operation) {
  t_stream_queue = nullptr;
  std::uint64_t id = 0;
  {
    std::lock_guard lock(mutex_);
    flush_batch_locked();  // puts made before this request reach the host before it
    id = new_slot();
    Header h = read_header(blob);
    h.id = id;
    write_header(blob, h);
    send_now(params_.host, tag, blob);
  }
  if (!wait_slot(id, deadline, operation)) {
    {
      std::lock_guard lock(mutex_);
      if (!slot_done(id)) post_header(params_.host, t_cancel, id);
    }
    wait_slot(id, no_deadline, operation);  // the verdict: the answer, or "cancelled"
  }
  std::lock_guard lock(mutex_);
  return take_slot(id);
}

// ---- client side ------------------------------------------------------------------------------

void QueueCore::handle_client(Incoming& m) {
  const Header h = read_header(m.blob);
  switch (m.tag) {
    case t_item:
      fill_slot(h.id, SlotState::item, std::move(m.blob));
      break;
    case t_ack:
      credits_ += h.a;
      fill_slot(h.id, SlotState::ack, {}, h.a);
      break;
    case t_empty:
      fill_slot(h.id, SlotState::empty);
      break;
    case t_closed:
      fill_slot(h.id, SlotState::closed);
      break;
    case t_cancelled:
      fill_slot(h.id, SlotState::cancelled);
      break;
    case t_state_reply:
      fill_slot(h.id, SlotState::state, {}, h.a, h.b);
      break;
    case t_error:
      fill_slot(h.id, SlotState::error);
      break;
    case t_flush:
      if (h.b) {
        client_closed_ = true;
        credits_ = 0;
      }
      post_header(params_.host, t_flush_ack, 0, h.a);
      break;
    default:
      std::fprintf(stderr, "mpx: rank %d: %s: unexpected message tag %d from the host (ignored)\n",
                   world_rank_or_minus_one(), name_.c_str(), m.tag);
  }
}

// ---- host side (mutex held) ----------------------------------------------------------------------

bool QueueCore::room() const noexcept {
  return !bounded() || static_cast<std::int64_t>(items_.size()) + reserved_ < params_.maxsize;
}

void QueueCore::accept(Blob&& item) {
  ++unfinished_;
  if (!getters_.empty()) {
    const Waiter w = getters_.front();
    getters_.pop_front();
    give(w, std::move(item));
  } else {
    items_.push_back(std::move(item));
  }
}

void QueueCore::give(const Waiter& w, Blob&& item) {
  if (w.rank == rank_) {
    fill_slot(w.id, SlotState::item, std::move(item));
  } else {
    write_header(item, {w.id, 0, 0});
    post(w.rank, t_item, std::move(item));
  }
}

void QueueCore::reply(const Waiter& w, SlotState state, std::int64_t a, std::int64_t b) {
  if (w.rank == rank_) {
    fill_slot(w.id, state, {}, a, b);
    return;
  }
  int tag = t_ack;
  switch (state) {
    case SlotState::ack:
      tag = t_ack;
      break;
    case SlotState::empty:
      tag = t_empty;
      break;
    case SlotState::closed:
      tag = t_closed;
      break;
    case SlotState::cancelled:
      tag = t_cancelled;
      break;
    case SlotState::state:
      tag = t_state_reply;
      break;
    case SlotState::error:
      tag = t_error;
      break;
    default:
      break;
  }
  post_header(w.rank, tag, w.id, a, b);
}

std::int64_t QueueCore::grant(int rank) {
  if (!bounded() || rank == rank_) return 0;
  const std::int64_t free = params_.maxsize - static_cast<std::int64_t>(items_.size()) - reserved_;
  const std::int64_t cap = params_.maxsize / 2 - reserved_;
  const std::int64_t per = std::max<std::int64_t>(1, params_.maxsize / (2 * std::max(1, size_)));
  const std::int64_t g = std::max<std::int64_t>(0, std::min({free, cap, per}));
  reserved_ += g;
  return g;
}

void QueueCore::after_pop() {
  admit_putters();
  if (phase_ == Phase::closed && items_.empty()) fail_waiting_getters();
}

void QueueCore::admit_putters() {
  while (!putters_.empty() && room()) {
    PendingPut p = std::move(putters_.front());
    putters_.pop_front();
    accept(std::move(p.item));
    reply(p.who, SlotState::ack, grant(p.who.rank));
  }
}

void QueueCore::fail_waiting_getters() {
  while (!getters_.empty()) {
    const Waiter w = getters_.front();
    getters_.pop_front();
    reply(w, SlotState::closed);
  }
}

bool QueueCore::remove_waiter(std::deque<Waiter>& list, const Waiter& w) {
  for (auto it = list.begin(); it != list.end(); ++it)
    if (it->rank == w.rank && it->id == w.id) {
      list.erase(it);
      return true;
    }
  return false;
}

void QueueCore::request_flush(const Waiter& w, bool closing) {
  if (closing) {
    if (phase_ == Phase::closed) {
      reply(w, SlotState::ack);
      return;
    }
    if (round_active_ && round_closing_) {  // the running round closes: wait for it
      round_closers_.push_back(w);
      return;
    }
    next_closers_.push_back(w);
    next_closing_ = true;
  } else {
    next_joiners_.push_back(w);
  }
  maybe_start_round();
}

void QueueCore::maybe_start_round() {
  if (round_active_ || (next_closers_.empty() && next_joiners_.empty())) return;
  round_active_ = true;
  round_closing_ = next_closing_;
  next_closing_ = false;
  round_closers_ = std::move(next_closers_);
  round_joiners_ = std::move(next_joiners_);
  next_closers_.clear();
  next_joiners_.clear();
  ++epoch_;
  if (round_closing_ && phase_ == Phase::open) phase_ = Phase::closing;
  acks_needed_ = size_ - 1;
  for (int r = 0; r < size_; ++r)
    if (r != rank_) post_header(r, t_flush, 0, epoch_, round_closing_ ? 1 : 0);
  if (acks_needed_ == 0) finish_round();
}

void QueueCore::finish_round() {
  round_active_ = false;
  if (round_closing_) {
    phase_ = Phase::closed;
    reserved_ = 0;
    while (!putters_.empty()) {  // puts still blocked on a full queue fail: the stream ended
      const Waiter w = putters_.front().who;
      putters_.pop_front();
      reply(w, SlotState::closed);
    }
    if (items_.empty()) fail_waiting_getters();
  }
  for (const auto& w : round_closers_) reply(w, SlotState::ack);
  for (const auto& w : round_joiners_) {
    if (unfinished_ == 0)
      reply(w, SlotState::ack);
    else
      joiners_.push_back(w);
  }
  round_closers_.clear();
  round_joiners_.clear();
  maybe_start_round();
}

void QueueCore::handle_host(Incoming& m) {
  const Header h = read_header(m.blob);
  const Waiter w{m.source, h.id};
  switch (m.tag) {
    case t_put:
      if (bounded() && reserved_ > 0) --reserved_;
      accept(std::move(m.blob));
      break;
    case t_put_batch: {
      std::size_t at = sizeof(Header);
      for (std::int64_t i = 0; i < h.a && at + 4 <= m.blob.size(); ++i) {
        std::uint32_t length = 0;
        std::memcpy(&length, m.blob.data() + at, 4);
        at += 4;
        Blob item(sizeof(Header) + length);
        std::memcpy(item.data() + sizeof(Header), m.blob.data() + at, length);
        at += length;
        if (bounded() && reserved_ > 0) --reserved_;
        accept(std::move(item));
      }
      break;
    }
    case t_put_wait:
      if (phase_ == Phase::closed)
        reply(w, SlotState::closed);
      else if (room()) {
        accept(std::move(m.blob));
        reply(w, SlotState::ack, grant(m.source));
      } else if (h.a)
        reply(w, SlotState::empty);
      else
        putters_.push_back({w, std::move(m.blob)});
      break;
    case t_get:
      if (!items_.empty()) {
        Blob item = std::move(items_.front());
        items_.pop_front();
        give(w, std::move(item));
        after_pop();
      } else if (phase_ == Phase::closed)
        reply(w, SlotState::closed);
      else if (h.a)
        reply(w, SlotState::empty);
      else
        getters_.push_back(w);
      break;
    case t_cancel: {
      bool found = remove_waiter(getters_, w);
      if (!found)
        for (auto it = putters_.begin(); it != putters_.end(); ++it)
          if (it->who.rank == w.rank && it->who.id == w.id) {
            putters_.erase(it);
            found = true;
            break;
          }
      if (found) reply(w, SlotState::cancelled);
      // Not found: the answer is already on its way and the client takes it instead.
      break;
    }
    case t_close:
      request_flush(w, true);
      break;
    case t_join:
      request_flush(w, false);
      break;
    case t_state:
      reply(w, SlotState::state, static_cast<std::int64_t>(items_.size()),
            phase_ == Phase::closed ? 1 : 0);
      break;
    case t_task_done:
      if (unfinished_ <= 0) {
        reply(w, SlotState::error);
      } else {
        reply(w, SlotState::ack);
        if (--unfinished_ == 0) {
          for (const auto& j : joiners_) reply(j, SlotState::ack);
          joiners_.clear();
        }
      }
      break;
    case t_flush_ack:
      if (round_active_ && h.a == epoch_ && --acks_needed_ == 0) finish_round();
      break;
    default:
      std::fprintf(stderr, "mpx: rank %d: %s: unexpected message tag %d from rank %d (ignored)\n",
                   world_rank_or_minus_one(), name_.c_str(), m.tag, m.source);
  }
}

// ---- operations -------------------------------------------------------------------------------

bool QueueCore::streaming_put() noexcept {
  // Whether this put continues a stream; then notes it as the thread's last operation.
  const std::uint64_t now = ticks();
  const bool streaming =
      (t_stream_queue == this && now - t_stream_time < batch_window_ticks) || batch_count_ > 0;
  t_stream_queue = this;
  t_stream_time = now;
  return streaming;
}

bool QueueCore::would_stream() const noexcept {
  return batch_count_ > 0 ||
         (t_stream_queue == this && ticks() - t_stream_time < batch_window_ticks);
}

void QueueCore::append_to_batch(const char* data, std::size_t bytes) {
  if (batch_count_ > 0 && batch_.size() + 4 + bytes > batch_bytes) flush_batch_locked();
  if (batch_count_ == 0) {
    batch_.reserve(batch_bytes + 64);
    batch_.assign(sizeof(Header), 0);
    batch_started_ = ticks();
  }
  const auto length = static_cast<std::uint32_t>(bytes);
  const std::size_t at = batch_.size();
  batch_.resize(at + 4 + bytes);
  std::memcpy(batch_.data() + at, &length, 4);
  std::memcpy(batch_.data() + at + 4, data, bytes);
  if (++batch_count_ == 1) {
    ProgressEngine::instance().wake();  // the batch leaves at the latest when it has aged
  } else if (batch_count_ >= batch_max_items) {
    flush_batch_locked();
  }
}

bool QueueCore::try_put_small(const void* data, std::size_t bytes) {
  if (is_host_ || bytes > batch_item_limit) return false;
  std::lock_guard lock(mutex_);
  if (client_closed_ || (bounded() && credits_ <= 0) || !would_stream()) return false;
  (void)streaming_put();
  if (bounded()) --credits_;
  append_to_batch(static_cast<const char*>(data), bytes);
  return true;
}

void QueueCore::put(Blob&& item, Clock::time_point deadline, bool block, const char* operation) {
  auto closed_error = [&] {
    fail<ClosedError>(name_, operation,
                      "the queue is closed; nothing can be put after close() (consumers drain "
                      "what is left, then their get() throws mpx::EOFError)");
  };
  auto full_error = [&] {
    fail<Full>(name_, operation,
               block ? "the queue stayed full (maxsize " + std::to_string(params_.maxsize) +
                           ") until the timeout passed"
                     : "the queue is full (maxsize " + std::to_string(params_.maxsize) + ")");
  };
  if (is_host_) {
    std::uint64_t id = 0;
    {
      std::lock_guard lock(mutex_);
      if (phase_ != Phase::open) closed_error();
      if (getters_.empty()) progress_locked();  // a get request may be waiting on the wire
      if (room()) {
        accept(std::move(item));
        return;
      }
      if (!block) full_error();
      id = new_slot();
      putters_.push_back({{rank_, id}, std::move(item)});
    }
    if (!wait_slot(id, deadline, operation)) {
      std::lock_guard lock(mutex_);
      if (!slot_done(id)) {
        for (auto it = putters_.begin(); it != putters_.end(); ++it)
          if (it->who.rank == rank_ && it->who.id == id) {
            putters_.erase(it);
            break;
          }
        take_slot(id);
        full_error();
      }
    }
    Slot s;
    {
      std::lock_guard lock(mutex_);
      s = take_slot(id);
    }
    if (s.state == SlotState::closed) closed_error();
    return;
  }
  {
    std::lock_guard lock(mutex_);
    if (client_closed_) closed_error();
    if (!bounded() || credits_ > 0) {
      if (bounded()) --credits_;
      const std::size_t payload = item.size() - sizeof(Header);
      if (payload <= batch_item_limit && streaming_put()) {
        append_to_batch(item.data() + sizeof(Header), payload);
        return;
      }
      flush_batch_locked();
      send_now(params_.host, t_put, item);
      return;
    }
  }
  write_header(item, {0, block ? 0 : 1, 0});  // (client_request flushes the batch first)
  const Slot s = client_request(t_put_wait, std::move(item), deadline, operation);
  if (s.state == SlotState::ack) return;
  if (s.state == SlotState::closed) closed_error();
  full_error();  // "full" for put_nowait, "cancelled" at the timeout
}

bool QueueCore::get(Blob& out, Clock::time_point deadline, bool block, const char* operation) {
  t_stream_queue = nullptr;
  auto empty_error = [&] {
    fail<Empty>(name_, operation,
                block ? "no item arrived before the timeout" : "the queue is empty");
  };
  if (is_host_) {
    std::uint64_t id = 0;
    {
      std::lock_guard lock(mutex_);
      if (items_.empty()) progress_locked();
      if (!items_.empty()) {
        out = std::move(items_.front());
        items_.pop_front();
        after_pop();
        return true;
      }
      if (phase_ == Phase::closed) return false;
      if (!block) empty_error();
      id = new_slot();
      getters_.push_back({rank_, id});
    }
    if (!wait_slot(id, deadline, operation)) {
      std::lock_guard lock(mutex_);
      if (!slot_done(id)) {
        remove_waiter(getters_, {rank_, id});
        take_slot(id);
        empty_error();
      }
    }
    Slot s;
    {
      std::lock_guard lock(mutex_);
      s = take_slot(id);
    }
    if (s.state == SlotState::closed) return false;
    out = std::move(s.blob);
    return true;
  }
  Blob request(sizeof(Header));
  write_header(request, {0, block ? 0 : 1, 0});
  Slot s = client_request(t_get, std::move(request), deadline, operation);
  if (s.state == SlotState::item) {
    out = std::move(s.blob);
    return true;
  }
  if (s.state == SlotState::closed) return false;
  empty_error();  // "empty" for get_nowait, "cancelled" at the timeout
  return false;
}

QueueCore::State QueueCore::state() {
  if (is_host_) {
    std::lock_guard lock(mutex_);
    progress_locked();
    return {static_cast<std::int64_t>(items_.size()), phase_ == Phase::closed};
  }
  Blob request(sizeof(Header));
  const Slot s = client_request(t_state, std::move(request), no_deadline, "qsize");
  return {s.a, s.b != 0};
}

void QueueCore::close() {
  if (is_host_) {
    std::uint64_t id = 0;
    {
      std::lock_guard lock(mutex_);
      if (phase_ == Phase::closed) return;
      id = new_slot();
      request_flush({rank_, id}, true);
    }
    wait_slot(id, no_deadline, "close");
    std::lock_guard lock(mutex_);
    take_slot(id);
    return;
  }
  {
    std::lock_guard lock(mutex_);
    client_closed_ = true;  // this rank's own later puts fail at once
  }
  Blob request(sizeof(Header));
  client_request(t_close, std::move(request), no_deadline, "close");
}

bool QueueCore::closed_here() const {
  std::lock_guard lock(mutex_);
  return is_host_ ? phase_ != Phase::open : client_closed_;
}

void QueueCore::task_done() {
  auto too_many = [&] {
    fail(name_, "task_done",
         "task_done() was called more times than there were items put (Python's ValueError); "
         "call it once per item you got");
  };
  if (is_host_) {
    std::lock_guard lock(mutex_);
    if (unfinished_ <= 0) too_many();
    if (--unfinished_ == 0) {
      for (const auto& j : joiners_) reply(j, SlotState::ack);
      joiners_.clear();
    }
    return;
  }
  Blob request(sizeof(Header));
  const Slot s = client_request(t_task_done, std::move(request), no_deadline, "task_done");
  if (s.state == SlotState::error) too_many();
}

void QueueCore::join() {
  if (is_host_) {
    std::uint64_t id = 0;
    {
      std::lock_guard lock(mutex_);
      id = new_slot();
      request_flush({rank_, id}, false);
    }
    wait_slot(id, no_deadline, "join");
    std::lock_guard lock(mutex_);
    take_slot(id);
    return;
  }
  Blob request(sizeof(Header));
  client_request(t_join, std::move(request), no_deadline, "join");
}

}  // namespace mpx::detail
