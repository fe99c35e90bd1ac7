// Typed point-to-point messaging: raw, sequence and serialized types, futures, probes,
// type mismatches, bad ranks and tags, messages over 2 GiB.
#include <gtest/gtest.h>
#include <mpx/mpx.hpp>

#include <boost/serialization/map.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>
#include <sys/resource.h>

#include <chrono>
#include <map>
#include <thread>
#include <numeric>
#include <string>
#include <vector>

namespace {

const mpx::Communicator& world() { return mpx::Communicator::world(); }

struct Point {
  double x, y;
  int id;
  bool operator==(const Point&) const = default;
};

struct Record {
  std::string name;
  std::vector<double> values;
  std::map<std::string, int> counts;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & name & values & counts;
  }
  bool operator==(const Record&) const = default;
};

// Each rank sends to the next and receives from the previous (ring), so every test works
// at any rank count, including 1 (a rank talking to itself).
int next() { return (world().rank() + 1) % world().size(); }
int prev() { return (world().rank() + world().size() - 1) % world().size(); }

template <class T>
T ring(const T& value, int tag = 0) {
  auto sent = world().isend(value, next(), tag);
  T got = world().recv<T>(prev(), tag);
  sent.wait();
  return got;
}

TEST(Messaging, TriviallyCopyableValuesTravelRaw) {
  const int r = world().rank();
  EXPECT_EQ(ring(r * 7), prev() * 7);
  EXPECT_EQ(ring(Point{r + 0.5, -r * 1.0, r}), (Point{prev() + 0.5, -prev() * 1.0, prev()}));
  EXPECT_EQ(ring(std::array<int, 3>{r, r + 1, r + 2}), (std::array<int, 3>{prev(), prev() + 1, prev() + 2}));
}

TEST(Messaging, StringsAndVectorsTravelRaw) {
  const int r = world().rank();
  EXPECT_EQ(ring(std::string("from ") + std::to_string(r)), "from " + std::to_string(prev()));
  EXPECT_EQ(ring(std::string()), std::string());
  std::vector<double> v(1000);
  std::iota(v.begin(), v.end(), r);
  const auto got = ring(v);
  ASSERT_EQ(got.size(), 1000u);
  EXPECT_EQ(got.front(), prev());
  EXPECT_EQ(got.back(), prev() + 999);
}

TEST(Messaging, SpanSendsWithoutCopyAndRecvIntoFillsABuffer) {
  const int r = world().rank();
  std::vector<int> data(100, r);
  auto sent = world().isend(std::span<const int>(data), next(), 3);
  std::vector<int> into(100, -1);
  const auto st = world().recv_into(std::span<int>(into), prev(), 3);
  sent.wait();
  EXPECT_EQ(st.source, prev());
  EXPECT_EQ(st.tag, 3);
  EXPECT_EQ(st.bytes, 100 * sizeof(int));
  EXPECT_EQ(into, std::vector<int>(100, prev()));
}

TEST(Messaging, SerializableTypesTravelThroughBoost) {
  const int r = world().rank();
  Record rec{"rank" + std::to_string(r), {1.5, 2.5, double(r)}, {{"a", r}, {"b", 2 * r}}};
  const Record got = ring(rec);
  EXPECT_EQ(got.name, "rank" + std::to_string(prev()));
  EXPECT_EQ(got.values, (std::vector<double>{1.5, 2.5, double(prev())}));
  EXPECT_EQ(got.counts.at("b"), 2 * prev());
  std::vector<std::string> words{"alpha", "beta", std::to_string(r)};
  EXPECT_EQ(ring(words).back(), std::to_string(prev()));
  std::map<int, std::string> m{{r, "x"}};
  EXPECT_EQ(ring(m).count(prev()), 1u);
}

TEST(Messaging, TagsKeepMessagesApartAndStatusReportsThem) {
  auto a = world().isend(1, next(), 10);
  auto b = world().isend(2, next(), 20);
  mpx::Status st;
  EXPECT_EQ(world().recv<int>(prev(), 20, &st), 2);
  EXPECT_EQ(st.tag, 20);
  EXPECT_EQ(st.source, prev());
  EXPECT_EQ(world().recv<int>(prev(), 10), 1);
  a.wait();
  b.wait();
}

TEST(Messaging, AnySourceAndAnyTag) {
  auto s = world().isend(std::string("hi"), next(), 42);
  mpx::Status st;
  const auto got = world().recv<std::string>(mpx::Communicator::any_source, mpx::Communicator::any_tag, &st);
  s.wait();
  EXPECT_EQ(got, "hi");
  EXPECT_EQ(st.tag, 42);
  EXPECT_EQ(st.source, prev());
}

TEST(Messaging, FuturesAreMoveOnlyAndReportReadiness) {
  static_assert(!std::is_copy_constructible_v<mpx::Future<int>>);
  static_assert(std::is_move_constructible_v<mpx::Future<int>>);
  auto f = world().irecv<int>(prev(), 5);
  EXPECT_TRUE(f.valid());
  world().barrier();  // nobody has sent yet
  EXPECT_FALSE(f.test());
  world().barrier();
  auto s = world().isend(world().rank(), next(), 5);
  mpx::Future<int> moved = std::move(f);
  EXPECT_FALSE(f.valid());
  EXPECT_EQ(moved.get(), prev());
  EXPECT_FALSE(moved.valid());
  EXPECT_THROW(moved.get(), mpx::UsageError);
  s.wait();
  EXPECT_TRUE(s.ready());
}

TEST(Messaging, WaitForTimesOutWhenNothingComes) {
  auto f = world().irecv<int>(prev(), 6);
  EXPECT_FALSE(f.wait_for(std::chrono::milliseconds(50)));
  EXPECT_THROW((void)f.wait_for(std::chrono::milliseconds(-1)), mpx::UsageError);
  world().barrier();
  auto s = world().isend(1, next(), 6);
  EXPECT_TRUE(f.wait_for(std::chrono::seconds(20)));
  EXPECT_EQ(f.get(), 1);
  s.wait();
}

TEST(Messaging, ProbeDescribesPendingMessage) {
  auto s = world().isend(std::vector<int>(25, 1), next(), 7);
  const auto st = world().probe(prev(), 7);
  EXPECT_EQ(st.bytes, 25 * sizeof(int));
  EXPECT_EQ(st.source, prev());
  EXPECT_TRUE(world().iprobe(prev(), 7).has_value());
  EXPECT_EQ(world().recv<std::vector<int>>(prev(), 7).size(), 25u);
  s.wait();
  world().barrier();
  EXPECT_FALSE(world().iprobe(prev(), 7).has_value());
}

TEST(Messaging, WrongTypeIsAClearErrorAndTheMessageSurvives) {
  auto s = world().isend(std::string("text"), next(), 9);
  try {
    (void)world().recv<int>(prev(), 9);
    ADD_FAILURE() << "expected TypeMismatch";
  } catch (const mpx::TypeMismatch& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("rank " + std::to_string(world().rank())), std::string::npos) << what;
    EXPECT_NE(what.find("int"), std::string::npos) << what;
    EXPECT_NE(what.find("char"), std::string::npos) << what;
  }
  EXPECT_EQ(world().recv<std::string>(prev(), 9), "text");  // nothing was lost
  s.wait();
}

TEST(Messaging, WrongSerializedTypeIsAClearError) {
  auto s = world().isend(Record{"r", {1.0}, {}}, next(), 11);
  EXPECT_THROW((void)(world().recv<std::map<int, int>>(prev(), 11)), mpx::TypeMismatch);
  EXPECT_EQ(world().recv<Record>(prev(), 11).name, "r");
  s.wait();
}

TEST(Messaging, BadRanksAndTagsAreRejectedAtTheCall) {
  const int n = world().size();
  try {
    world().send(1, n);
    ADD_FAILURE() << "expected UsageError";
  } catch (const mpx::UsageError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("rank " + std::to_string(n) + " is out of range"), std::string::npos) << what;
    EXPECT_NE(what.find("world.send"), std::string::npos) << what;
  }
  EXPECT_THROW(world().send(1, -1), mpx::UsageError);
  EXPECT_THROW(world().send(1, 0, -5), mpx::UsageError);
  EXPECT_THROW(world().send(1, 0, 40000), mpx::UsageError);
  EXPECT_THROW((void)world().recv<int>(n + 3), mpx::UsageError);
  EXPECT_THROW((void)world().irecv<int>(0, 1 << 20), mpx::UsageError);
}

TEST(Messaging, LargeMessagesUseNoSerialization) {
  // 16 MiB through the rendezvous protocol, raw.
  std::vector<std::uint64_t> big(2 << 20);
  std::iota(big.begin(), big.end(), static_cast<std::uint64_t>(world().rank()) << 32);
  const auto got = ring(big);
  ASSERT_EQ(got.size(), big.size());
  EXPECT_EQ(got[12345], (static_cast<std::uint64_t>(prev()) << 32) + 12345);
}

TEST(Messaging, MessagesOver2GiBWork) {
  // Two ranks move 2.25 GiB; other ranks (and a 1-rank world) skip to keep memory bounded.
  if (world().size() < 2) GTEST_SKIP() << "needs 2 ranks";
  const std::size_t n = (std::size_t{9} << 28);  // 2.25 GiB of chars
  if (world().rank() == 0) {
    std::string big(n, 'x');
    big[n - 1] = 'z';
    world().send(big, 1, 1);
  } else if (world().rank() == 1) {
    const auto got = world().recv<std::string>(0, 1);
    ASSERT_EQ(got.size(), n);
    EXPECT_EQ(got[0], 'x');
    EXPECT_EQ(got[n - 1], 'z');
  }
  world().barrier();
}

}  // namespace

namespace {

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

TEST(Messaging, ABlockedRecvCostsNoCore) {
  // Rank 1 waits 3 s in recv while rank 0 sleeps; rank 1 must use < 10% of a core.
  if (world().size() < 2) GTEST_SKIP() << "needs 2 ranks";
  if (world().rank() == 0) {
    std::this_thread::sleep_for(std::chrono::seconds(3));
    world().send(1, 1, 20);
  } else if (world().rank() == 1) {
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = cpu_seconds();
    EXPECT_EQ(world().recv<int>(0, 20), 1);
    const double cpu = cpu_seconds() - c0;
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_GE(wall, 2.5);
    EXPECT_LT(cpu / wall, 0.10) << "cpu " << cpu << " s over " << wall << " s";
  }
  world().barrier();
}

}  // namespace
