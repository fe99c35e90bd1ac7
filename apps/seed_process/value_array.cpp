// Seed 001, "Compartilhando Dados entre Processos": a process writes a shared Value and
// negates a shared Array; the main process prints both.
//
//   Python (seed 001)                  mpx
//   num = Value('d', 0.0)              mpx::Value<double> num(0.0);     // every rank, first
//   arr = Array('i', range(10))        mpx::Array<int> arr({0, 1, ..., 9});
//   n.value = 3.1415927                g_num->store(3.1415927);
//   a[i] = -a[i]                       arr[i] = -arr[i];
//   print(num.value); print(arr[:])    num.value(), arr.slice()
//
// On one node the Value and Array live in MPI shared memory (C++ atomics, no message); on
// several nodes rank 0 hosts them. Run: mpiexec -n 2 value_array.
#include <mpx/mpx.hpp>

#include <charconv>
#include <cstdio>
#include <string>

namespace {
mpx::Value<double>* g_num = nullptr;
mpx::Array<int>* g_arr = nullptr;
}  // namespace

void f() {
  g_num->store(3.1415927);
  auto& a = *g_arr;
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = -static_cast<int>(a[i]);
}
MPX_REGISTER(f);

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  mpx::Value<double> num(0.0);
  mpx::Array<int> arr({0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  g_num = &num;
  g_arr = &arr;
  if (auto main_process = mpx::ProcessSlots::serve()) {
    mpx::Process p(f);
    p.start();
    p.join();
    char text[32];
    const auto end = std::to_chars(text, text + sizeof text, num.value()).ptr;  // Python's repr
    std::printf("%s\n", std::string(text, end).c_str());
    std::string list = "[";
    for (int x : arr.slice()) list += (list.size() > 1 ? ", " : "") + std::to_string(x);
    std::printf("%s]\n", list.c_str());
  }
}
