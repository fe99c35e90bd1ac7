// Seed 001, "Troca de Objetos entre processos": a process sends [42, None, 'hello'] to the
// main process, once through a Queue and once through a Pipe.
//
//   Python (seed 001)                        mpx
//   q = Queue()                              mpx::Queue<PyList> q;     // every rank, before serve
//   p = Process(target=f, args=(q,))         mpx::Process p(f_queue);  // f uses q through a global
//   print(q.get())                           print(q.get());
//   parent_conn, child_conn = Pipe()         auto [parent_conn, child_conn] = mpx::Pipe(0, slot);
//   conn.send([42, None, 'hello'])           conn.send(PyList{42, std::nullopt, "hello"});
//   print(parent_conn.recv())                print(parent_conn.recv<PyList>());
//
// A Pipe end belongs to one rank: child_conn to the slot that will run f (the first start()
// of a fresh ProcessSlots takes rank 1; alone, both ends are on rank 0 and f is a thread).
// Python's list of mixed types becomes a struct with a serialize() member.
// Run: mpiexec -n 2 exchange.
#include <mpx/mpx.hpp>

#include <cstdio>
#include <optional>
#include <string>

struct PyList {
  int number = 0;
  std::optional<int> nothing;
  std::string text;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    bool has = nothing.has_value();
    int value = nothing.value_or(0);
    ar& number& has& value& text;
    nothing = has ? std::optional<int>(value) : std::nullopt;
  }
};

void print(const PyList& l) {
  const std::string middle = l.nothing ? std::to_string(*l.nothing) : "None";
  std::printf("[%d, %s, '%s']\n", l.number, middle.c_str(), l.text.c_str());
  std::fflush(stdout);
}

namespace {
mpx::Queue<PyList>* g_queue = nullptr;
mpx::Connection* g_child_conn = nullptr;
}  // namespace

void f_queue() { g_queue->put(PyList{42, std::nullopt, "hello"}); }
MPX_REGISTER(f_queue);

void f_pipe() {
  g_child_conn->send(PyList{42, std::nullopt, "hello"});
  g_child_conn->close();
}
MPX_REGISTER(f_pipe);

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  const int slot = mpx::Communicator::world().size() > 1 ? 1 : 0;
  mpx::Queue<PyList> q;  // collective
  auto [parent_conn, child_conn] = mpx::Pipe(0, slot);
  g_queue = &q;
  g_child_conn = &child_conn;
  if (auto main_process = mpx::ProcessSlots::serve()) {
    mpx::Process p(f_queue);
    p.start();
    print(q.get());  // prints "[42, None, 'hello']"
    p.join();

    mpx::Process p2(f_pipe);
    p2.start();
    print(parent_conn.recv<PyList>());  // prints "[42, None, 'hello']"
    p2.join();
  }
}
