// bench/common/harness.hpp: what every mpx benchmark needs when it runs under mpiexec.
//
//   int main(int argc, char** argv) {
//     mpx::Environment env(argc, argv);
//     auto opt = mpx::bench::parse_options(argc, argv, "bench_x");
//     mpx::bench::Report report("bench_x", opt);
//     auto mpx_body = mpx::bench::ping_pong(rank, [&](int peer) { ... }, [&](int peer) { ... });
//     auto raw_body = mpx::bench::ping_pong(rank, ...);
//     auto t = mpx::bench::compare(mpx_body, raw_body, opt);          // collective
//     report.add({"pipe latency", "8 B", t.candidate / 2 * 1e6, "MPI_Send/Recv",
//                 t.baseline / 2 * 1e6, "us", mpx::bench::at_most(1.3)});
//     return report.finish();                                        // prints on rank 0, exits 0
//   }
//
// Rules the harness follows:
//   * a result is a ratio against a baseline measured in the same run: compare() calibrates
//     an iteration count for each side, then runs rounds of candidate and baseline
//     interleaved (alternating which goes first), so machine noise hits both; the medians of
//     the rounds are compared;
//   * every rank runs the same iteration count (decided from all-reduced times), so ping-pong
//     bodies where rank 0 and rank 1 do matching work stay in step;
//   * a benchmark reports, it does not fail: Report::finish() returns 0 even when targets are
//     missed, and prints the misses clearly at the end;
//   * it works without MPI too (a program that never initialises MPI is "rank 0 of 1").
//
// Command line shared by all benchmarks (parse_options): --quick (short run for smoke
// checks), --json (machine-readable JSON on stdout, the table goes to stderr), --min-time S,
// --rounds N, --filter TEXT (only the cases whose label contains TEXT: see Options::wants),
// --help.
#pragma once

#include <mpi.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#ifndef MPX_SOURCE_DIR
#define MPX_SOURCE_DIR "."  // bench/CMakeLists.txt passes the real source tree
#endif

extern char** environ;  // NOLINT: POSIX

namespace mpx::bench {

using Clock = std::chrono::steady_clock;

// ---- options ---------------------------------------------------------------------------------

/// Options every benchmark accepts.
struct Options {
  bool quick = false;       ///< --quick: short run for smoke checks (fewer sizes, short rounds)
  bool json = false;        ///< --json: JSON on stdout, the table on stderr
  double min_time = 0.05;   ///< --min-time S: each timed run lasts at least S seconds
  int rounds = 9;           ///< --rounds N: timed rounds per side; the median is reported
  std::string filter;       ///< --filter TEXT: run only the cases whose label contains TEXT
  std::vector<std::string> extra;  ///< arguments the harness did not recognise, in order

  /// True when the case named `label` should run (no --filter, or the label contains it).
  [[nodiscard]] bool wants(std::string_view label) const {
    return filter.empty() || label.find(filter) != std::string_view::npos;
  }
};

/// Parses the common options (local). Unknown arguments are kept in Options::extra for the
/// benchmark; pass `allow_extra = false` to reject them with a usage line instead.
inline Options parse_options(int argc, char** argv, std::string_view program,
                             bool allow_extra = false) {
  Options opt;
  auto usage = [&](FILE* out) {
    std::fprintf(out, "usage: %.*s [--quick] [--json] [--min-time S] [--rounds N] [--filter TEXT]\n",
                 static_cast<int>(program.size()), program.data());
  };
  bool min_time_set = false;
  bool rounds_set = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        usage(stderr);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--quick") opt.quick = true;
    else if (a == "--json") opt.json = true;
    else if (a == "--min-time") opt.min_time = std::atof(value().c_str()), min_time_set = true;
    else if (a == "--rounds") opt.rounds = std::max(1, std::atoi(value().c_str())), rounds_set = true;
    else if (a == "--filter") opt.filter = value();
    else if (a == "--help" || a == "-h") {
      usage(stdout);
      std::exit(0);
    } else if (allow_extra) opt.extra.push_back(a);
    else {
      std::fprintf(stderr, "unknown option '%s'\n", a.c_str());
      usage(stderr);
      std::exit(2);
    }
  }
  if (opt.quick) {
    if (!min_time_set) opt.min_time = 0.01;
    if (!rounds_set) opt.rounds = 3;
  }
  return opt;
}

// ---- ranks without assuming MPI --------------------------------------------------------------

/// This process's rank in MPI_COMM_WORLD, or 0 when MPI is not initialised (local).
inline int world_rank() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  if (!init || fin) return 0;
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

/// Number of ranks in MPI_COMM_WORLD, or 1 when MPI is not initialised (local).
inline int world_size() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  if (!init || fin) return 1;
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

inline bool mpi_active() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init && !fin;
}

/// True when the world has at least `ranks` ranks; otherwise prints on rank 0 how to run
/// the benchmark (`mpiexec -n N program`) and returns false (local).
inline bool require_ranks(int ranks, std::string_view program) {
  if (world_size() >= ranks) return true;
  if (world_rank() == 0)
    std::fprintf(stderr, "%.*s needs at least %d ranks: run it as mpiexec -n %d %.*s (or scripts/bench.sh)\n",
                 static_cast<int>(program.size()), program.data(), ranks, ranks,
                 static_cast<int>(program.size()), program.data());
  return false;
}

/// Waits for `request` sleeping 1 ms between tests, so a rank that waits long (while rank 0
/// runs a Python baseline, say) leaves the core to the ranks that work (local).
inline void idle_wait(MPI_Request& request) {
  int done = 0;
  while (true) {
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (done) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

/// Barrier that does not spin (collective over `comm`; a no-op without MPI).
inline void idle_barrier(MPI_Comm comm = MPI_COMM_WORLD) {
  if (!mpi_active()) return;
  MPI_Request r = MPI_REQUEST_NULL;
  MPI_Ibarrier(comm, &r);
  idle_wait(r);
}

// ---- statistics and timing -------------------------------------------------------------------

/// Median of `v` (mean of the two middle values for an even count); NaN when empty.
inline double median(std::vector<double> v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/// Wall seconds of one call of `fn` (local).
template <class F>
double time_once(F&& fn) {
  const auto t0 = Clock::now();
  fn();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

namespace detail {

/// Seconds `body(n)` takes, the maximum over the ranks of `comm` (collective when MPI runs:
/// every rank starts after a barrier and calls body(n) with the same n).
template <class Body>
double timed_run(Body& body, long n, MPI_Comm comm) {
  const bool mpi = mpi_active();
  if (mpi) MPI_Barrier(comm);
  double t = time_once([&] { body(n); });
  if (mpi) MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, comm);
  return t;
}

/// Smallest iteration count (growing geometrically) for which body(n) lasts `min_time`
/// (collective: every rank sees the same all-reduced times and takes the same decisions).
template <class Body>
long calibrate(Body& body, double min_time, MPI_Comm comm, long max_iterations) {
  long n = 1;
  while (true) {
    const double t = timed_run(body, n, comm);
    if (t >= min_time || n >= max_iterations) return n;
    const double grow = t > 0 ? std::clamp(1.3 * min_time / t, 2.0, 100.0) : 100.0;
    n = std::min(max_iterations, static_cast<long>(std::ceil(static_cast<double>(n) * grow)));
  }
}

}  // namespace detail

/// Median seconds per iteration of `body(n)`, which runs n iterations (collective over
/// `comm` when MPI runs: every rank calls it with matching bodies). Calibrates n so that one
/// run lasts at least opt.min_time, then times opt.rounds runs.
template <class Body>
double measure(Body&& body, const Options& opt, MPI_Comm comm = MPI_COMM_WORLD,
               long max_iterations = 1L << 30) {
  const long n = detail::calibrate(body, opt.min_time, comm, max_iterations);
  std::vector<double> per_iter;
  for (int r = 0; r < opt.rounds; ++r)
    per_iter.push_back(detail::timed_run(body, n, comm) / static_cast<double>(n));
  return median(per_iter);
}

/// Result of compare(): median seconds per iteration of each side.
struct Comparison {
  double candidate = 0;  ///< the mpx code
  double baseline = 0;   ///< what it is compared with
  long candidate_iterations = 0;
  long baseline_iterations = 0;
  /// candidate / baseline: below 1 the candidate is faster.
  [[nodiscard]] double ratio() const { return candidate / baseline; }
};

/// Times `candidate(n)` against `baseline(n)` in the same run (collective over `comm` when
/// MPI runs). Each side is calibrated to last opt.min_time per run; then opt.rounds rounds
/// run both, alternating which goes first, and the medians per iteration are returned.
template <class Candidate, class Baseline>
Comparison compare(Candidate&& candidate, Baseline&& baseline, const Options& opt,
                   MPI_Comm comm = MPI_COMM_WORLD, long max_iterations = 1L << 30) {
  // Warm both paths (first-touch of buffers, connection set-up, lazily created datatypes).
  detail::timed_run(candidate, 1, comm);
  detail::timed_run(baseline, 1, comm);
  Comparison c;
  c.candidate_iterations = detail::calibrate(candidate, opt.min_time, comm, max_iterations);
  c.baseline_iterations = detail::calibrate(baseline, opt.min_time, comm, max_iterations);
  std::vector<double> cand, base;
  auto run_candidate = [&] {
    cand.push_back(detail::timed_run(candidate, c.candidate_iterations, comm) /
                   static_cast<double>(c.candidate_iterations));
  };
  auto run_baseline = [&] {
    base.push_back(detail::timed_run(baseline, c.baseline_iterations, comm) /
                   static_cast<double>(c.baseline_iterations));
  };
  for (int r = 0; r < opt.rounds; ++r) {
    if (r % 2 == 0) run_candidate(), run_baseline();
    else run_baseline(), run_candidate();
  }
  c.candidate = median(cand);
  c.baseline = median(base);
  return c;
}

// ---- the 2-rank ping-pong pattern ------------------------------------------------------------

/// A body for measure()/compare() that runs n round trips between ranks `a` and `b`
/// (default 0 and 1): rank a calls send(b) then recv(b); rank b calls recv(a) then send(a);
/// other ranks do nothing. The time per iteration is one round trip: halve it for latency.
template <class Send, class Recv>
auto ping_pong(int rank, Send send, Recv recv, int a = 0, int b = 1) {
  return [=](long n) mutable {
    if (rank == a) {
      for (long i = 0; i < n; ++i) {
        send(b);
        recv(b);
      }
    } else if (rank == b) {
      for (long i = 0; i < n; ++i) {
        recv(a);
        send(a);
      }
    }
  };
}

/// One-way latency in microseconds from a round-trip time in seconds.
inline double one_way_us(double round_trip_seconds) { return round_trip_seconds / 2 * 1e6; }
/// Bandwidth in MB/s (10^6 bytes) of `bytes` moved one way per half round trip.
inline double bandwidth_mbs(double bytes, double round_trip_seconds) {
  return bytes / (round_trip_seconds / 2) / 1e6;
}

/// "8 B", "4 KiB", "16 MiB".
inline std::string bytes_label(std::size_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB"};
  int u = 0;
  while (bytes >= 1024 && bytes % 1024 == 0 && u < 3) bytes /= 1024, ++u;
  return std::to_string(bytes) + " " + units[u];
}

// ---- targets and the report ------------------------------------------------------------------

/// What a row's ratio (mpx value / baseline value) must satisfy.
struct Target {
  enum class Kind { none, at_most, at_least } kind = Kind::none;
  double limit = 0;
  /// "<= 1.3x", ">= 0.9x" or "-".
  [[nodiscard]] std::string text() const {
    if (kind == Kind::none) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s %.2gx", kind == Kind::at_most ? "<=" : ">=", limit);
    return buf;
  }
  [[nodiscard]] bool met(double ratio) const {
    if (kind == Kind::at_most) return ratio <= limit;
    if (kind == Kind::at_least) return ratio >= limit;
    return true;
  }
};
/// Ratio must be at most `limit` (times, latencies: lower is better).
inline Target at_most(double limit) { return {Target::Kind::at_most, limit}; }
/// Ratio must be at least `limit` (bandwidths, rates: higher is better).
inline Target at_least(double limit) { return {Target::Kind::at_least, limit}; }
/// No target: the row is reported for information.
inline Target no_target() { return {}; }

/// One line of the result table. ratio = value / baseline_value.
struct Row {
  Row() = default;
  /// A measured row: `report.add({"pipe latency", "8 B", 1.1, "MPI_Send/Recv", 0.9, "us",
  /// at_most(1.3)})`.
  Row(std::string benchmark_, std::string size_, double value_, std::string baseline_,
      double baseline_value_, std::string unit_, Target target_ = {}, std::string note_ = {})
      : benchmark(std::move(benchmark_)),
        size(std::move(size_)),
        value(value_),
        baseline(std::move(baseline_)),
        baseline_value(baseline_value_),
        unit(std::move(unit_)),
        target(target_),
        note(std::move(note_)) {}

  std::string benchmark;       ///< "pipe latency"
  std::string size;            ///< size or case: "8 B", "std::string"
  double value = 0;            ///< the mpx measurement
  std::string baseline;        ///< "MPI_Send/Recv", "Boost.MPI", "python multiprocessing"
  double baseline_value = 0;   ///< the baseline measurement, same run
  std::string unit;            ///< "us", "MB/s", "s"
  Target target;               ///< what the ratio must satisfy
  std::string skipped;         ///< non-empty: why the row could not be measured
  std::string note;            ///< optional remark printed under the table

  [[nodiscard]] double ratio() const { return value / baseline_value; }
  /// "PASS", "MISS", "-" (no target) or "skipped".
  [[nodiscard]] std::string verdict() const {
    if (!skipped.empty()) return "skipped";
    if (target.kind == Target::Kind::none) return "-";
    return target.met(ratio()) ? "PASS" : "MISS";
  }
};

/// Thrown by run_python() (and usable by benchmarks) when a baseline cannot run; the
/// message says why. Report::skip() records it as a "skipped" row.
struct Skipped : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Collects rows on rank 0 and prints them as an aligned table (and JSON with --json).
/// Other ranks may call add(); their rows are ignored.
class Report {
 public:
  Report(std::string program, Options opt) : program_(std::move(program)), opt_(std::move(opt)) {}

  /// Adds a measured row (local; kept on rank 0 only).
  void add(Row row) {
    if (world_rank() == 0) rows_.push_back(std::move(row));
  }
  /// Adds a row that could not be measured, with the reason (local).
  void skip(std::string benchmark, std::string size, std::string baseline, std::string reason) {
    Row r;
    r.benchmark = std::move(benchmark);
    r.size = std::move(size);
    r.baseline = std::move(baseline);
    r.skipped = reason.empty() ? "skipped" : std::move(reason);
    add(std::move(r));
  }
  /// Prints a progress line on rank 0 (stderr, so it never mixes with --json output).
  void progress(const std::string& text) const {
    if (world_rank() == 0) std::fprintf(stderr, "  .. %s\n", text.c_str()), std::fflush(stderr);
  }

  [[nodiscard]] const std::vector<Row>& rows() const { return rows_; }

  /// Prints the table (stdout, or stderr with --json) and the JSON (stdout with --json) on
  /// rank 0, then returns 0: benchmarks report, they do not fail (collective only in the
  /// sense that every rank should call it before leaving main).
  int finish() const {
    if (world_rank() != 0) return 0;
    FILE* out = opt_.json ? stderr : stdout;
    print_table(out);
    if (opt_.json) print_json(stdout);
    std::fflush(stdout);
    std::fflush(stderr);
    return 0;
  }

 private:
  static std::string fmt(double v) {
    if (std::isnan(v)) return "-";
    char buf[64];
    const double a = std::fabs(v);
    if (a >= 100000) std::snprintf(buf, sizeof buf, "%.0f", v);
    else if (a >= 100) std::snprintf(buf, sizeof buf, "%.1f", v);
    else if (a >= 1) std::snprintf(buf, sizeof buf, "%.2f", v);
    else std::snprintf(buf, sizeof buf, "%.3f", v);
    return buf;
  }

  void print_table(FILE* out) const {
    const std::vector<std::string> head{"benchmark", "case",  "mpx",    "baseline", "baseline value",
                                        "unit",      "ratio", "target", "verdict"};
    std::vector<std::vector<std::string>> cells;
    for (const auto& r : rows_) {
      const bool s = !r.skipped.empty();
      char ratio[32];
      std::snprintf(ratio, sizeof ratio, "%.2fx", r.ratio());
      cells.push_back({r.benchmark, r.size, s ? "-" : fmt(r.value), r.baseline,
                       s ? "-" : fmt(r.baseline_value), r.unit, s ? "-" : ratio, r.target.text(),
                       r.verdict()});
    }
    std::vector<std::size_t> width(head.size());
    for (std::size_t c = 0; c < head.size(); ++c) {
      width[c] = head[c].size();
      for (const auto& row : cells) width[c] = std::max(width[c], row[c].size());
    }
    // Text columns left-aligned, numbers right-aligned.
    const std::vector<bool> right{false, false, true, false, true, false, true, false, false};
    auto line = [&](const std::vector<std::string>& row) {
      std::string s;
      for (std::size_t c = 0; c < row.size(); ++c) {
        const std::string pad(width[c] - row[c].size(), ' ');
        s += right[c] ? pad + row[c] : row[c] + pad;
        if (c + 1 < row.size()) s += "  ";
      }
      while (!s.empty() && s.back() == ' ') s.pop_back();
      std::fprintf(out, "%s\n", s.c_str());
    };
    char when[64];
    const std::time_t now = std::time(nullptr);
    std::strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
    std::fprintf(out, "\n== %s: %d rank(s), %u core(s), load %s, %s%s (ratio = mpx / baseline) ==\n",
                 program_.c_str(), world_size(), std::thread::hardware_concurrency(),
                 load_average().c_str(), when, opt_.quick ? ", --quick" : "");
    line(head);
    std::size_t total = 0;
    for (auto w : width) total += w + 2;
    std::fprintf(out, "%s\n", std::string(total - 2, '-').c_str());
    for (const auto& row : cells) line(row);

    int pass = 0, miss = 0, skipped = 0;
    for (const auto& r : rows_) {
      const auto v = r.verdict();
      pass += v == "PASS";
      miss += v == "MISS";
      skipped += v == "skipped";
    }
    for (const auto& r : rows_)
      if (!r.note.empty()) std::fprintf(out, "note: %s %s: %s\n", r.benchmark.c_str(), r.size.c_str(), r.note.c_str());
    std::fprintf(out, "%s: %d PASS, %d MISS, %d skipped\n", program_.c_str(), pass, miss, skipped);
    for (const auto& r : rows_) {
      const auto v = r.verdict();
      if (v == "MISS")
        std::fprintf(out, "  MISS  %s %s: ratio %.2fx vs %s, target %s\n", r.benchmark.c_str(),
                     r.size.c_str(), r.ratio(), r.baseline.c_str(), r.target.text().c_str());
      else if (v == "skipped")
        std::fprintf(out, "  SKIP  %s %s: %s\n", r.benchmark.c_str(), r.size.c_str(), r.skipped.c_str());
    }
  }

  /// The 1-minute load average ("?" where /proc/loadavg is missing): a loaded machine makes
  /// every ratio noisy, so the table says how busy it was.
  static std::string load_average() {
    FILE* f = std::fopen("/proc/loadavg", "r");
    if (!f) return "?";
    char buf[32] = {0};
    const int got = std::fscanf(f, "%31s", buf);
    std::fclose(f);
    return got == 1 ? buf : "?";
  }

  static std::string json_string(const std::string& s) {
    std::string o = "\"";
    for (char ch : s) {
      if (ch == '"' || ch == '\\') o += '\\', o += ch;
      else if (ch == '\n') o += "\\n";
      else if (static_cast<unsigned char>(ch) < 0x20) o += ' ';
      else o += ch;
    }
    return o + "\"";
  }
  static std::string json_number(double v) {
    if (!std::isfinite(v)) return "null";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
  }

  void print_json(FILE* out) const {
    std::string s = "{";
    auto field = [&s](const char* key, const std::string& json_value, bool last = false) {
      s += '"';
      s += key;
      s += "\":";
      s += json_value;
      if (!last) s += ',';
    };
    field("program", json_string(program_));
    field("ranks", std::to_string(world_size()));
    field("cores", std::to_string(std::thread::hardware_concurrency()));
    field("load", json_string(load_average()));
    field("quick", opt_.quick ? "true" : "false");
    s += "\"rows\":[";
    for (std::size_t i = 0; i < rows_.size(); ++i) {
      const auto& r = rows_[i];
      const bool sk = !r.skipped.empty();
      if (i) s += ',';
      s += '{';
      field("benchmark", json_string(r.benchmark));
      field("case", json_string(r.size));
      field("mpx", sk ? "null" : json_number(r.value));
      field("baseline", json_string(r.baseline));
      field("baseline_value", sk ? "null" : json_number(r.baseline_value));
      field("unit", json_string(r.unit));
      field("ratio", sk ? "null" : json_number(r.ratio()));
      field("target", json_string(r.target.text()));
      if (sk) field("reason", json_string(r.skipped));
      field("verdict", json_string(r.verdict()), true);
      s += '}';
    }
    s += "]}";
    std::fprintf(out, "%s\n", s.c_str());
  }

  std::string program_;
  Options opt_;
  std::vector<Row> rows_;
};

// ---- external commands and Python baselines --------------------------------------------------

/// Quotes `s` for /bin/sh.
inline std::string shell_quote(const std::string& s) {
  std::string o = "'";
  for (char ch : s) o += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return o + "'";
}

/// `env -u VAR ...` prefix that removes the variables mpiexec set for this rank (OMPI_*,
/// PMIX_*, except OMPI_ALLOW_RUN_AS_ROOT*), so that a command started from inside an MPI
/// job can start its own MPI job (a nested mpiexec or an mpi4py singleton).
inline std::string clean_mpi_env_prefix() {
  std::string prefix = "env";
  for (char** e = environ; e && *e; ++e) {
    const std::string kv = *e;
    const std::string name = kv.substr(0, kv.find('='));
    const bool mpi = name.rfind("OMPI_", 0) == 0 || name.rfind("PMIX_", 0) == 0 ||
                     name.rfind("ORTE_", 0) == 0 || name.rfind("OPAL_", 0) == 0;
    if (mpi && name.rfind("OMPI_ALLOW_RUN_AS_ROOT", 0) != 0) prefix += " -u " + name;
  }
  return prefix;
}

/// While alive, the calling thread may run on every core of the machine. Open MPI binds each
/// rank to a core when there are no more ranks than cores, and a command started from a rank
/// inherits that: a two-process Python baseline would then run both processes on one core
/// (its contended lock pairs became a serial loop, 4-5x faster than on two cores).
class AllCores {
 public:
  AllCores() {
    saved_ok_ = ::sched_getaffinity(0, sizeof saved_, &saved_) == 0;
    cpu_set_t all;
    CPU_ZERO(&all);
    const long n = ::sysconf(_SC_NPROCESSORS_CONF);
    for (long c = 0; c < n && c < CPU_SETSIZE; ++c) CPU_SET(static_cast<std::size_t>(c), &all);
    (void)::sched_setaffinity(0, sizeof all, &all);
  }
  ~AllCores() {
    if (saved_ok_) (void)::sched_setaffinity(0, sizeof saved_, &saved_);
  }
  AllCores(const AllCores&) = delete;
  AllCores& operator=(const AllCores&) = delete;

 private:
  cpu_set_t saved_{};
  bool saved_ok_ = false;
};

/// Runs `command` with /bin/sh (stderr merged into stdout) on every core of the machine (not
/// just the calling rank's, see AllCores) and returns its exit code and output (local; the
/// calling rank waits without spinning).
inline std::pair<int, std::string> run_command(const std::string& command) {
  std::string output;
  const AllCores everywhere;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (!p) return {-1, "popen failed"};
  char buf[4096];
  std::size_t got = 0;
  while ((got = std::fread(buf, 1, sizeof buf, p)) > 0) output.append(buf, got);
  const int status = ::pclose(p);
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  return {code, output};
}

/// Wall seconds of one run of `command` through std::system, its output discarded (local).
/// Throws Skipped if the command fails.
inline double time_command_once(const std::string& command) {
  int status = 0;
  const std::string line = command + " >/dev/null 2>&1";
  const double s = time_once([&] { status = std::system(line.c_str()); });
  if (status != 0) throw Skipped("'" + command + "' failed with status " + std::to_string(status));
  return s;
}

/// Median wall seconds of `repeats` runs of `command`, after one untimed warm-up run
/// (local). Throws Skipped if the command fails.
inline double time_command(const std::string& command, int repeats) {
  std::vector<double> t;
  for (int i = 0; i <= repeats; ++i) {
    const double s = time_command_once(command);
    if (i > 0) t.push_back(s);
  }
  return median(t);
}

/// How run_python() starts the interpreter.
struct PythonOptions {
  /// 0: plain `/usr/bin/python3 script args` (for multiprocessing baselines); N > 0:
  /// `mpiexec -n N python3 script args` (mpi4py baselines), started with a clean MPI
  /// environment, --oversubscribe, and --allow-run-as-root when running as root.
  int ranks = 0;
  /// Which rank of MPI_COMM_WORLD runs the command; the others wait without spinning.
  int root = 0;
};

/// Debian's interpreter: the one with mpi4py (a pyenv python3 on PATH may lack it).
inline constexpr const char* python_interpreter = "/usr/bin/python3";

/// Runs a Python baseline script and returns the number it prints: the last line of its
/// output that parses as a number (collective over MPI_COMM_WORLD when MPI runs: rank
/// `root` runs the script while the others wait without spinning, and every rank gets the
/// number). A relative `script` is taken from the mpx source tree (MPX_SOURCE_DIR), e.g.
/// "bench/python/queue_baseline.py". Throws Skipped on every rank, with the reason on
/// rank `root`, when python3 is missing or the script fails or prints no number.
inline double run_python(const std::string& script, const std::vector<std::string>& args = {},
                         PythonOptions how = {}) {
  double value = std::numeric_limits<double>::quiet_NaN();
  std::string reason;
  if (world_rank() == how.root) {
    const std::string path = !script.empty() && script[0] == '/' ? script : std::string(MPX_SOURCE_DIR) + "/" + script;
    if (::access(python_interpreter, X_OK) != 0) {
      reason = std::string(python_interpreter) +
               " not found (Debian's python3 with mpi4py: apt-get install python3 python3-mpi4py)";
    } else if (::access(path.c_str(), R_OK) != 0) {
      reason = "baseline script " + path + " not found";
    } else {
      std::string cmd = clean_mpi_env_prefix() + " ";
      if (how.ranks > 0) {
        cmd += "mpiexec -n " + std::to_string(how.ranks) + " --oversubscribe ";
        if (::geteuid() == 0) cmd += "--allow-run-as-root ";
      }
      cmd += std::string(python_interpreter) + " " + shell_quote(path);
      for (const auto& a : args) cmd += " " + shell_quote(a);
      const auto [code, out] = run_command(cmd);
      // The last line that is a number is the result.
      std::size_t end = out.size();
      std::string last_line;
      while (end > 0) {
        const std::size_t begin = out.rfind('\n', end - 1);
        const std::size_t from = begin == std::string::npos ? 0 : begin + 1;
        std::string line = out.substr(from, end - from);
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
        if (!line.empty() && last_line.empty()) last_line = line;
        char* stop = nullptr;
        const double v = std::strtod(line.c_str(), &stop);
        if (!line.empty() && stop && *stop == '\0') {
          value = v;
          break;
        }
        if (begin == std::string::npos) break;
        end = begin;
      }
      if (code != 0) {
        value = std::numeric_limits<double>::quiet_NaN();
        reason = "python baseline " + script + " exited with " + std::to_string(code) +
                 (last_line.empty() ? std::string() : ": " + last_line);
      } else if (std::isnan(value)) {
        reason = "python baseline " + script + " printed no number";
      }
    }
  }
  if (mpi_active()) {
    MPI_Request r = MPI_REQUEST_NULL;
    MPI_Ibcast(&value, 1, MPI_DOUBLE, how.root, MPI_COMM_WORLD, &r);
    idle_wait(r);
  }
  if (std::isnan(value)) throw Skipped(reason.empty() ? "python baseline failed on rank " + std::to_string(how.root) : reason);
  return value;
}

}  // namespace mpx::bench
