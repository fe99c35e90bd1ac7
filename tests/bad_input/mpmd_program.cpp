// Ranks running different programs (issue 7, item 4): the same source is built twice, as
// bad_input_mpmd_a (MPX_MPMD_VARIANT 0) and bad_input_mpmd_b (MPX_MPMD_VARIANT 1), which differ
// in an item type, a queue bound, a pipe's direction, the order objects are created in, a
// registered function, or the type a message is received as. `mpiexec -n 1 a S : -n 1 b S`
// runs scenario S; every rank must end with a clear, typed mpx error (printed as
// "rank R: <type>: <message>") within the test's time bound, never hang.
//
//   bad_input_mpmd_a no-environment      (alone: an mpx call before mpx::Environment)
#include <mpx/mpx.hpp>

#include <cstdio>
#include <cstring>
#include <string>
#include <typeinfo>

#ifndef MPX_MPMD_VARIANT
#error "build with -DMPX_MPMD_VARIANT=0 or 1"
#endif

namespace {

constexpr bool variant_b = MPX_MPMD_VARIANT == 1;

int square(int x) { return x * x; }
MPX_REGISTER(square);

#if MPX_MPMD_VARIANT == 1
int cube(int x) { return x * x * x; }  // only program b has it: the registries differ
MPX_REGISTER(cube);
#endif

int report(const mpx::Error& e) {
  std::string name = "mpx::Error";
  if (typeid(e) == typeid(mpx::UsageError)) name = "mpx::UsageError";
  if (typeid(e) == typeid(mpx::TypeMismatch)) name = "mpx::TypeMismatch";
  std::printf("rank %d: %s: %s\n", mpx::Communicator::world().rank(), name.c_str(), e.what());
  std::fflush(stdout);
  return 0;
}

int no_error(const char* scenario) {
  std::printf("rank %d: no error in scenario %s\n", mpx::Communicator::world().rank(), scenario);
  std::fflush(stdout);
  return 1;
}

int run(const std::string& s) {
  const auto& world = mpx::Communicator::world();
  if (s == "queue-type") {  // Queue<int> on a, Queue<double> on b
    if constexpr (variant_b) {
      mpx::Queue<double> q;
    } else {
      mpx::Queue<int> q;
    }
  } else if (s == "queue-size") {  // unbounded on a, maxsize 4 on b
    mpx::Queue<int> q(variant_b ? 4 : 0);
  } else if (s == "pipe-duplex") {  // duplex on a, one-way on b
    auto pipe = mpx::Pipe(0, 1, !variant_b);
  } else if (s == "order") {  // a creates a Pipe then a Queue, b a Queue then a Pipe
    if constexpr (variant_b) {
      mpx::Queue<int> q;
      auto pipe = mpx::Pipe(0, 1);
    } else {
      auto pipe = mpx::Pipe(0, 1);
      mpx::Queue<int> q;
    }
  } else if (s == "lock-vs-queue") {  // a creates a Lock where b creates a Queue
    if constexpr (variant_b) {
      mpx::Queue<int> q;
    } else {
      mpx::Lock lock;
    }
  } else if (s == "recv-type") {  // a sends an int, b receives a double first
    if constexpr (variant_b) {
      try {
        (void)world.recv<double>(0, 3);
      } catch (const mpx::TypeMismatch& e) {
        report(e);
        std::printf("rank %d: kept: %d\n", world.rank(), world.recv<int>(0, 3));  // not lost
        return 0;
      }
    } else {
      world.send(42, 1, 3);
      return 0;
    }
  } else if (s == "pool") {  // the programs differ: the pool refuses to start
    if (auto pool = mpx::Pool::serve()) (void)pool.apply(square, 3);
  } else if (s == "process") {  // their registries of callables differ
    if (auto main_process = mpx::ProcessSlots::serve()) {
    }
  } else {
    std::fprintf(stderr, "unknown scenario %s\n", s.c_str());
    return 2;
  }
  return no_error(s.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  const std::string scenario = argc > 1 ? argv[1] : "";
  if (scenario == "no-environment") {  // before any Environment exists
    try {
      (void)mpx::Communicator::world();
      std::printf("no error\n");
      return 1;
    } catch (const mpx::UsageError& e) {
      std::printf("mpx::UsageError: %s\n", e.what());
      return 0;
    }
  }
  mpx::Environment env(argc, argv);
  try {
    return run(scenario);
  } catch (const mpx::Error& e) {
    return report(e);
  }
}
