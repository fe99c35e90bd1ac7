// seed_shared_memory: the shared-memory and server-process examples of seed 004 (Italian
// notebook): a worker writes into a shared Array and Value, then into a list kept in a
// manager's Namespace; the main process prints them.
//
//   Python (seed 004)                              C++ (every rank runs main)
//   result = mp.Array('f', len(nums))              mpx::Array<float> result(nums.size());
//   result_sum = mp.Value('f')                     mpx::Value<float> result_sum;
//   p = mp.Process(target=sum_2,                   the last rank runs sum_2
//       args=(nums, result, result_sum))
//   def sum_2(num_list, result, result_sum):       sum_2(nums, result, result_sum):
//     for idx, num in enumerate(num_list):           result[idx] = num + 2;
//       result[idx] = num + 2
//     result_sum = sum(num_list)                     (see below)
//   p.start(); p.join()                            barrier
//   print(f"Array:{result[:]}, sum of array:       rank 0 prints result.slice() and
//         {result_sum.value}")                       result_sum.value()
//
//   ns = manager.Namespace()                       (nothing: every rank already holds the
//   ns.result = manager.list()                      list's handle) mpx::List<double> list;
//   (ns.result).append(nums + 2)  (in a Process)   the last rank: list.append(num + 2)
//   print(ns.result)                               rank 0 prints list.values()
// (A Namespace of plain values is mpx::Namespace: ns.set("x", v), ns.get<T>("x").)
//
// The sum: in the seed, `result_sum = sum(num_list)` rebinds the worker's local name instead
// of writing the shared value, so the notebook prints "sum of array:0.0". This program does
// the same by default; --fixed writes the shared value (result_sum.value = sum(...) in
// Python) and prints 33.5.
//
//   mpiexec -n 2 build/bin/seed_shared_memory
//   mpiexec -n 2 build/bin/seed_shared_memory --fixed
#include <mpx/list.hpp>
#include <mpx/mpx.hpp>

#include <charconv>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "cli.hpp"

    namespace {

  /// Python's repr of a float: shortest text that reads back the same, "3.0" not "3".
  std::string py_float(double x) {
    char buf[64];
    const auto end = std::to_chars(buf, buf + sizeof buf, x).ptr;
    std::string s(buf, end);
    if (s.find_first_of(".en") == std::string::npos) s += ".0";
    return s;
  }

  /// A number of the seed's list: the ints (1..5) stayed ints in Python, so whole numbers print
  /// without ".0"; the others as Python floats.
  std::string py_number(double x) {
    char buf[64];
    const auto end = std::to_chars(buf, buf + sizeof buf, x).ptr;
    return std::string(buf, end);
  }

  template <class T, class Format>
  std::string py_list(const std::vector<T>& values, Format format) {
    std::string out = "[";
    for (std::size_t i = 0; i < values.size(); ++i)
      out += (i ? ", " : "") + format(static_cast<double>(values[i]));
    return out + "]";
  }

  /// The worker of the first example.
  void sum_2(const std::vector<double>& num_list, mpx::Array<float>& result,
             mpx::Value<float>& result_sum, bool fixed) {
    for (std::size_t idx = 0; idx < num_list.size(); ++idx)
      result[idx] = static_cast<float>(num_list[idx] + 2);  // 'f' is a C float, as in Python
    const double sum = std::accumulate(num_list.begin(), num_list.end(), 0.0);
    if (fixed) result_sum = static_cast<float>(sum);  // the seed only rebinds a local name
  }

  /// The worker of the second example: appends to the managed list.
  void sum_2_list(const std::vector<double>& num_list, mpx::List<double>& result) {
    for (double num : num_list) result.append(num + 2);  // (ns.result).append(nums + 2)
  }

}  // namespace

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  mpx::apps::Cli cli(argc, argv, "seed_shared_memory", "[--fixed]");
  const bool fixed = cli.flag("--fixed");
  cli.done();

  const auto& world = mpx::Communicator::world();
  const int worker_rank = world.size() - 1;  // plays the role of mp.Process
  const std::vector<double> nums{1, 2, 3, 4, 5, 6.4, 6.8, 5.3};

  // SHARED MEMORY
  mpx::Array<float> result(nums.size());
  mpx::Value<float> result_sum;
  if (world.rank() == worker_rank) sum_2(nums, result, result_sum, fixed);
  world.barrier();  // p.join()
  if (world.rank() == 0)
    std::printf("Array:%s, sum of array:%s\n", py_list(result.slice(), py_float).c_str(),
                py_float(static_cast<double>(result_sum.value())).c_str());

  // Server process
  mpx::List<double> list;  // ns.result = manager.list()
  if (world.rank() == worker_rank) sum_2_list(nums, list);
  world.barrier();  // p.join()
  if (world.rank() == 0) {
    std::printf("%s\n", py_list(list.values(), py_number).c_str());
    std::fflush(stdout);
  }
  world.barrier();  // every rank keeps its objects until rank 0 has read them
}
