#include "mpx/detail/hosted.hpp"

#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <typeinfo>

#include "mpx/detail/check.hpp"
#include "mpx/detail/demangle.hpp"
#include "mpx/detail/wait.hpp"
#include "mpx/environment.hpp"

namespace mpx::detail {

namespace {

constexpr char status_ok = 0;
constexpr char status_exception = 1;

// Runs the handler; an exception becomes an error reply "type\0message".
void run_handler(const HostedState::Handler& handler, std::span<const char> request,
                 std::vector<char>& reply) {
  reply.assign(1, status_ok);
  try {
    handler(request, reply);
  } catch (const std::exception& e) {
    reply.assign(1, status_exception);
    const std::string type = demangle(typeid(e).name());
    reply.insert(reply.end(), type.begin(), type.end());
    reply.push_back('\0');
    const std::string_view what = e.what();
    reply.insert(reply.end(), what.begin(), what.end());
  } catch (...) {
    reply.assign(1, status_exception);
    const std::string_view text = "unknown exception";
    reply.insert(reply.end(), text.begin(), text.end());
    reply.push_back('\0');
  }
}

}  // namespace

/// The host's side: answers requests on the progress thread and counts goodbyes.
class HostedState::Server final : public Service {
 public:
  explicit Server(HostedState& state) : state_(state) {}

  bool progress() override {
    bool worked = false;
    const MPI_Comm comm = state_.comm_.native();
    for (int n = 0; n < 32; ++n) {
      int found = 0;
      MPI_Message message = MPI_MESSAGE_NULL;
      MPI_Status status{};
      MPX_CHECK_MPI(MPI_Improbe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm, &found, &message, &status),
                    state_.comm_.name(), "serve");
      if (!found) break;
      worked = true;
      const std::size_t bytes = message_bytes(status);
      request_.resize(bytes);
      const ByteType type(bytes);
      MPX_CHECK_MPI(
          MPI_Mrecv(request_.data(), type.count(), type.type(), &message, MPI_STATUS_IGNORE),
          state_.comm_.name(), "serve");
      if (status.MPI_TAG == hosted_bye_tag) {
        byes_.fetch_add(1);
        continue;
      }
      auto& out = pending_.emplace_back();
      {
        std::lock_guard lock(state_.state_mutex_);
        run_handler(state_.handler_, request_, out.reply);
      }
      const ByteType reply_type(out.reply.size());
      MPX_CHECK_MPI(MPI_Isend(out.reply.data(), reply_type.count(), reply_type.type(),
                              status.MPI_SOURCE, hosted_reply_tag, comm, &out.request),
                    state_.comm_.name(), "serve");
    }
    for (auto it = pending_.begin(); it != pending_.end();) {
      int done = 0;
      MPX_CHECK_MPI(MPI_Test(&it->request, &done, MPI_STATUS_IGNORE), state_.comm_.name(), "serve");
      it = done ? pending_.erase(it) : std::next(it);
    }
    return worked;
  }

  [[nodiscard]] const char* service_name() const noexcept override {
    return state_.comm_.name().c_str();
  }

  [[nodiscard]] int byes() const noexcept { return byes_.load(); }
  [[nodiscard]] bool idle() const noexcept { return pending_.empty(); }

 private:
  struct Pending {
    std::vector<char> reply;
    MPI_Request request = MPI_REQUEST_NULL;
  };
  HostedState& state_;
  std::vector<char> request_;
  std::list<Pending> pending_;
  std::atomic<int> byes_{0};
};

HostedState::HostedState(const Communicator& comm, int host, Handler handler)
    : comm_(comm), host_(host), handler_(std::move(handler)) {
  comm_.check_rank(host, "create");
  if (is_host() && comm_.size() > 1) {
    server_ = std::make_unique<Server>(*this);
    ProgressEngine::instance().attach(*server_);
  }
}

HostedState::~HostedState() {
  if (!Environment::active()) return;
  if (!is_host()) {
    // Every request of this rank has been answered: say goodbye (a zero-byte message goes
    // out at once).
    MPI_Send(nullptr, 0, MPI_BYTE, host_, hosted_bye_tag, comm_.native());
    return;
  }
  if (!server_) return;
  const int others = comm_.size() - 1;
  if (std::uncaught_exceptions() == 0) {
    try {
      wait_until(
          [&] { return server_->byes() >= others; }, no_deadline,
          {comm_.name(), "destroy (the host waits until every rank has released the object)", -1});
    } catch (...) {
    }
  } else if (server_->byes() < others) {
    std::fprintf(stderr,
                 "mpx: rank %d: %s destroyed by an exception while other ranks may still use it; "
                 "they will wait for ever on their next request\n",
                 world_rank_or_minus_one(), comm_.name().c_str());
  }
  ProgressEngine::instance().detach(*server_);
  // Replies still in flight: their receivers asked for them, so they complete.
  try {
    while (!server_->idle()) server_->progress();
  } catch (...) {
  }
}

HostedReply HostedState::call(std::span<const char> request, std::string_view operation) {
  std::vector<char> reply;
  if (is_host()) {
    {
      std::lock_guard lock(state_mutex_);
      reply.assign(1, status_ok);
      handler_(request, reply);  // a local exception reaches the caller as it is
    }
    return HostedReply(std::move(reply));
  }
  std::lock_guard lock(client_mutex_);
  comm_.send_bytes(request.data(), request.size(), host_, hosted_request_tag, operation);
  MPI_Message message = MPI_MESSAGE_NULL;
  MPI_Status status{};
  wait_until(
      [&] {
        int found = 0;
        MPX_CHECK_MPI(
            MPI_Improbe(host_, hosted_reply_tag, comm_.native(), &found, &message, &status),
            comm_.name(), operation);
        return found != 0;
      },
      no_deadline, {comm_.name(), operation, host_});
  const std::size_t bytes = message_bytes(status);
  reply.resize(bytes);
  const ByteType type(bytes);
  MPI_Request r = MPI_REQUEST_NULL;
  MPX_CHECK_MPI(MPI_Imrecv(reply.data(), type.count(), type.type(), &message, &r), comm_.name(),
                operation);
  comm_.wait(r, operation, host_);
  if (reply.empty()) fail<Error>(comm_.name(), operation, "the host sent an empty reply");
  if (reply[0] == status_exception) {
    const std::string_view text(reply.data() + 1, reply.size() - 1);
    const auto zero = text.find('\0');
    throw RemoteError(
        host_, std::string(text.substr(0, zero)),
        zero == std::string_view::npos ? std::string() : std::string(text.substr(zero + 1)));
  }
  return HostedReply(std::move(reply));
}

}  // namespace mpx::detail
