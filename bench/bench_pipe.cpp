// bench_pipe: mpx::Pipe ping-pong between rank 0 and rank 1 against what a C++ MPI
// programmer would write by hand, measured in the same run:
//   * latency and bandwidth, 8 B .. 16 MiB, against raw MPI_Send/MPI_Recv on
//     MPI_COMM_WORLD into preallocated buffers;
//   * a std::string of 8 characters against raw MPI at 8 B;
//   * a struct of a std::string and a std::vector<double> (Boost.Serialization binary
//     archive in mpx) against Boost.MPI's serialized send of the same struct.
// Run with scripts/bench.sh, or: mpiexec -n 2 build-release/bin/bench_pipe [--quick] [--json]
//
// mpx-bench: ranks=2
#if MPX_HAVE_BOOST_MPI
#include <boost/mpi/communicator.hpp>
#endif
#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "harness.hpp"
#include "mpx/mpx.hpp"

namespace bench = mpx::bench;

namespace {

/// The serialized payload: a record with a name and measurements.
struct Record {
  std::string name;
  std::vector<double> values;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar & name & values;
  }
};

Record make_record(std::size_t doubles) {
  Record r;
  r.name = "sensor-42/temperature";
  r.values.resize(doubles);
  for (std::size_t i = 0; i < doubles; ++i) r.values[i] = 0.5 * static_cast<double>(i);
  return r;
}

/// Raw MPI ping-pong of `bytes` bytes on MPI_COMM_WORLD into a preallocated buffer.
auto raw_ping_pong(int rank, std::vector<char>& buffer) {
  return bench::ping_pong(
      rank,
      [&buffer](int peer) {
        MPI_Send(buffer.data(), static_cast<int>(buffer.size()), MPI_BYTE, peer, 7, MPI_COMM_WORLD);
      },
      [&buffer](int peer) {
        MPI_Recv(buffer.data(), static_cast<int>(buffer.size()), MPI_BYTE, peer, 7, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
      });
}

}  // namespace

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  const auto opt = bench::parse_options(argc, argv, "bench_pipe");
  if (!bench::require_ranks(2, "bench_pipe")) return 1;
  bench::Report report("bench_pipe", opt);
  const int rank = mpx::this_process().rank();

  auto [left, right] = mpx::Pipe(0, 1);  // collective: every rank creates the pipe
  mpx::Connection* mine = rank == 0 ? &left : rank == 1 ? &right : nullptr;

  // ---- trivially copyable value, 8 B ----------------------------------------------------------
  if (opt.wants("8 B double")) {
    report.progress("8 B double");
    double value = 1.5;
    auto pipe = bench::ping_pong(
        rank, [&](int) { mine->send(value); }, [&](int) { value = mine->recv<double>(); });
    std::vector<char> buffer(sizeof(double));
    const auto t = bench::compare(pipe, raw_ping_pong(rank, buffer), opt);
    report.add({"pipe latency", "8 B double", bench::one_way_us(t.candidate), "MPI_Send/Recv",
                bench::one_way_us(t.baseline), "us", bench::at_most(1.3)});
  }

  // ---- std::string, 8 characters ----------------------------------------------------------------
  if (opt.wants("8 B std::string")) {
    report.progress("8 B std::string");
    std::string text = "abcdefgh";
    auto pipe = bench::ping_pong(
        rank, [&](int) { mine->send(text); }, [&](int) { text = mine->recv<std::string>(); });
    std::vector<char> buffer(8);
    const auto t = bench::compare(pipe, raw_ping_pong(rank, buffer), opt);
    report.add({"pipe latency", "8 B std::string", bench::one_way_us(t.candidate), "MPI_Send/Recv",
                bench::one_way_us(t.baseline), "us", bench::at_most(1.5)});
  }

  // ---- contiguous payloads, 8 B .. 16 MiB -------------------------------------------------------
  std::vector<std::size_t> sizes;
  if (opt.quick) {
    sizes = {8, 512, 32 << 10, 1 << 20, 16 << 20};
  } else {
    for (std::size_t s = 8; s <= (2u << 20); s *= 4) sizes.push_back(s);  // 8 B .. 2 MiB
    sizes.insert(sizes.end(), {1u << 20, 4u << 20, 16u << 20});
    std::sort(sizes.begin(), sizes.end());
  }
  constexpr std::size_t bandwidth_from = 128u << 10;  // rows in MB/s, and recv_into(), from here on
  constexpr std::size_t bandwidth_target_from = 1u << 20;
  for (const std::size_t bytes : sizes) {
    const std::string label = bench::bytes_label(bytes);
    const double b = static_cast<double>(bytes);
    std::vector<char> buffer(bytes, 'x');
    auto raw = raw_ping_pong(rank, buffer);
    // recv() returns a new std::vector each time: it pays the allocation and the zeroing of
    // the vector's memory, which raw MPI into a preallocated buffer does not.
    if (opt.wants(label + " recv()")) {
      report.progress(label + " recv()");
      std::vector<char> payload(bytes, 'x');
      auto pipe = bench::ping_pong(
          rank, [&](int) { mine->send(payload); },
          [&](int) { payload = mine->recv<std::vector<char>>(); });
      const auto t = bench::compare(pipe, raw, opt);
      if (bytes < bandwidth_from)
        report.add({"pipe latency", label + " recv()", bench::one_way_us(t.candidate),
                    "MPI_Send/Recv", bench::one_way_us(t.baseline), "us",
                    bytes == 8 ? bench::at_most(1.3) : bench::no_target()});
      else
        report.add({"pipe bandwidth", label + " recv()", bench::bandwidth_mbs(b, t.candidate),
                    "MPI_Send/Recv", bench::bandwidth_mbs(b, t.baseline), "MB/s", bench::no_target(),
                    bytes == (16u << 20) ? "recv() allocates and zero-fills a new vector per message; "
                                           "recv_into() reuses the caller's buffer as raw MPI does"
                                         : ""});
    }
    // recv_into() fills the caller's buffer: the like-for-like comparison with raw MPI.
    if (bytes >= bandwidth_from && opt.wants(label + " recv_into()")) {
      report.progress(label + " recv_into()");
      std::vector<char> payload(bytes, 'x');
      auto pipe = bench::ping_pong(
          rank, [&](int) { mine->send(payload); },
          [&](int) { (void)mine->recv_into(std::span<char>(payload)); });
      const auto t = bench::compare(pipe, raw, opt);
      report.add({"pipe bandwidth", label + " recv_into()", bench::bandwidth_mbs(b, t.candidate),
                  "MPI_Send/Recv", bench::bandwidth_mbs(b, t.baseline), "MB/s",
                  bytes >= bandwidth_target_from ? bench::at_least(0.9) : bench::no_target()});
    }
  }

  // ---- serialized struct vs Boost.MPI -------------------------------------------------------------
#if MPX_HAVE_BOOST_MPI
  boost::mpi::communicator bworld;  // MPI_COMM_WORLD, already initialised by mpx::Environment
#endif
  for (const std::size_t doubles : opt.quick ? std::vector<std::size_t>{64}
                                             : std::vector<std::size_t>{8, 64, 1024}) {
    const std::string label = "string+" + std::to_string(doubles) + " doubles";
    if (!opt.wants(label)) continue;
#if !MPX_HAVE_BOOST_MPI
    report.skip("pipe struct", label, "Boost.MPI send", "built without Boost.MPI (install libboost-mpi-dev)");
#else
    report.progress("struct " + label);
    Record record = make_record(doubles);
    auto pipe = bench::ping_pong(
        rank, [&](int) { mine->send(record); }, [&](int) { record = mine->recv<Record>(); });
    Record brecord = make_record(doubles);
    auto boost_mpi = bench::ping_pong(
        rank, [&](int peer) { bworld.send(peer, 9, brecord); },
        [&](int peer) { bworld.recv(peer, 9, brecord); });
    const auto t = bench::compare(pipe, boost_mpi, opt);
    if (rank == 0 && (record.values != brecord.values || record.name != brecord.name))
      report.skip("pipe struct", label, "Boost.MPI send", "payload corrupted: mpx and Boost.MPI disagree");
    else
      report.add({"pipe struct", label, bench::one_way_us(t.candidate), "Boost.MPI send",
                  bench::one_way_us(t.baseline), "us", bench::at_most(0.5),
                  doubles == 64 ? "target <= 0.5x means at least 2x faster than Boost.MPI" : ""});
#endif
  }

  return report.finish();
}
