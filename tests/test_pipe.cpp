// Pipe: duplex and one-way ends, EOF, poll, misuse, type mismatch, isolation.
#include <gtest/gtest.h>
#include <mpx/mpx.hpp>

#include <chrono>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace {

const mpx::Communicator& world() { return mpx::Communicator::world(); }
int rank() { return world().rank(); }
int last() { return world().size() - 1; }

TEST(Pipe, DuplexBothWays) {
  auto [a, b] = mpx::Pipe(0, last());
  if (rank() == 0) {
    a.send(std::string("ping"));
    EXPECT_EQ(a.recv<std::string>(), "pong");
  }
  if (rank() == last()) {
    EXPECT_EQ(b.recv<std::string>(), "ping");
    b.send(std::string("pong"));
  }
  world().barrier();
}

TEST(Pipe, OneWayLikePython) {
  // Pipe(duplex=False) -> (reader, writer)
  auto [reader, writer] = mpx::Pipe(last(), 0, false);
  EXPECT_TRUE(reader.readable());
  EXPECT_FALSE(reader.writable());
  EXPECT_TRUE(writer.writable());
  EXPECT_FALSE(writer.readable());
  if (rank() == 0) {
    for (int i = 0; i < 10; ++i) writer.send(i);
    writer.close();
  }
  if (rank() == last()) {
    std::vector<int> got;
    try {
      for (;;) got.push_back(reader.recv<int>());
    } catch (const mpx::EOFError&) {
    }
    EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  }
  world().barrier();
}

TEST(Pipe, OneWayMisuseIsAClearError) {
  auto [reader, writer] = mpx::Pipe(0, last(), false);
  if (rank() == 0) {
    try {
      reader.send(1);
      ADD_FAILURE() << "sending on the read end must fail";
    } catch (const mpx::UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("read-only end"), std::string::npos) << e.what();
    }
  }
  if (rank() == last()) {
    EXPECT_THROW((void)writer.recv<int>(), mpx::UsageError);
  }
  world().barrier();
}

TEST(Pipe, UsingAnotherRanksEndIsAClearError) {
  if (world().size() < 2) GTEST_SKIP();
  auto [a, b] = mpx::Pipe(0, 1);
  if (rank() == 0) {
    try {
      b.send(1);
      ADD_FAILURE();
    } catch (const mpx::UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("belongs to rank 1"), std::string::npos) << e.what();
    }
  }
  world().barrier();
}

TEST(Pipe, EOFAfterDrainAndOnEveryLaterRecv) {
  auto [a, b] = mpx::Pipe(0, last());
  if (rank() == 0) {
    a.send(std::string("last words"));
    a.close();
    EXPECT_TRUE(a.closed());
    EXPECT_THROW(a.send(1), mpx::ClosedError);
    a.close();  // harmless
  }
  if (rank() == last()) {
    EXPECT_EQ(b.recv<std::string>(), "last words");
    EXPECT_THROW((void)b.recv<int>(), mpx::EOFError);
    EXPECT_THROW((void)b.recv<int>(), mpx::EOFError);
    EXPECT_TRUE(b.poll());  // EOF counts as readable, as in Python
  }
  world().barrier();
}

TEST(Pipe, DestroyingAnEndClosesIt) {
  auto [a, b] = mpx::Pipe(0, last());
  if (rank() == 0) {
    a.send(5);
    { auto gone = std::move(a); }  // destroyed: closes
  }
  if (rank() == last()) {
    EXPECT_EQ(b.recv<int>(), 5);
    EXPECT_THROW((void)b.recv<int>(), mpx::EOFError);
  }
  world().barrier();
}

TEST(Pipe, PollTimesOutAndThenSeesData) {
  auto [a, b] = mpx::Pipe(0, last());
  if (rank() == last()) {
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_FALSE(b.poll(std::chrono::milliseconds(100)));
    EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(100));
    EXPECT_THROW((void)b.poll(std::chrono::milliseconds(-1)), mpx::UsageError);
  }
  world().barrier();
  if (rank() == 0) a.send(1.5);
  if (rank() == last()) {
    EXPECT_TRUE(b.poll(std::chrono::seconds(20)));
    EXPECT_EQ(b.recv<double>(), 1.5);
  }
  world().barrier();
}

TEST(Pipe, WrongTypeKeepsTheValue) {
  auto [a, b] = mpx::Pipe(0, last());
  if (rank() == 0) a.send(std::string("not an int"));
  if (rank() == last()) {
    EXPECT_THROW((void)b.recv<int>(), mpx::TypeMismatch);
    EXPECT_TRUE(b.poll());
    EXPECT_EQ(b.recv<std::string>(), "not an int");
  }
  world().barrier();
}

TEST(Pipe, WrongTypeKeepsALargeValueAndOrderHolds) {
  auto [a, b] = mpx::Pipe(0, last());
  if (rank() == 0) {
    a.send(std::vector<double>(100000, 1.5));  // announced, bytes on the bulk communicator
    a.send(7);
    a.send(std::vector<double>(3, 2.5));
    a.close();
  }
  if (rank() == last()) {
    EXPECT_THROW((void)b.recv<int>(), mpx::TypeMismatch);
    EXPECT_THROW((void)b.recv<std::string>(), mpx::TypeMismatch);  // still the same value
    const auto big = b.recv<std::vector<double>>();
    EXPECT_EQ(big.size(), 100000u);
    EXPECT_EQ(big.back(), 1.5);
    EXPECT_THROW((void)b.recv<double>(), mpx::TypeMismatch);  // an int is next
    EXPECT_EQ(b.recv<int>(), 7);
    EXPECT_EQ(b.recv<std::vector<double>>(), (std::vector<double>{2.5, 2.5, 2.5}));
    EXPECT_THROW((void)b.recv<int>(), mpx::EOFError);
  }
  world().barrier();
}

TEST(Pipe, PipesAreIsolatedFromEachOtherAndFromWorld) {
  auto [a1, b1] = mpx::Pipe(0, last());
  auto [a2, b2] = mpx::Pipe(0, last());
  if (rank() == 0) {
    a2.send(2);
    a1.send(1);
    world().send(3, last(), 0);
  }
  if (rank() == last()) {
    EXPECT_EQ(b1.recv<int>(), 1);
    EXPECT_EQ(world().recv<int>(0, 0), 3);
    EXPECT_EQ(b2.recv<int>(), 2);
  }
  world().barrier();
}

TEST(Pipe, BothEndsOnOneRankTalkAcrossThreads) {
  auto [a, b] = mpx::Pipe(0, 0);
  if (rank() == 0) {
    std::thread t([&b] {
      for (int i = 0; i < 100; ++i) b.send(b.recv<int>() * 2);
    });
    for (int i = 0; i < 100; ++i) {
      a.send(i);
      EXPECT_EQ(a.recv<int>(), 2 * i);
    }
    t.join();
  }
  world().barrier();
}

TEST(Pipe, LargeValuesAndSerializedValues) {
  auto [a, b] = mpx::Pipe(0, last());
  if (rank() == 0) {
    a.send(std::vector<double>(1 << 20, 3.0));
    a.send(std::vector<std::string>{"x", "yz"});
  }
  if (rank() == last()) {
    const auto v = b.recv<std::vector<double>>();
    EXPECT_EQ(v.size(), 1u << 20);
    EXPECT_EQ(v.back(), 3.0);
    EXPECT_EQ(b.recv<std::vector<std::string>>().back(), "yz");
  }
  world().barrier();
}

TEST(Pipe, RecvIntoFillsTheCallersBuffer) {
  auto [a, b] = mpx::Pipe(0, last());
  if (rank() == 0) {
    a.send(std::vector<int>{1, 2, 3});
    a.send(std::string("hello"));
    a.send(std::vector<int>(100, 7));  // too large for the buffer below: kept for recv()
    a.send(std::vector<char>(5000, 'z'));  // beyond the eager size: waits for the transfer
    a.send(2.5);
  }
  if (rank() == last()) {
    std::vector<int> buffer(10, -1);
    EXPECT_EQ(b.recv_into(std::span<int>(buffer)), 3u);
    EXPECT_EQ(buffer[2], 3);
    EXPECT_EQ(buffer[3], -1);
    std::string text(8, '.');
    EXPECT_EQ(b.recv_into(std::span<char>(text)), 5u);
    EXPECT_EQ(text, "hello...");
    try {
      (void)b.recv_into(std::span<int>(buffer));
      ADD_FAILURE() << "a buffer too small must be a clear error";
    } catch (const mpx::UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("holds only 40"), std::string::npos) << e.what();
    }
    EXPECT_EQ(b.recv<std::vector<int>>(), std::vector<int>(100, 7));
    std::vector<char> big(6000);
    EXPECT_EQ(b.recv_into(std::span<char>(big)), 5000u);
    EXPECT_EQ(big[4999], 'z');
    EXPECT_THROW((void)b.recv_into(std::span<char>(big)), mpx::TypeMismatch);  // a double
    EXPECT_EQ(b.recv<double>(), 2.5);
  }
  world().barrier();
}

TEST(Pipe, MismatchedCreationAcrossRanksIsAClearError) {
  if (world().size() < 3) GTEST_SKIP() << "needs 3 ranks to disagree";
  // Rank 0 asks for Pipe(0, 1), the others for Pipe(0, last): every rank must fail.
  const int other = rank() == 0 ? 1 : last();
  try {
    (void)mpx::Pipe(0, other);
    ADD_FAILURE() << "expected UsageError";
  } catch (const mpx::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("ranks disagree"), std::string::npos) << e.what();
  }
}

}  // namespace
