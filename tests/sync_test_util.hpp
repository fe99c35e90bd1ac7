// Helpers shared by the synchronisation tests (test_lock, test_semaphore, test_condition,
// test_event, test_barrier, test_sync_idle).
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <mpx/mpx.hpp>

namespace sync_test {

inline const mpx::Communicator& world() { return mpx::Communicator::world(); }
inline int rank() { return world().rank(); }
inline int size() { return world().size(); }

/// A plain (not atomic) integer in a file every rank opens: a read-modify-write on it races
/// unless something serialises the ranks. Works the same on one node and across "nodes"
/// that share a file system. Collective constructor.
class PlainCounter {
 public:
  PlainCounter() {
    std::string path;
    if (rank() == 0)
      path = "/dev/shm/mpx_sync_counter_" + std::to_string(::getpid()) + "_" +
             std::to_string(serial()++);
    path = world().bcast(path, 0);
    path_ = path;
    if (rank() == 0) {
      const int fd = ::open(path_.c_str(), O_CREAT | O_TRUNC | O_RDWR, 0600);
      const std::int64_t zero = 0;
      (void)!::pwrite(fd, &zero, sizeof zero, 0);
      ::close(fd);
    }
    world().barrier();
    fd_ = ::open(path_.c_str(), O_RDWR);
  }
  ~PlainCounter() {
    ::close(fd_);
    world().barrier();
    if (rank() == 0) ::unlink(path_.c_str());
  }
  PlainCounter(const PlainCounter&) = delete;
  PlainCounter& operator=(const PlainCounter&) = delete;

  std::int64_t read() const {
    std::int64_t v = 0;
    (void)!::pread(fd_, &v, sizeof v, 0);
    return v;
  }
  void write(std::int64_t v) const { (void)!::pwrite(fd_, &v, sizeof v, 0); }
  /// Read, give the other ranks a chance to interleave, write back plus one.
  void increment() const {
    const std::int64_t v = read();
    if ((v & 63) == 0) sched_yield();
    write(v + 1);
  }

 private:
  static int& serial() {
    static int n = 0;
    return n;
  }
  std::string path_;
  int fd_ = -1;
};

/// CPU seconds (user + system, every thread) this process has used.
inline double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Static initialiser of the "_noshm" test variants: forces the cross-node (host rank) path
/// before main() creates the Environment.
struct ForceHostPath {
  ForceHostPath() { ::setenv("MPX_NO_SHARED_MEMORY", "1", 1); }
};

}  // namespace sync_test
