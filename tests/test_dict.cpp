// Dict (Manager().dict()) and Namespace: every operation, concurrent writers, atomic
// setdefault/pop/update, misuse. The state always lives on rank 0 and is served by its
// progress thread, so one node and several nodes take the same path; the test also runs
// with MPX_NO_SHARED_MEMORY=1 for symmetry with the other objects.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <mpx/dict.hpp>
#include <mpx/mpx.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

const mpx::Communicator& world() { return mpx::Communicator::world(); }
int rank() { return world().rank(); }
int size() { return world().size(); }

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(Dict, ManagerDictExample) {
  // Seed 002: ten workers each store key -> 2 * key; the result holds all ten.
  mpx::Dict<int, int> d;
  for (int i = rank(); i < 10; i += size()) d[i] = i * 2;
  world().barrier();
  std::map<int, int> expected;
  for (int i = 0; i < 10; ++i) expected[i] = 2 * i;
  EXPECT_EQ(d.items(), expected);
  EXPECT_EQ(d.size(), 10u);
  EXPECT_EQ(d.name().rfind("Dict#", 0), 0u) << d.name();
  world().barrier();
}

TEST(Dict, GetSetContainsErase) {
  mpx::Dict<std::string, double> d;
  if (rank() == size() - 1) {
    EXPECT_TRUE(d.empty());
    d.set("pi", 3.14);
    d["e"] = 2.71;
    EXPECT_TRUE(d.contains("pi"));
    EXPECT_FALSE(d.contains("tau"));
    EXPECT_EQ(d.get("pi"), std::optional<double>(3.14));
    EXPECT_EQ(d.get("tau"), std::nullopt);
    EXPECT_EQ(d.get("tau", 6.28), 6.28);
    EXPECT_EQ(d.at("e"), 2.71);
    const double e = d["e"];
    EXPECT_EQ(e, 2.71);
    d["e"] = 2.718;  // replaces
    EXPECT_EQ(d.at("e"), 2.718);
  }
  world().barrier();
  EXPECT_EQ(d.size(), 2u);
  EXPECT_EQ(d.keys(), (std::vector<std::string>{"e", "pi"}));
  world().barrier();
  if (rank() == 0) {
    EXPECT_TRUE(d.erase("pi"));
    EXPECT_FALSE(d.erase("pi"));
    EXPECT_EQ(d.pop("e"), std::optional<double>(2.718));
    EXPECT_EQ(d.pop("e"), std::nullopt);
  }
  world().barrier();
  EXPECT_TRUE(d.empty());
  world().barrier();
}

TEST(Dict, MissingKeyIsAKeyError) {
  mpx::Dict<int, std::string> d;
  try {
    (void)d.at(42);
    ADD_FAILURE() << "at() of a missing key must throw";
  } catch (const mpx::KeyError& e) {
    EXPECT_TRUE(contains(e.what(), "42 is not in the dictionary")) << e.what();
    EXPECT_TRUE(contains(e.what(), d.name())) << e.what();
  }
  EXPECT_THROW((void)static_cast<std::string>(d[7]), mpx::KeyError);
  world().barrier();
}

TEST(Dict, ConcurrentWritersOnDistinctKeys) {
  mpx::Dict<int, int> d;
  const int per_rank = 300;
  for (int i = 0; i < per_rank; ++i) d.set(rank() * per_rank + i, rank());
  world().barrier();
  const auto all = d.items();
  ASSERT_EQ(all.size(), static_cast<std::size_t>(per_rank * size()));
  for (const auto& [k, v] : all) EXPECT_EQ(v, k / per_rank);
  world().barrier();
}

TEST(Dict, ConcurrentWritersOnTheSameKeys) {
  // Every rank writes its own value pair (rank, -rank) to the same keys again and again;
  // each entry ends as one writer's whole value, and snapshots taken meanwhile are whole.
  mpx::Dict<int, std::pair<int, int>> d;
  int torn = 0;
  for (int round = 0; round < 100; ++round) {
    for (int k = 0; k < 4; ++k) d.set(k, {rank(), -rank()});
    for (const auto& [k, v] : d.items()) torn += v.first != -v.second ? 1 : 0;
  }
  EXPECT_EQ(torn, 0);
  world().barrier();
  const auto end = d.items();
  EXPECT_EQ(end.size(), 4u);
  for (const auto& [k, v] : end) {
    EXPECT_GE(v.first, 0);
    EXPECT_LT(v.first, size());
    EXPECT_EQ(v.first, -v.second);
  }
  world().barrier();
}

TEST(Dict, SetdefaultHasOneWinner) {
  // All ranks race to claim the same keys; exactly one claim per key succeeds and every rank
  // agrees on the winner.
  mpx::Dict<int, int> d;
  std::vector<int> winners;
  int wins = 0;
  for (int k = 0; k < 50; ++k) {
    const int got = d.setdefault(k, rank());
    winners.push_back(got);
    wins += got == rank() ? 1 : 0;
  }
  const int total = world().allreduce(wins, std::plus<>{});
  EXPECT_EQ(total, 50);
  const auto first = world().bcast(winners, 0);
  EXPECT_EQ(winners, first);
  world().barrier();
}

TEST(Dict, PopHandsEachEntryToOneRank) {
  mpx::Dict<int, int> d;
  if (rank() == 0) {
    std::map<int, int> work;
    for (int i = 0; i < 200; ++i) work[i] = i * i;
    d.update(work);
  }
  world().barrier();
  long long sum = 0;
  int taken = 0;
  for (int i = 0; i < 200; ++i)
    if (auto v = d.pop(i)) {
      sum += *v;
      ++taken;
    }
  EXPECT_EQ(world().allreduce(taken, std::plus<>{}), 200);
  long long expected = 0;
  for (long long i = 0; i < 200; ++i) expected += i * i;
  EXPECT_EQ(world().allreduce(sum, std::plus<>{}), expected);
  EXPECT_TRUE(d.empty());
  world().barrier();
}

TEST(Dict, UpdateIsAtomic) {
  // Rank r's update writes r to every key of a block; a snapshot never shows a mix.
  mpx::Dict<int, int> d;
  std::map<int, int> mine;
  for (int k = 0; k < 32; ++k) mine[k] = rank();
  int mixed = 0;
  for (int round = 0; round < 50; ++round) {
    d.update(mine);
    const auto snap = d.items();
    for (const auto& [k, v] : snap) mixed += v != snap.begin()->second ? 1 : 0;
  }
  EXPECT_EQ(mixed, 0);
  world().barrier();
}

TEST(Dict, ClearAndComplexValues) {
  mpx::Dict<std::string, std::vector<std::string>> d;
  if (rank() == 0) d.set("names", {"ana", "bruno"});
  world().barrier();
  EXPECT_EQ(d.at("names"), (std::vector<std::string>{"ana", "bruno"}));
  world().barrier();
  if (rank() == size() - 1) d.clear();
  world().barrier();
  EXPECT_EQ(d.size(), 0u);
  world().barrier();
}

TEST(Dict, MismatchedTypesFailOnEveryRank) {
  if (size() < 2) GTEST_SKIP();
  try {
    if (rank() == 0) {
      mpx::Dict<int, int> d;
    } else {
      mpx::Dict<int, double> d;
    }
    ADD_FAILURE() << "different value types must fail";
  } catch (const mpx::UsageError& e) {
    EXPECT_TRUE(contains(e.what(), "disagree on the key or value type")) << e.what();
  }
  // A Dict on some ranks and a Namespace on others.
  using Entry = std::pair<int, std::vector<char>>;
  using LookAlike = mpx::Dict<std::string, Entry>;
  auto create = [] {
    if (rank() == 0) {
      LookAlike d;
    } else {
      mpx::Namespace ns;
    }
  };
  EXPECT_THROW(create(), mpx::UsageError);
  mpx::Dict<int, int> ok;  // the next object still works
  ok.set(rank(), rank());
  world().barrier();
  EXPECT_EQ(ok.size(), static_cast<std::size_t>(size()));
  world().barrier();
}

TEST(Dict, HostBusyComputingStillServes) {
  mpx::Dict<int, int> d;
  if (rank() == 0) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
    volatile unsigned long spin = 0;
    while (std::chrono::steady_clock::now() < end) spin = spin + 1;
  } else {
    for (int i = 0; i < 50; ++i) d.set(rank() * 100 + i, i);
  }
  world().barrier();
  EXPECT_EQ(d.size(), static_cast<std::size_t>(50 * (size() - 1)));
  world().barrier();
}

TEST(Dict, HostingCostsNoCoreWhileIdle) {
  // A dictionary alive for 5 s with nobody using it: the host's progress thread backs off.
  mpx::Dict<int, int> d;
  d.set(rank(), 1);
  world().barrier();
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  const auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(5));
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto secs = [](const rusage& u) {
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
  };
  const double cpu = secs(after) - secs(before);
  EXPECT_LT(cpu, 0.1 * wall) << "rank " << rank() << " used " << cpu << " s of CPU in " << wall
                             << " s";
  world().barrier();
  EXPECT_EQ(d.size(), static_cast<std::size_t>(size()));
  world().barrier();
}

// ---- Namespace -----------------------------------------------------------------------------

TEST(Namespace, NamedValuesOfAnyType) {
  // Seed 004: ns = manager.Namespace(); ns.result = []; a worker appends to it.
  mpx::Namespace ns;
  if (rank() == 0) ns.set("result", std::vector<double>{});
  world().barrier();
  if (rank() == size() - 1) {
    auto r = ns.get<std::vector<double>>("result");
    for (double x : {1.0, 2.0, 6.4}) r.push_back(x + 2);
    ns.set("result", r);
    ns.set("count", 3);
    ns.set("label", std::string("done"));
  }
  world().barrier();
  EXPECT_EQ(ns.get<std::vector<double>>("result"), (std::vector<double>{3.0, 4.0, 8.4}));
  EXPECT_EQ(ns.get<int>("count"), 3);
  EXPECT_EQ(ns.get<std::string>("label"), "done");
  EXPECT_TRUE(ns.contains("label"));
  EXPECT_EQ(ns.names(), (std::vector<std::string>{"count", "label", "result"}));
  EXPECT_EQ(ns.name().rfind("Namespace#", 0), 0u) << ns.name();
  world().barrier();
}

TEST(Namespace, MissingNameAndWrongType) {
  mpx::Namespace ns;
  if (rank() == 0) ns.set("x", 1.5);
  world().barrier();
  try {
    (void)ns.get<int>("y");
    ADD_FAILURE() << "a missing name must throw";
  } catch (const mpx::KeyError& e) {
    EXPECT_TRUE(contains(e.what(), "'y' is not set")) << e.what();
  }
  try {
    (void)ns.get<int>("x");
    ADD_FAILURE() << "the wrong type must throw";
  } catch (const mpx::TypeMismatch& e) {
    EXPECT_TRUE(contains(e.what(), "'x' holds a 'double'")) << e.what();
  }
  EXPECT_EQ(ns.get<double>("x"), 1.5);
  world().barrier();
  if (rank() == 0) {
    EXPECT_TRUE(ns.erase("x"));
  }
  world().barrier();
  EXPECT_FALSE(ns.contains("x"));
  world().barrier();
}

}  // namespace
