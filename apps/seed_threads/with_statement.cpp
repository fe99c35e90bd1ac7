// Seed 000, "Instrução with" with threading.Lock: one thread takes the lock with `with`, the
// other with acquire()/try/finally/release(). C++'s `with` is std::lock_guard (or
// std::scoped_lock, std::unique_lock): the lock is released when the block ends, also when
// an exception leaves it. (apps/seed_with_lock shows the same with mpx::Lock between ranks.)
//
//   Python                                     C++
//   lock = threading.Lock()                    std::mutex lock;
//   with statement: ...                        { std::lock_guard guard(lock); ... }
//   statement.acquire()                        lock.lock();
//   try: ... finally: statement.release()      try { ... } catch (...) { lock.unlock(); throw; }
//                                              lock.unlock();
#include <cstdio>
#include <mutex>
#include <thread>

namespace {

// Python's logging format '(%(threadName)-10s) %(message)s'.
void log(const char* thread, const std::mutex& lock, const char* how) {
  std::printf("(%-10s) <std::mutex object at %p> %s\n", thread, static_cast<const void*>(&lock),
              how);
}

void threading_with(std::mutex& statement) {
  std::lock_guard guard(statement);
  log("Thread-1", statement, "acquired via with");
}

void threading_not_with(std::mutex& statement) {
  statement.lock();
  try {
    log("Thread-2", statement, "acquired directly");
  } catch (...) {
    statement.unlock();
    throw;
  }
  statement.unlock();
}

}  // namespace

int main() {
  std::mutex lock;
  std::thread t1(threading_with, std::ref(lock));
  std::thread t2(threading_not_with, std::ref(lock));
  t1.join();
  t2.join();
}
