// seed_with_lock: Python's `with` statement on a lock (seed 000, "Instrução with").
//
//   Python (threads of one process)             C++ (ranks of an MPI job)
//   def threading_with(statement):              even ranks:
//       with statement:                           std::lock_guard guard(lock);
//           logging.debug('%s acquired via with')  log(lock, "acquired via with");
//   def threading_not_with(statement):          odd ranks:
//       statement.acquire()                       lock.acquire();
//       try: logging.debug('... directly')        try { log(lock, "acquired directly"); }
//       finally: statement.release()              catch (...) { lock.release(); throw; }
//                                                 lock.release();
// std::lock_guard is C++'s `with`: the lock is released when the block ends, also when an
// exception leaves it.
//   mpiexec -n 2 build/bin/seed_with_lock
#include <mpx/mpx.hpp>

#include <cstdio>
#include <mutex>
#include <string>

#include "cli.hpp"

namespace {

// Python's logging format '(%(threadName)-10s) %(message)s'.
void log(const mpx::Lock& lock, const char* how) {
  std::printf("(%-10s) <mpx::Lock %s held by rank %d> %s\n", mpx::this_process().name().c_str(),
              lock.name().c_str(), lock.holder(), how);
  std::fflush(stdout);
}

void threading_with(mpx::Lock& statement) {
  std::lock_guard guard(statement);  // Python: with statement:
  log(statement, "acquired via with");
}

void threading_not_with(mpx::Lock& statement) {
  statement.acquire();
  try {
    log(statement, "acquired directly");
  } catch (...) {  // Python: finally: statement.release()
    statement.release();
    throw;
  }
  statement.release();
}

}  // namespace

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  mpx::apps::Cli cli(argc, argv, "seed_with_lock", "");
  cli.done();
  mpx::Lock lock;  // Python: lock = threading.Lock()
  if (mpx::this_process().rank() % 2 == 0)
    threading_with(lock);
  else
    threading_not_with(lock);
  return 0;
}
