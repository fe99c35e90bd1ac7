// mpx/detail/progress.hpp: the progress engine. One background thread per rank serves every
// object this rank hosts (a queue's buffer, a lock's owner table, a pool's task list), so
// requests from other ranks are answered while this rank's main thread computes and never
// calls mpx. The thread polls with MPI_Iprobe/MPI_Test and backs off exactly as waiting
// threads do (detail/wait.hpp): microseconds of latency while there is traffic, about one
// percent of a core while idle. It starts with the first attached service and stops before
// MPI is finalised.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace mpx::detail {

/// Something a rank hosts and serves in the background.
class Service {
 public:
  virtual ~Service() = default;
  /// Handles whatever requests are pending, without blocking. Returns true when it did any
  /// work (the engine then stays hot). Runs on the progress thread; must not throw: an
  /// exception that escapes is reported and ends the job (MPI_Abort), since the service
  /// would otherwise stop answering and every peer would hang.
  virtual bool progress() = 0;
  /// Name used when reporting an escaped exception (for example "Queue#1").
  [[nodiscard]] virtual const char* service_name() const noexcept = 0;
};

/// The rank's single progress thread.
class ProgressEngine {
 public:
  /// The engine of this process.
  static ProgressEngine& instance();

  /// Starts serving `service` (starting the thread if needed).
  void attach(Service& service);
  /// Stops serving `service`; when this returns, progress() is not running and will not be
  /// called again, so the service may be destroyed.
  void detach(Service& service);
  /// Ends the current sleep of the engine at once: call after queuing local work that a
  /// service should handle, or after sending a request the service's peer will answer.
  void wake() noexcept;
  /// True on the engine's own thread.
  [[nodiscard]] bool on_engine_thread() const noexcept;
  /// Stops the thread (Environment calls this before MPI_Finalize). Services still attached
  /// are dropped with a warning.
  void stop() noexcept;

  ProgressEngine(const ProgressEngine&) = delete;
  ProgressEngine& operator=(const ProgressEngine&) = delete;

 private:
  ProgressEngine() = default;
  ~ProgressEngine();
  void run();

  std::mutex mutex_;  // guards services_ and is held while they are polled
  std::vector<Service*> services_;
  std::mutex sleep_mutex_;
  std::condition_variable sleep_cv_;
  bool woken_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace mpx::detail
