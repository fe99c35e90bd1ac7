// Bad input to every public call of the synchronisation and shared-state objects (Lock, RLock,
// Semaphore, BoundedSemaphore, Condition, Event, Barrier, Value, Array, Dict, List,
// Namespace): each must fail at the call with the right exception type and a message
// "mpx: rank R: <Object#N>.<operation>: ...", never crash or hang, and leave the object
// working. Creation with different arguments (or different objects) on different ranks must
// fail on every rank together. The audit table is in docs/errors.md.
//
// Registered twice: on one node (shared memory) and with MPX_NO_SHARED_MEMORY=1 (every object
// takes the cross-node path: its state on rank 0, served by the progress thread).
#include <gtest/gtest.h>
#include <mpx/mpx.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <mutex>
#include <regex>
#include <string>
#include <string_view>
#include <thread>
#include <typeinfo>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

namespace {

const mpx::Communicator& world() { return mpx::Communicator::world(); }
int rank() { return world().rank(); }
int size() { return world().size(); }

std::string regex_escape(std::string_view s) {
  static const std::string special = R"(\^$.|?*+()[]{})";
  std::string out;
  for (char c : s) {
    if (special.find(c) != std::string::npos) out += '\\';
    out += c;
  }
  return out;
}

/// Runs `call`, which must throw exactly `E` (not a subclass, not another error) with the
/// message "mpx: rank R: <object>.<operation>: ..." (R = this rank) containing `hint`. An
/// `object` that ends in '#' stands for any object of that kind ("Lock#" matches "Lock#7").
template <class E, class F>
void expect_error(const char* code, F&& call, std::string_view object, std::string_view operation,
                  std::string_view hint) {
  std::string pattern = "^mpx: rank " + std::to_string(rank()) + ": " + regex_escape(object);
  if (!object.empty() && object.back() == '#') pattern += "[0-9]+";
  pattern += "\\." + regex_escape(operation) + ": ";
  try {
    call();
    ADD_FAILURE() << code << ": threw nothing, expected " << typeid(E).name();
  } catch (const E& e) {
    const std::string what = e.what();
    EXPECT_TRUE(typeid(e) == typeid(E))
        << code << ": threw " << typeid(e).name() << ", expected exactly " << typeid(E).name();
    EXPECT_TRUE(std::regex_search(what, std::regex(pattern)))
        << code << ": message does not start with /" << pattern << "/: " << what;
    EXPECT_NE(what.find(hint), std::string::npos)
        << code << ": message does not say '" << hint << "': " << what;
  } catch (const std::exception& e) {
    ADD_FAILURE() << code << ": threw " << typeid(e).name() << " (" << e.what() << "), expected "
                  << typeid(E).name();
  }
}

#define EXPECT_MPX_ERROR(E, code, object, operation, hint) \
  expect_error<E>(                                         \
      #code, [&] { code; }, object, operation, hint)

constexpr std::string_view disagree = "every rank must create the same";

// ---- Lock and RLock -------------------------------------------------------------------------

TEST(BadInputLock, ReleaseOfAFreeLock) {
  mpx::Lock lock;
  EXPECT_MPX_ERROR(mpx::UsageError, lock.release(), lock.name(), "release", "not held by anyone");
  EXPECT_MPX_ERROR(mpx::UsageError, lock.unlock(), lock.name(), "release", "not held by anyone");
  world().barrier();
  {
    std::lock_guard guard(lock);  // still works
    EXPECT_TRUE(lock.owned());
  }
  world().barrier();
  EXPECT_EQ(lock.holder(), -1);
}

TEST(BadInputLock, ReleaseByAnotherRankOrThread) {
  mpx::Lock lock;
  if (rank() == 0) lock.acquire();
  world().barrier();
  if (rank() != 0)
    EXPECT_MPX_ERROR(mpx::UsageError, lock.release(), lock.name(), "release",
                     "held by rank 0 (thread");
  if (rank() == 0) {
    std::thread other([&] {
      EXPECT_MPX_ERROR(mpx::UsageError, lock.release(), lock.name(), "release",
                       "held by rank 0 (thread");
    });
    other.join();
  }
  world().barrier();
  EXPECT_EQ(lock.holder(), 0);  // the failed releases changed nothing
  world().barrier();
  if (rank() == 0) lock.release();
  world().barrier();
  EXPECT_TRUE(lock.try_lock_for(30s));
  lock.release();
  world().barrier();
}

TEST(BadInputLock, AcquiringALockTwiceOnOneThread) {
  mpx::Lock lock;
  if (rank() == 0) {
    lock.acquire();
    EXPECT_MPX_ERROR(mpx::UsageError, lock.acquire(), lock.name(), "acquire", "use mpx::RLock");
    EXPECT_MPX_ERROR(mpx::UsageError, lock.lock(), lock.name(), "acquire", "use mpx::RLock");
    EXPECT_MPX_ERROR(mpx::UsageError, (void)lock.acquire(true, 10ms), lock.name(), "acquire",
                     "use mpx::RLock");
    EXPECT_FALSE(lock.try_lock());  // non-blocking: just "not taken", as Python
    EXPECT_TRUE(lock.owned());
    lock.release();
  }
  world().barrier();
  EXPECT_EQ(lock.holder(), -1);
  world().barrier();
}

TEST(BadInputLock, NegativeTimeouts) {
  mpx::Lock lock;
  mpx::RLock rlock;
  for (mpx::detail::LockBase* l :
       {static_cast<mpx::detail::LockBase*>(&lock), static_cast<mpx::detail::LockBase*>(&rlock)}) {
    EXPECT_MPX_ERROR(mpx::UsageError, (void)l->acquire(true, -1ms), l->name(), "acquire",
                     "timeout must not be negative");
    EXPECT_MPX_ERROR(mpx::UsageError, (void)l->acquire(-1s), l->name(), "acquire",
                     "timeout must not be negative");
    EXPECT_MPX_ERROR(mpx::UsageError, (void)l->acquire(false, -1ns), l->name(), "acquire",
                     "timeout must not be negative");
    EXPECT_MPX_ERROR(mpx::UsageError, (void)l->try_lock_for(-5ms), l->name(), "acquire",
                     "timeout must not be negative");
    // A NaN timeout is no duration at all (it compares false with everything).
    const std::chrono::duration<double> nan(std::numeric_limits<double>::quiet_NaN());
    EXPECT_MPX_ERROR(mpx::UsageError, (void)l->acquire(true, nan), l->name(), "acquire",
                     "timeout must not be negative");
    // A deadline in the past is not an error: it is a non-blocking attempt.
    world().barrier();
    if (rank() == 0) {
      EXPECT_TRUE(l->try_lock_until(std::chrono::steady_clock::now() - 1s));
      l->release();
    }
    world().barrier();
    EXPECT_FALSE(l->locked());
    world().barrier();
  }
}

TEST(BadInputLock, RLockReleasedMoreOftenThanAcquired) {
  mpx::RLock lock;
  if (rank() == size() - 1) {
    lock.acquire();
    lock.acquire();
    lock.release();
    lock.release();
    EXPECT_MPX_ERROR(mpx::UsageError, lock.release(), lock.name(), "release", "not held by anyone");
    EXPECT_EQ(lock.level(), 0);
    lock.acquire();  // still works
    EXPECT_EQ(lock.level(), 1);
    lock.release();
  }
  world().barrier();
  EXPECT_EQ(lock.holder(), -1);
  world().barrier();
}

TEST(BadInputLock, ReleaseAllOfALockNotHeld) {
  // release_all/reacquire are Condition's tools, public on LockBase: same rules as release.
  mpx::Lock lock;
  mpx::RLock rlock;
  EXPECT_MPX_ERROR(mpx::UsageError, (void)lock.release_all("wait"), lock.name(), "wait",
                   "not held by anyone");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)rlock.release_all("wait"), rlock.name(), "wait",
                   "not held by anyone");
  world().barrier();  // nobody holds them before every rank has checked
  rlock.acquire();
  rlock.acquire();
  EXPECT_EQ(rlock.release_all("wait"), 2);
  rlock.reacquire(2);
  EXPECT_EQ(rlock.level(), 2);
  rlock.release();
  rlock.release();
  world().barrier();
}

TEST(BadInputLock, UseAfterMove) {
  mpx::Lock a;
  mpx::RLock ra;
  mpx::Lock b = std::move(a);
  mpx::RLock rb = std::move(ra);
  const std::string lock_moved = "Lock(moved-from)";
  for (mpx::detail::LockBase* l :
       {static_cast<mpx::detail::LockBase*>(&a), static_cast<mpx::detail::LockBase*>(&ra)}) {
    const std::string name = l->name();
    EXPECT_NE(name.find("moved-from"), std::string::npos) << name;
    EXPECT_MPX_ERROR(mpx::UsageError, l->acquire(), name, "acquire", "moved from");
    EXPECT_MPX_ERROR(mpx::UsageError, (void)l->acquire(false), name, "acquire", "moved from");
    EXPECT_MPX_ERROR(mpx::UsageError, (void)l->try_lock_for(1ms), name, "acquire", "moved from");
    EXPECT_MPX_ERROR(mpx::UsageError, l->release(), name, "release", "moved from");
    EXPECT_MPX_ERROR(mpx::UsageError, (void)l->holder(), name, "holder", "moved from");
    EXPECT_MPX_ERROR(mpx::UsageError, (void)l->locked(), name, "holder", "moved from");
    EXPECT_MPX_ERROR(mpx::UsageError, (void)l->owned(), name, "owned", "moved from");
  }
  EXPECT_MPX_ERROR(mpx::UsageError, (void)ra.level(), ra.name(), "level", "moved from");
  {
    std::scoped_lock both(b, rb);  // the moved-to locks work
    EXPECT_TRUE(b.owned());
    EXPECT_EQ(rb.level(), 1);
  }
  world().barrier();
}

// ---- Semaphore and BoundedSemaphore --------------------------------------------------------

TEST(BadInputSemaphore, ArgumentsOfTheCalls) {
  mpx::Semaphore sem(2);
  mpx::BoundedSemaphore bounded(2);
  for (mpx::Semaphore* s : {&sem, static_cast<mpx::Semaphore*>(&bounded)}) {
    EXPECT_MPX_ERROR(mpx::UsageError, (void)s->acquire(true, -1ms), s->name(), "acquire",
                     "timeout must not be negative");
    EXPECT_MPX_ERROR(mpx::UsageError, (void)s->acquire(-1ms), s->name(), "acquire",
                     "timeout must not be negative");
    EXPECT_MPX_ERROR(mpx::UsageError, (void)s->try_lock_for(-1ms), s->name(), "acquire",
                     "timeout must not be negative");
    EXPECT_MPX_ERROR(mpx::UsageError, s->release(0), s->name(), "release", "n = 0");
    EXPECT_MPX_ERROR(mpx::UsageError, s->release(-3), s->name(), "release", "n = -3");
  }
  world().barrier();
  EXPECT_EQ(sem.get_value(), 2);  // nothing was lost
  EXPECT_EQ(bounded.get_value(), 2);
  world().barrier();
}

TEST(BadInputSemaphore, OverReleaseOfABoundedSemaphore) {
  mpx::BoundedSemaphore sem(2);
  if (rank() == 0) {
    EXPECT_MPX_ERROR(mpx::UsageError, sem.release(), sem.name(), "release",
                     "would exceed the bound 2");
    EXPECT_MPX_ERROR(mpx::UsageError, sem.unlock(), sem.name(), "release",
                     "would exceed the bound 2");
    EXPECT_TRUE(sem.acquire(false));
    EXPECT_MPX_ERROR(mpx::UsageError, sem.release(2), sem.name(), "release",
                     "would exceed the bound 2");
    // A count so large that value + n overflows must not slip past the bound.
    EXPECT_MPX_ERROR(mpx::UsageError, sem.release(std::numeric_limits<std::int64_t>::max()),
                     sem.name(), "release", "would exceed the bound 2");
    EXPECT_EQ(sem.get_value(), 1);
    sem.release();  // the legal release still works
  }
  world().barrier();
  EXPECT_EQ(sem.get_value(), 2);
  world().barrier();
}

TEST(BadInputSemaphore, CounterOverflowOfAnUnboundedSemaphore) {
  mpx::Semaphore sem(5);
  if (rank() == 0)
    EXPECT_MPX_ERROR(mpx::UsageError, sem.release(std::numeric_limits<std::int64_t>::max()),
                     sem.name(), "release", "overflow");
  world().barrier();
  EXPECT_EQ(sem.get_value(), 5);
  world().barrier();
}

TEST(BadInputSemaphore, UseAfterMove) {
  mpx::Semaphore a(1);
  mpx::Semaphore b = std::move(a);
  const std::string name = a.name();
  EXPECT_MPX_ERROR(mpx::UsageError, a.acquire(), name, "acquire", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)a.try_lock(), name, "acquire", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, a.release(), name, "release", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)a.get_value(), name, "get_value", "moved from");
  world().barrier();
  if (rank() == 0) {
    EXPECT_TRUE(b.acquire(false));
    b.release();
  }
  world().barrier();
  EXPECT_EQ(b.get_value(), 1);
  world().barrier();
}

// ---- Condition -----------------------------------------------------------------------------

TEST(BadInputCondition, CallsThatNeedTheLock) {
  mpx::Lock lock;
  mpx::Condition cond(lock);
  mpx::Condition own;  // with its own RLock
  for (mpx::Condition* c : {&cond, &own}) {
    const std::string hint = "does not hold the condition's lock";
    EXPECT_MPX_ERROR(mpx::UsageError, c->wait(), c->name(), "wait", hint);
    EXPECT_MPX_ERROR(mpx::UsageError, (void)c->wait(10ms), c->name(), "wait", hint);
    EXPECT_MPX_ERROR(mpx::UsageError, c->wait_for([] { return false; }), c->name(), "wait", hint);
    EXPECT_MPX_ERROR(mpx::UsageError, (void)c->wait_for([] { return false; }, 10ms), c->name(),
                     "wait", hint);
    EXPECT_MPX_ERROR(mpx::UsageError, c->notify(), c->name(), "notify", hint);
    EXPECT_MPX_ERROR(mpx::UsageError, c->notify(3), c->name(), "notify", hint);
    EXPECT_MPX_ERROR(mpx::UsageError, c->notify_all(), c->name(), "notify_all", hint);
    // Held by another rank is not held by this thread either.
    world().barrier();
    if (rank() == 0) c->acquire();
    world().barrier();
    if (rank() != 0) EXPECT_MPX_ERROR(mpx::UsageError, c->notify(), c->name(), "notify", hint);
    if (rank() != 0)
      EXPECT_MPX_ERROR(mpx::UsageError, c->release(), c->get_lock().name(), "release",
                       "held by rank 0");
    world().barrier();
    if (rank() == 0) c->release();
    world().barrier();
  }
  // Still works: a waiter is woken by a notify.
  mpx::Value<int> ready(0);
  if (rank() == 1) {
    std::unique_lock guard(cond);
    EXPECT_TRUE(cond.wait_for([&] { return ready.load() == 1; }, 30s));
  }
  if (rank() == 0) {
    std::lock_guard guard(cond);
    ready.store(1);
    cond.notify_all();
  }
  world().barrier();
}

TEST(BadInputCondition, NegativeArguments) {
  mpx::Condition cond;
  std::unique_lock guard(cond);  // every rank in turn
  EXPECT_MPX_ERROR(mpx::UsageError, cond.notify(-1), cond.name(), "notify", "n = -1");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)cond.wait(-1ms), cond.name(), "wait",
                   "timeout must not be negative");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)cond.wait_for([] { return false; }, -1ms), cond.name(),
                   "wait_for", "timeout must not be negative");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)cond.acquire(true, -1ms), cond.get_lock().name(),
                   "acquire", "timeout must not be negative");
  EXPECT_TRUE(cond.get_lock().owned());  // the lock is still held, once
  EXPECT_FALSE(cond.wait(1ms));          // and the condition still works
  guard.unlock();
  world().barrier();
}

TEST(BadInputCondition, FullWaitList) {
  // The wait list holds 8 waiting threads per rank (plus 8): one more is a clear error, and
  // the waiters already on it are not disturbed.
  mpx::Condition cond;
  if (rank() == 0) {
    const int capacity = 8 * size() + 8;
    std::atomic<bool> go{false};
    std::atomic<int> started{0};
    std::atomic<int> woken{0};
    std::vector<std::thread> waiters;
    for (int i = 0; i < capacity; ++i)
      waiters.emplace_back([&] {
        std::unique_lock guard(cond);
        ++started;  // under the lock, which wait() releases only once this thread is listed
        if (cond.wait_for([&] { return go.load(); }, 60s)) ++woken;
      });
    while (started.load() < capacity) std::this_thread::sleep_for(1ms);
    {
      std::unique_lock guard(cond);  // taken after the last waiter joined the list
      EXPECT_MPX_ERROR(mpx::UsageError, (void)cond.wait(1ms), cond.name(), "wait",
                       "the wait list is full (" + std::to_string(capacity) + " waiting threads)");
      EXPECT_TRUE(cond.get_lock().owned());  // the caller still holds the lock
      go = true;
      cond.notify_all();
    }
    for (auto& t : waiters) t.join();
    EXPECT_EQ(woken.load(), capacity);
  }
  world().barrier();
}

TEST(BadInputCondition, UseAfterMove) {
  mpx::Condition a;
  mpx::Condition b = std::move(a);
  const std::string name = a.name();
  EXPECT_NE(name.find("moved-from"), std::string::npos) << name;
  EXPECT_MPX_ERROR(mpx::UsageError, a.wait(), name, "wait", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, a.notify(), name, "notify", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, a.notify_all(), name, "notify_all", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, a.lock(), name, "lock", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, a.unlock(), name, "unlock", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)a.try_lock(), name, "try_lock", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)a.acquire(), name, "acquire", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, a.release(), name, "release", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)a.get_lock(), name, "get_lock", "moved from");
  {
    std::lock_guard guard(b);
    b.notify_all();
  }
  world().barrier();
}

// ---- Event ---------------------------------------------------------------------------------

TEST(BadInputEvent, NegativeTimeoutAndUseAfterMove) {
  mpx::Event a;
  EXPECT_MPX_ERROR(mpx::UsageError, (void)a.wait(-1ms), a.name(), "wait",
                   "timeout must not be negative");
  mpx::Event b = std::move(a);
  const std::string name = a.name();
  EXPECT_MPX_ERROR(mpx::UsageError, a.set(), name, "set", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, a.clear(), name, "clear", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)a.is_set(), name, "is_set", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)a.wait(), name, "wait", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)a.wait(1ms), name, "wait", "moved from");
  world().barrier();
  if (rank() == 0) b.set();
  EXPECT_TRUE(b.wait(30s));
  world().barrier();
}

// ---- Barrier -------------------------------------------------------------------------------

TEST(BadInputBarrier, PartiesAndTimeoutOfTheConstructor) {
  const std::string more = std::to_string(size() + 1);
  EXPECT_MPX_ERROR(mpx::UsageError, mpx::Barrier b(0), "Barrier#", "create", "parties = 0");
  EXPECT_MPX_ERROR(mpx::UsageError, mpx::Barrier b(-3), "Barrier#", "create", "parties = -3");
  EXPECT_MPX_ERROR(mpx::UsageError, mpx::Barrier b(size() + 1), "Barrier#", "create",
                   "parties = " + more);
  EXPECT_MPX_ERROR(mpx::UsageError, mpx::Barrier b(1, nullptr, -1ms), "Barrier#", "create",
                   "timeout must not be negative");
  mpx::Barrier ok(size());  // the next barrier works
  EXPECT_GE(ok.wait(30s), 0);
}

TEST(BadInputBarrier, WaitTimeoutBreaksAndResetRepairs) {
  mpx::Barrier barrier(size());
  EXPECT_MPX_ERROR(mpx::UsageError, (void)barrier.wait(-1ms), barrier.name(), "wait",
                   "timeout must not be negative");
  EXPECT_FALSE(barrier.broken());  // a rejected call does not break it
  world().barrier();
  if (rank() == 0)
    EXPECT_MPX_ERROR(mpx::BrokenBarrierError, (void)barrier.wait(20ms), barrier.name(), "wait",
                     "timed out");
  world().barrier();
  EXPECT_TRUE(barrier.broken());
  EXPECT_MPX_ERROR(mpx::BrokenBarrierError, (void)barrier.wait(), barrier.name(), "wait",
                   "the barrier is broken");
  world().barrier();
  if (rank() == 0) barrier.reset();
  world().barrier();
  EXPECT_FALSE(barrier.broken());
  EXPECT_GE(barrier.wait(30s), 0);
  world().barrier();
  if (rank() == 0) barrier.abort();
  world().barrier();
  EXPECT_MPX_ERROR(mpx::BrokenBarrierError, (void)barrier.wait(30s), barrier.name(), "wait",
                   "abort()");
  world().barrier();
}

TEST(BadInputBarrier, UseAfterMove) {
  mpx::Barrier a(size());
  mpx::Barrier b = std::move(a);
  const std::string name = a.name();
  EXPECT_MPX_ERROR(mpx::UsageError, (void)a.wait(), name, "wait", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)a.wait(1ms), name, "wait", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, a.abort(), name, "abort", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, a.reset(), name, "reset", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)a.broken(), name, "broken", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)a.n_waiting(), name, "n_waiting", "moved from");
  EXPECT_GE(b.wait(30s), 0);
}

// ---- Value and Array -----------------------------------------------------------------------

TEST(BadInputValue, LockOptionAndUseAfterMove) {
  mpx::Value<int> nolock(7, mpx::SharedOptions{.lock = false});
  EXPECT_MPX_ERROR(mpx::UsageError, (void)nolock.get_lock(), nolock.name(), "get_lock",
                   "SharedOptions{.lock = false}");
  EXPECT_EQ(nolock.load(), 7);
  mpx::Value<int> a(3);
  mpx::Value<int> b = std::move(a);
  const std::string name = a.name();
  EXPECT_NE(name.find("moved-from"), std::string::npos) << name;
  int expected = 3;
  EXPECT_MPX_ERROR(mpx::UsageError, (void)a.load(), name, "load", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)a.value(), name, "load", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, a.store(1), name, "store", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, a = 1, name, "store", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)a.fetch_add(1), name, "fetch_add", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)a.fetch_sub(1), name, "fetch_add", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)a.exchange(1), name, "exchange", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)a.compare_exchange(expected, 1), name, "compare_exchange",
                   "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)a.get_lock(), name, "get_lock", "moved from");
  EXPECT_FALSE(a.uses_shared_memory());
  EXPECT_EQ(b.load(), 3);  // the moved-to value kept its value
  world().barrier();
}

TEST(BadInputArray, IndexesAndRangesOutOfRange) {
  mpx::Array<int> arr{1, 2, 3, 4};
  const std::string n = arr.name();
  int expected = 0;
  EXPECT_MPX_ERROR(mpx::UsageError, (void)arr.load(4), n, "load", "index 4 is out of range");
  EXPECT_MPX_ERROR(mpx::UsageError, arr.store(4, 0), n, "store", "index 4 is out of range");
  EXPECT_MPX_ERROR(mpx::UsageError, arr[9] = 0, n, "operator[]", "index 9 is out of range");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)std::as_const(arr)[4], n, "load", "numbered 0..3");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)arr.fetch_add(5, 1), n, "fetch_add", "out of range");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)arr.fetch_sub(5, 1), n, "fetch_sub", "out of range");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)arr.exchange(static_cast<std::size_t>(-1), 1), n,
                   "exchange", "out of range");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)arr.compare_exchange(4, expected, 1), n,
                   "compare_exchange", "out of range");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)arr.slice(2, 5), n, "slice", "range [2, 5)");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)arr.slice(3, 1), n, "slice", "begin <= end");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)arr.slice(5), n, "slice", "range [5, 4)");
  EXPECT_MPX_ERROR(mpx::UsageError, arr.assign(3, {7, 7}), n, "assign", "range [3, 5)");
  EXPECT_MPX_ERROR(mpx::UsageError, arr.assign(std::numeric_limits<std::size_t>::max(), {7, 7}), n,
                   "assign", "out of range");
  EXPECT_MPX_ERROR(mpx::UsageError, arr.assign(std::vector<int>{1, 2}), n, "assign",
                   "got 2 values for an array of 4");
  world().barrier();
  EXPECT_EQ(arr.slice(), (std::vector<int>{1, 2, 3, 4}));  // nothing was written
  world().barrier();
}

TEST(BadInputArray, NegativeOrHugeSizeFailsOnEveryRank) {
  // A negative length converts to a huge std::size_t: a clear error, not a wrapped-around
  // allocation.
  const long negative = -1;
  EXPECT_MPX_ERROR(mpx::UsageError, mpx::Array<double> a(static_cast<std::size_t>(negative)),
                   "Array#", "create", "too large");
  EXPECT_MPX_ERROR(mpx::UsageError, mpx::Array<char> a(std::size_t{1} << 62), "Array#", "create",
                   "too large");
  mpx::Array<int> ok(3);  // the next object works
  ok.fetch_add(1, 1);
  world().barrier();
  EXPECT_EQ(ok.load(1), size());
  world().barrier();
}

TEST(BadInputArray, UseAfterMove) {
  mpx::Array<int> a(4);
  mpx::Array<int> b = std::move(a);
  const std::string name = a.name();
  int expected = 0;
  EXPECT_MPX_ERROR(mpx::UsageError, (void)a.load(0), name, "load", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, a.store(0, 1), name, "store", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, a[0] = 1, name, "operator[]", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)a.fetch_add(0, 1), name, "fetch_add", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)a.exchange(0, 1), name, "exchange", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)a.compare_exchange(0, expected, 1), name,
                   "compare_exchange", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)a.slice(), name, "slice", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, a.assign(0, {1}), name, "assign", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)a.get_lock(), name, "get_lock", "moved from");
  EXPECT_EQ(a.size(), 0u);
  EXPECT_EQ(b.size(), 4u);
  world().barrier();
}

// ---- Dict, Namespace, List -----------------------------------------------------------------

TEST(BadInputDict, MissingKeysAndUseAfterMove) {
  mpx::Dict<std::string, int> d;
  if (rank() == 0) d.set("here", 1);
  world().barrier();
  EXPECT_MPX_ERROR(mpx::KeyError, (void)d.at("gone"), d.name(), "at",
                   "'gone' is not in the dictionary");
  EXPECT_MPX_ERROR(mpx::KeyError, (void)static_cast<int>(d["gone"]), d.name(), "at",
                   "'gone' is not in the dictionary");
  EXPECT_EQ(d.at("here"), 1);  // still works, nothing lost
  world().barrier();
  mpx::Dict<std::string, int> moved = std::move(d);
  const std::string name = d.name();
  EXPECT_NE(name.find("moved-from"), std::string::npos) << name;
  EXPECT_MPX_ERROR(mpx::UsageError, (void)d.get("here"), name, "get", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)d.get("here", 0), name, "get", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)d.at("here"), name, "at", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, d.set("x", 1), name, "set", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, d["x"] = 1, name, "set", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)d.contains("x"), name, "contains", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)d.erase("x"), name, "erase", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)d.pop("x"), name, "pop", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)d.setdefault("x", 1), name, "setdefault", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, d.update({{"x", 1}}), name, "update", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)d.items(), name, "items", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)d.keys(), name, "keys", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)d.size(), name, "size", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)d.empty(), name, "size", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, d.clear(), name, "clear", "moved from");
  EXPECT_EQ(moved.at("here"), 1);
  world().barrier();
}

TEST(BadInputNamespace, MissingNameWrongTypeAndUseAfterMove) {
  mpx::Namespace ns;
  if (rank() == 0) ns.set("x", 2.5);
  world().barrier();
  EXPECT_MPX_ERROR(mpx::KeyError, (void)ns.get<double>("y"), ns.name(), "get", "'y' is not set");
  EXPECT_MPX_ERROR(mpx::TypeMismatch, (void)ns.get<int>("x"), ns.name(), "get",
                   "'x' holds a 'double', not a 'int'");
  EXPECT_MPX_ERROR(mpx::TypeMismatch, (void)ns.get<std::string>("x"), ns.name(), "get",
                   "holds a 'double'");
  EXPECT_EQ(ns.get<double>("x"), 2.5);  // still there
  world().barrier();
  mpx::Namespace moved = std::move(ns);
  const std::string name = ns.name();
  EXPECT_NE(name.find("moved-from"), std::string::npos) << name;
  EXPECT_MPX_ERROR(mpx::UsageError, ns.set("x", 1), name, "set", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)ns.get<double>("x"), name, "get", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)ns.contains("x"), name, "contains", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)ns.erase("x"), name, "erase", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)ns.names(), name, "names", "moved from");
  EXPECT_EQ(moved.get<double>("x"), 2.5);
  world().barrier();
}

TEST(BadInputList, IndexesAndUseAfterMove) {
  mpx::List<int> l;
  if (rank() == 0) l.extend({10, 20});
  world().barrier();
  EXPECT_MPX_ERROR(mpx::IndexError, (void)l.at(2), l.name(), "at", "index 2 is out of range");
  EXPECT_MPX_ERROR(mpx::IndexError, l.set(5, 1), l.name(), "set", "index 5 is out of range");
  EXPECT_EQ(l.get(2), std::nullopt);  // the optional forms say "nothing", not an error
  EXPECT_EQ(l.values(), (std::vector<int>{10, 20}));
  world().barrier();
  mpx::List<int> moved = std::move(l);
  const std::string name = l.name();
  EXPECT_NE(name.find("moved-from"), std::string::npos) << name;
  EXPECT_MPX_ERROR(mpx::UsageError, l.append(1), name, "append", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, l.extend({1}), name, "extend", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)l.get(0), name, "get", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)l.at(0), name, "at", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, l.set(0, 1), name, "set", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)l.pop(), name, "pop", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)l.pop(0), name, "pop", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)l.size(), name, "size", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)l.empty(), name, "size", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, (void)l.values(), name, "values", "moved from");
  EXPECT_MPX_ERROR(mpx::UsageError, l.clear(), name, "clear", "moved from");
  EXPECT_EQ(moved.values(), (std::vector<int>{10, 20}));
  world().barrier();
}

// ---- Creation: a rank outside the communicator, and ranks that disagree ---------------------

/// Every kind of object of this part of mpx, created on `comm`.
struct Creator {
  const char* kind;
  std::function<void(const mpx::Communicator&)> create;
};

std::vector<Creator> creators() {
  return {
      {"Lock#", [](const mpx::Communicator& c) { mpx::Lock x(c); }},
      {"RLock#", [](const mpx::Communicator& c) { mpx::RLock x(c); }},
      {"Semaphore#", [](const mpx::Communicator& c) { mpx::Semaphore x(1, c); }},
      {"BoundedSemaphore#", [](const mpx::Communicator& c) { mpx::BoundedSemaphore x(1, c); }},
      {"RLock#", [](const mpx::Communicator& c) { mpx::Condition x(c); }},  // its RLock first
      {"Condition#",
       [](const mpx::Communicator& c) {
         mpx::Lock lock;  // on the world: every rank creates it
         mpx::Condition x(lock, c);
       }},
      {"Event#", [](const mpx::Communicator& c) { mpx::Event x(c); }},
      {"Barrier#", [](const mpx::Communicator& c) { mpx::Barrier x(1, c); }},
      {"Value#", [](const mpx::Communicator& c) { mpx::Value<int> x(0, c); }},
      {"Array#", [](const mpx::Communicator& c) { mpx::Array<int> x(2, c); }},
      {"Dict#", [](const mpx::Communicator& c) { mpx::Dict<int, int> x(c); }},
      {"Namespace#", [](const mpx::Communicator& c) { mpx::Namespace x(c); }},
      {"List#", [](const mpx::Communicator& c) { mpx::List<int> x(c); }},
  };
}

TEST(BadInputCreate, OnARankOutsideTheCommunicator) {
  // Rank 0 is not in `others` (split gives it a null communicator).
  const auto others = world().split(rank() == 0 ? -1 : 0, rank(), "others");
  for (const auto& c : creators()) {
    if (rank() == 0)
      EXPECT_MPX_ERROR(mpx::UsageError, c.create(others), c.kind, "create",
                       "not a member of others");
    else
      c.create(others);  // the members create it as usual
  }
  mpx::Lock lock;  // the next object, on every rank, works
  std::lock_guard guard(lock);
}

TEST(BadInputCreate, DifferentArgumentsOnDifferentRanks) {
  const bool first = rank() == 0;
  EXPECT_MPX_ERROR(mpx::UsageError, mpx::Semaphore s(first ? 1 : 2), "Semaphore#", "create",
                   "ranks disagree on the initial value");
  // A bad value on one rank only: still every rank fails, at once (no rank waits for the one
  // that gave up).
  EXPECT_MPX_ERROR(mpx::UsageError, mpx::Semaphore s(first ? -1 : 1), "Semaphore#", "create",
                   "ranks disagree");
  EXPECT_MPX_ERROR(mpx::UsageError, mpx::Semaphore s(-1), "Semaphore#", "create", "negative");
  EXPECT_MPX_ERROR(mpx::UsageError, mpx::BoundedSemaphore s(first ? 3 : 1), "BoundedSemaphore#",
                   "create", "ranks disagree");
  EXPECT_MPX_ERROR(mpx::UsageError, mpx::Barrier b(first ? 1 : size()), "Barrier#", "create",
                   "ranks disagree");
  EXPECT_MPX_ERROR(mpx::UsageError, mpx::Barrier b(first ? size() + 1 : 1), "Barrier#", "create",
                   "ranks disagree");
  EXPECT_MPX_ERROR(mpx::UsageError, mpx::Barrier b(1, nullptr, first ? -1s : 1s), "Barrier#",
                   "create", "ranks disagree");
  EXPECT_MPX_ERROR(mpx::UsageError,
                   mpx::Barrier b(1, first ? std::function<void()>([] {}) : nullptr), "Barrier#",
                   "create", "ranks disagree");
  EXPECT_MPX_ERROR(mpx::UsageError, mpx::Value<int> v(0, mpx::SharedOptions{.lock = first}),
                   "Value#", "create", "SharedOptions::lock");
  EXPECT_MPX_ERROR(mpx::UsageError, mpx::Array<int> a(first ? 3 : 4), "Array#", "create",
                   "ranks disagree on the length");
  EXPECT_MPX_ERROR(mpx::UsageError, mpx::Array<int> a(first ? 3 : std::size_t(-1)), "Array#",
                   "create", "ranks disagree on the length");
  // The element or key type ("receiving a type other than the one sent").
  auto value_types = [&] {
    if (first) {
      mpx::Value<int> v;
    } else {
      mpx::Value<float> v;
    }
  };
  EXPECT_MPX_ERROR(mpx::UsageError, value_types(), "Value#", "create", "element type");
  auto array_types = [&] {
    if (first) {
      mpx::Array<std::int64_t> a(2);
    } else {
      mpx::Array<double> a(2);
    }
  };
  EXPECT_MPX_ERROR(mpx::UsageError, array_types(), "Array#", "create", "element type");
  auto dict_types = [&] {
    if (first) {
      mpx::Dict<int, std::string> d;
    } else {
      mpx::Dict<int, std::vector<char>> d;
    }
  };
  EXPECT_MPX_ERROR(mpx::UsageError, dict_types(), "Dict#", "create", "key or value type");
  auto list_types = [&] {
    if (first) {
      mpx::List<int> l;
    } else {
      mpx::List<unsigned> l;
    }
  };
  EXPECT_MPX_ERROR(mpx::UsageError, list_types(), "List#", "create", "key or value type");
  // After all that, objects created in step still work.
  mpx::Semaphore sem(1);
  mpx::Array<int> arr(2);
  arr.fetch_add(0, 1);
  { std::lock_guard guard(sem); }
  world().barrier();
  EXPECT_EQ(arr.load(0), size());
  world().barrier();
}

TEST(BadInputCreate, DifferentObjectsOnDifferentRanks) {
  // Rank 0 creates one kind of object where the other ranks create another: every rank fails
  // at its creation, naming the object it was creating.
  // (Condition(lock) is left out: its first collective is its Lock's; see below.)
  std::vector<Creator> all;
  for (auto& c : creators())
    if (std::string_view(c.kind) != "Condition#") all.push_back(std::move(c));
  for (std::size_t i = 0; i < all.size(); ++i) {
    const std::size_t j = (i + 1) % all.size();
    const auto& mine = rank() == 0 ? all[i] : all[j];
    if (std::string_view(all[i].kind) == all[j].kind) continue;
    EXPECT_MPX_ERROR(mpx::UsageError, mine.create(world()), mine.kind, "create", disagree);
  }
  // A Condition with its own RLock on some ranks, one bound to a Lock on the others.
  mpx::Lock lock;
  auto conditions = [&] {
    if (rank() == 0) {
      mpx::Condition c;
    } else {
      mpx::Condition c(lock);
    }
  };
  EXPECT_MPX_ERROR(mpx::UsageError, conditions(), rank() == 0 ? "RLock#" : "Condition#", "create",
                   disagree);
  mpx::Event event;  // the next object works
  if (rank() == 0) event.set();
  EXPECT_TRUE(event.wait(30s));
  world().barrier();
}

}  // namespace
