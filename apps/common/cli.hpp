// apps/common/cli.hpp: the small command-line parser the mpx apps share.
//   Cli cli(argc, argv, "hello", "[--ordered] [--json]");
//   bool json = cli.flag("--json");
//   long long n = cli.integer("--steps", 1000000);
//   cli.done();   // rejects unknown options with a usage line
#pragma once

#include <cstdio>
#include <cstdlib>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace mpx::apps {

/// Parses --name and --name value options; every app accepts --help.
class Cli {
 public:
  Cli(int argc, char** argv, std::string program, std::string usage)
      : program_(std::move(program)), usage_(std::move(usage)), args_(argv + 1, argv + argc) {}

  /// True if `--name` is present.
  bool flag(const std::string& name) {
    known_.insert(name);
    for (const auto& a : args_)
      if (a == name) return true;
    return false;
  }
  /// The value after `--name`, or `fallback`.
  std::string text(const std::string& name, const std::string& fallback) {
    known_.insert(name);
    for (std::size_t i = 0; i + 1 < args_.size(); ++i)
      if (args_[i] == name) {
        values_.insert(i + 1);
        return args_[i + 1];
      }
    for (const auto& a : args_)
      if (a == name) fail("option " + name + " needs a value");
    return fallback;
  }
  /// The integer after `--name` (accepts 1e9 style), or `fallback`.
  long long integer(const std::string& name, long long fallback) {
    const std::string v = text(name, "");
    if (v.empty()) return fallback;
    char* end = nullptr;
    const double d = std::strtod(v.c_str(), &end);
    if (end == v.c_str() || *end != '\0') fail("option " + name + " needs a number, got '" + v + "'");
    return static_cast<long long>(d);
  }
  /// Exits with the usage line on --help or on an unknown option.
  void done() {
    known_.insert("--help");
    for (std::size_t i = 0; i < args_.size(); ++i) {
      if (args_[i] == "--help") {
        std::printf("usage: %s %s\n", program_.c_str(), usage_.c_str());
        std::exit(0);
      }
      if (!values_.count(i) && !known_.count(args_[i])) fail("unknown option '" + args_[i] + "'");
    }
  }

 private:
  [[noreturn]] void fail(const std::string& message) const {
    std::fprintf(stderr, "%s: %s\nusage: %s %s\n", program_.c_str(), message.c_str(), program_.c_str(),
                 usage_.c_str());
    std::exit(2);
  }
  std::string program_, usage_;
  std::vector<std::string> args_;
  std::set<std::string> known_;
  std::set<std::size_t> values_;
};

}  // namespace mpx::apps
