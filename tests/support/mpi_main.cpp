// The one GoogleTest main of every mpx MPI test binary.
//  * Only rank 0 prints GoogleTest's report; other ranks print only their failures, each
//    line prefixed with "[rank R]".
//  * After every test, rank 0 names the ranks the test failed on.
//  * Every rank exits with the all-reduced worst result, so mpiexec fails if any rank did.
#include <gtest/gtest.h>
#include <mpx/mpx.hpp>

#include <cstdio>
#include <string>

namespace {

/// Prints failures of a rank other than 0, prefixed with its rank.
class RankFailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::fprintf(stderr, "[rank %d] %s:%d: Failure\n%s\n", rank_,
                 result.file_name() ? result.file_name() : "?", result.line_number(),
                 result.summary());
    std::fflush(stderr);
  }

 private:
  int rank_;
};

/// After each test, tells rank 0 which ranks it failed on (a collective per test).
class FailureCollector : public ::testing::EmptyTestEventListener {
 public:
  void OnTestEnd(const ::testing::TestInfo& info) override {
    const auto& world = mpx::Communicator::world();
    const int failed = info.result()->Failed() ? 1 : 0;
    const auto all = world.gather(failed, 0);
    if (world.rank() != 0) return;
    std::string ranks;
    for (std::size_t r = 0; r < all.size(); ++r)
      if (all[r]) ranks += (ranks.empty() ? "" : ", ") + std::to_string(r);
    if (!ranks.empty()) {
      std::printf("[  FAILED  ] %s.%s failed on rank(s) %s of %d\n", info.test_suite_name(),
                  info.name(), ranks.c_str(), world.size());
      std::fflush(stdout);
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  const auto& world = mpx::Communicator::world();
  auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
  if (world.rank() != 0) {
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailurePrinter(world.rank()));
  }
  listeners.Append(new FailureCollector);
  const int result = RUN_ALL_TESTS();
  const int worst = world.allreduce(result, mpx::maximum{});
  if (world.rank() == 0 && worst != 0 && result == 0)
    std::printf("[  FAILED  ] some tests failed on other ranks (see the [rank R] lines)\n");
  return worst;
}
