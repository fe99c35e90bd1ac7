#include "mpx/detail/progress.hpp"

#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>

#include "mpx/detail/check.hpp"
#include "mpx/detail/wait.hpp"
#include "mpx/future.hpp"

namespace mpx::detail {

ProgressEngine& ProgressEngine::instance() {
  static ProgressEngine* engine = new ProgressEngine();  // never destroyed: stop() ends it
  return *engine;
}

ProgressEngine::~ProgressEngine() { stop(); }

void ProgressEngine::attach(Service& service) {
  {
    std::lock_guard lock(mutex_);
    services_.push_back(&service);
    if (!thread_.joinable()) {
      stopping_ = false;
      thread_ = std::thread([this] { run(); });
    }
  }
  wake();
}

void ProgressEngine::detach(Service& service) {
  if (on_engine_thread()) {
    std::fputs("mpx: a service tried to detach itself from the progress thread\n", stderr);
    return;
  }
  std::lock_guard lock(mutex_);
  services_.erase(std::remove(services_.begin(), services_.end(), &service), services_.end());
}

void ProgressEngine::wake() noexcept {
  {
    std::lock_guard lock(sleep_mutex_);
    woken_ = true;
  }
  sleep_cv_.notify_one();
}

bool ProgressEngine::on_engine_thread() const noexcept {
  return thread_.joinable() && std::this_thread::get_id() == thread_.get_id();
}

void ProgressEngine::stop() noexcept {
  {
    std::lock_guard lock(mutex_);
    if (!services_.empty()) {
      std::fprintf(stderr,
                   "mpx: rank %d: %zu object(s) still alive at the end of mpx::Environment; "
                   "destroy mpx objects before the Environment (declare the Environment first)\n",
                   world_rank_or_minus_one(), services_.size());
      services_.clear();
    }
  }
  {
    std::lock_guard lock(sleep_mutex_);
    stopping_ = true;
  }
  sleep_cv_.notify_one();
  if (thread_.joinable() && !on_engine_thread()) thread_.join();
}

void ProgressEngine::run() {
  Backoff backoff;
  for (;;) {
    bool worked = false;
    {
      std::lock_guard lock(mutex_);
      for (Service* service : services_) {
        try {
          worked = service->progress() || worked;
        } catch (const std::exception& e) {
          const std::string message = std::string("mpx: rank ") +
                                      std::to_string(world_rank_or_minus_one()) +
                                      ": the progress thread failed serving " +
                                      service->service_name() + ": " + e.what() +
                                      "; ending the job so no peer waits for ever\n";
          std::fputs(message.c_str(), stderr);
          std::fflush(stderr);
          MPI_Abort(MPI_COMM_WORLD, 4);
        }
      }
    }
    sweep_orphans();
    if (worked) {
      backoff.reset();
      continue;
    }
    const auto sleep = backoff.next_sleep();
    std::unique_lock lock(sleep_mutex_);
    if (stopping_) return;
    if (sleep.count() > 0)
      sleep_cv_.wait_for(lock, sleep, [this] { return woken_ || stopping_; });
    if (stopping_) return;
    if (woken_) {
      woken_ = false;
      backoff.reset();
    }
  }
}

}  // namespace mpx::detail
