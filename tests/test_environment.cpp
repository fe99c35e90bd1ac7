// Environment and process information.
#include <gtest/gtest.h>
#include <mpx/mpx.hpp>
#include <unistd.h>

#include <set>

namespace {

TEST(Environment, IsActiveWithThreadMultiple) {
  EXPECT_TRUE(mpx::Environment::active());
  int level = 0;
  MPI_Query_thread(&level);
  EXPECT_EQ(level, MPI_THREAD_MULTIPLE);
  EXPECT_NE(mpx::Environment::library_version().find("MPI"), std::string::npos);
}

TEST(Environment, SecondEnvironmentIsRefused) { EXPECT_THROW(mpx::Environment second, mpx::UsageError); }

TEST(ThisProcess, RankSizePidHostAreConsistent) {
  const auto& world = mpx::Communicator::world();
  auto& me = mpx::this_process();
  EXPECT_EQ(me.rank(), world.rank());
  EXPECT_EQ(me.size(), world.size());
  EXPECT_EQ(me.pid(), ::getpid());
  EXPECT_FALSE(me.host().empty());
  const auto pids = world.allgather(static_cast<int>(me.pid()));
  EXPECT_EQ(std::set<int>(pids.begin(), pids.end()).size(), static_cast<std::size_t>(world.size()));
  const auto ranks = world.allgather(me.rank());
  for (int r = 0; r < world.size(); ++r) EXPECT_EQ(ranks[static_cast<std::size_t>(r)], r);
}

TEST(ThisProcess, NameDefaultsToRankAndCanBeSet) {
  auto& me = mpx::this_process();
  EXPECT_EQ(me.name(), "rank-" + std::to_string(me.rank()));
  me.set_name("worker");
  EXPECT_EQ(mpx::this_process().name(), "worker");
  me.set_name("rank-" + std::to_string(me.rank()));
}

TEST(Environment, CpuCountMatchesTheMachine) {
  EXPECT_EQ(mpx::cpu_count(), static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)));
  EXPECT_GE(mpx::cpu_count(), 1);
}

TEST(Printing, PrintOrderedPrintsEveryRankInOrderOnRankZero) {
  const auto& world = mpx::Communicator::world();
  ::testing::internal::CaptureStdout();
  mpx::print_ordered("line of " + std::to_string(world.rank()));
  mpx::print0("only rank zero");
  const std::string out = ::testing::internal::GetCapturedStdout();
  if (world.rank() == 0) {
    std::string expected;
    for (int r = 0; r < world.size(); ++r) expected += "line of " + std::to_string(r) + "\n";
    expected += "only rank zero\n";
    EXPECT_EQ(out, expected);
  } else {
    EXPECT_EQ(out, "");
  }
}

}  // namespace
