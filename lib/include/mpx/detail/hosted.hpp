// mpx/detail/hosted.hpp: state that lives on one rank (the host) and is served to the other
// ranks of an object's communicator by the host's progress thread. Used by Dict, Namespace
// and by Value/Array when the ranks do not share a node.
//
// A request is a byte string; the object's handler turns it into a reply. Every request,
// local or remote, runs under one mutex on the host, so each request is atomic with respect
// to every other. Requests from the host itself run directly on the calling thread; other
// ranks send the request to the host and wait (without spinning) for the reply. A rank has
// at most one request of an object in flight (its threads take turns), so replies cannot be
// confused.
#pragma once

#include <atomic>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mpx/communicator.hpp"
#include "mpx/detail/progress.hpp"

namespace mpx::detail {

/// A reply: one status byte, then the handler's payload.
class HostedReply {
 public:
  HostedReply() = default;
  explicit HostedReply(std::vector<char> bytes) : bytes_(std::move(bytes)) {}
  /// The handler's payload (local).
  [[nodiscard]] std::span<const char> payload() const noexcept {
    return bytes_.empty() ? std::span<const char>() : std::span<const char>(bytes_).subspan(1);
  }

 private:
  std::vector<char> bytes_;
};

/// The hosted state of one object and its server.
class HostedState {
 public:
  /// Turns a request into a reply payload (appended to `reply`). Runs on the host under the
  /// state mutex. May throw: a remote caller then gets mpx::RemoteError, a local one the
  /// exception itself.
  using Handler = std::function<void(std::span<const char> request, std::vector<char>& reply)>;

  /// Starts serving on the host rank `host` of `comm` (collective in the sense that every
  /// rank of `comm` constructs one, in the same order; does not communicate). `comm` must be
  /// the object's private communicator: the server takes every message on it.
  HostedState(const Communicator& comm, int host, Handler handler);
  /// Host: keeps serving until every other rank has destroyed its handle (so no rank waits
  /// for ever on a reply), then stops. Other ranks: tell the host they are done (never
  /// throws; does nothing after the Environment ended).
  ~HostedState();

  HostedState(const HostedState&) = delete;
  HostedState& operator=(const HostedState&) = delete;

  /// Runs `request` on the host and returns its reply (remote unless this rank is the host).
  /// `operation` names the call in diagnostics and errors.
  HostedReply call(std::span<const char> request, std::string_view operation);

  /// True on the host rank (local).
  [[nodiscard]] bool is_host() const noexcept { return comm_.rank() == host_; }
  /// The host rank (local).
  [[nodiscard]] int host() const noexcept { return host_; }
  /// The object's communicator (local).
  [[nodiscard]] const Communicator& comm() const noexcept { return comm_; }

 private:
  class Server;
  const Communicator& comm_;
  int host_;
  Handler handler_;
  std::mutex state_mutex_;   // host: serialises every request
  std::mutex client_mutex_;  // other ranks: one request in flight per rank
  std::unique_ptr<Server> server_;
};

/// Tags on an object's private communicator used by HostedState.
inline constexpr int hosted_request_tag = 1;
inline constexpr int hosted_reply_tag = 2;
inline constexpr int hosted_bye_tag = 3;

}  // namespace mpx::detail
