// mpx/error.hpp: the exception hierarchy of mpx.
//
// Every error mpx raises derives from mpx::Error. Where Python's multiprocessing has a name
// for a failure (queue.Empty, queue.Full, TimeoutError, BrokenBarrierError, EOFError), mpx
// uses the same name. Every message starts with "mpx: rank R: <object>.<operation>:" so a
// student reading a log from eight ranks knows where the error happened.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace mpx {

/// Root of every exception mpx throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// An MPI call returned an error code. Carries the code, its class and MPI's own text.
class MpiError : public Error {
 public:
  /// `call` is the MPI function that failed, `context` says which object and operation.
  MpiError(int code, std::string_view call, std::string_view context);
  /// The MPI error code the call returned.
  [[nodiscard]] int code() const noexcept { return code_; }
  /// The MPI error class of code() (MPI_ERR_...).
  [[nodiscard]] int error_class() const noexcept { return class_; }

 private:
  int code_;
  int class_;
};

/// A call was used the wrong way: invalid rank, negative size, wrong end of a pipe, use of
/// an object on a rank that does not take part in it, and so on (Python's ValueError).
class UsageError : public Error {
 public:
  using Error::Error;
};

/// A message arrived whose C++ type differs from the type the receiver asked for.
class TypeMismatch : public Error {
 public:
  using Error::Error;
};

/// A blocking call with a timeout ran out of time (Python's TimeoutError).
class TimeoutError : public Error {
 public:
  using Error::Error;
};

/// get_nowait() / get(timeout) found nothing (Python's queue.Empty).
class Empty : public Error {
 public:
  using Error::Error;
};

/// put_nowait() / put(timeout) found no room (Python's queue.Full).
class Full : public Error {
 public:
  using Error::Error;
};

/// A Barrier was broken by a timeout, abort() or reset() (Python's BrokenBarrierError).
class BrokenBarrierError : public Error {
 public:
  using Error::Error;
};

/// The object was closed: put after close, send on a closed connection.
class ClosedError : public Error {
 public:
  using Error::Error;
};

/// recv() on a channel whose other end closed and that has nothing left (Python's EOFError).
class EOFError : public ClosedError {
 public:
  using ClosedError::ClosedError;
};

/// An exception thrown on another rank, carried back to the caller (for example a Pool task
/// that threw). Names the remote rank, the exception's type and its message.
class RemoteError : public Error {
 public:
  RemoteError(int rank, std::string type, std::string message);
  /// The rank the exception was thrown on.
  [[nodiscard]] int rank() const noexcept { return rank_; }
  /// The demangled type of the remote exception (for example "std::out_of_range").
  [[nodiscard]] const std::string& type() const noexcept { return type_; }
  /// The remote exception's what().
  [[nodiscard]] const std::string& message() const noexcept { return message_; }

 private:
  int rank_;
  std::string type_;
  std::string message_;
};

}  // namespace mpx
