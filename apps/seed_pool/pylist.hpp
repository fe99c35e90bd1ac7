// apps/seed_pool/pylist.hpp: print a std::vector the way Python prints a list.
#pragma once

#include <string>
#include <vector>

namespace seed_pool {

/// "[1, 2, 3]" as Python's print(list) writes it.
template <class T>
std::string pylist(const std::vector<T>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

}  // namespace seed_pool
