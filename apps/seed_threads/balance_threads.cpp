// Seed 004, "Multithreading": two threads each add 1 to a shared balance 100000 times,
// without and with a lock, ten times each.
//
// In Python the unlocked version printed 200000 every time: the GIL lets one thread run
// Python code at a time, and `balance += 1` was rarely interrupted in the middle. C++ has
// no GIL: the two threads run at the same time on two cores, and a read-modify-write that
// is not atomic loses updates, so without the lock the balance comes out below 200000
// (on a machine with several cores; on one core it may still come out right). With
// std::mutex (Python's Lock) it is always 200000.
//
// The unlocked version uses std::atomic load and store (two separate steps, like the
// bytecodes of `balance += 1`) rather than a plain int, whose unsynchronised use would be
// undefined behaviour in C++, not merely a wrong number.
#include <atomic>
#include <cstdio>
#include <mutex>
#include <thread>

namespace {

std::atomic<long> balance{0};

void increment() {
  balance.store(balance.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

void loop(int n, std::mutex& lock, bool lock_bool) {
  if (lock_bool) {
    for (int i = 0; i < n; ++i) {
      std::lock_guard guard(lock);  // lock.acquire() ... lock.release()
      increment();
    }
  } else {
    for (int i = 0; i < n; ++i) increment();
  }
}

void threads(int n, bool lock_bool) {
  balance = 0;
  std::mutex lock;
  std::thread t1(loop, n, std::ref(lock), lock_bool);
  std::thread t2(loop, n, std::ref(lock), lock_bool);
  t1.join();
  t2.join();
  std::printf("Balance=%ld con lock=%s\n", balance.load(), lock_bool ? "True" : "False");
}

}  // namespace

int main() {
  for (int i = 0; i < 10; ++i) threads(100000, false);
  for (int i = 0; i < 10; ++i) threads(100000, true);
}
