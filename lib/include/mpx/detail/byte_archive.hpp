// mpx/detail/byte_archive.hpp: Boost.Serialization archives that write into a byte vector and
// read from a byte span with memcpy (the layout of Boost.MPI's homogeneous binary buffer
// archives, without MPI_Pack, without MPI_Alloc_mem, without a std::streambuf or the
// std::locale that binary_oarchive builds for every archive). Full Boost.Serialization
// semantics (versions, object tracking, pointers, exported classes) come from
// common_oarchive/common_iarchive; only the primitive layer is ours.
#pragma once

#include <boost/archive/archive_exception.hpp>
#include <boost/archive/basic_archive.hpp>
#include <boost/archive/detail/common_iarchive.hpp>
#include <boost/archive/detail/common_oarchive.hpp>
#include <boost/archive/detail/register_archive.hpp>
#include <boost/archive/impl/archive_serializer_map.ipp>
#include <boost/mpl/placeholders.hpp>
#include <boost/serialization/array_wrapper.hpp>
#include <boost/serialization/collection_size_type.hpp>
#include <boost/serialization/is_bitwise_serializable.hpp>
#include <boost/serialization/item_version_type.hpp>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

namespace mpx::detail {

/// Output archive appending raw bytes to a std::vector<char>.
class byte_oarchive : public boost::archive::detail::common_oarchive<byte_oarchive> {
  using base = boost::archive::detail::common_oarchive<byte_oarchive>;

 public:
  explicit byte_oarchive(std::vector<char>& out)
      : base(boost::archive::no_header | boost::archive::no_codecvt), out_(out) {}

  void save_binary(const void* p, std::size_t n) {
    const auto* c = static_cast<const char*>(p);
    out_.insert(out_.end(), c, c + n);
  }

  // Arrays of bitwise-serializable elements (std::vector<double>, C arrays) in one copy.
  using use_array_optimization = boost::serialization::is_bitwise_serializable<boost::mpl::_1>;
  template <class T>
  void save_array(const boost::serialization::array_wrapper<T>& a, unsigned /*version*/) {
    if (a.count()) save_binary(a.address(), a.count() * sizeof(T));
  }

  // Everything that reaches here is a primitive (arithmetic, enum) or one of the archive's
  // own small integer wrappers; strings have their own overloads.
  template <class T>
  void save(const T& t) {
    save_binary(&t, sizeof(T));
  }
  template <class C>
  void save(const std::basic_string<C>& s) {
    const std::uint64_t n = s.size();
    save_binary(&n, sizeof n);
    save_binary(s.data(), s.size() * sizeof(C));
  }

  template <class T>
  void save_override(const T& t) {
    base::save_override(t);
  }
  void save_override(const boost::archive::class_id_optional_type&) {}
  void save_override(const boost::archive::class_name_type& t) { save(std::string(t)); }
  void save_override(const boost::archive::class_id_type& t) {
    save(static_cast<std::int_least16_t>(t));
  }
  void save_override(const boost::archive::version_type& t) {
    save(static_cast<std::uint_least32_t>(t));
  }
  void save_override(const boost::archive::tracking_type& t) { save(static_cast<bool>(t.t)); }
  void save_override(const boost::archive::object_id_type& t) {
    save(static_cast<std::uint_least32_t>(t));
  }
  void save_override(const boost::serialization::collection_size_type& t) {
    save(static_cast<std::uint64_t>(t));
  }
  void save_override(const boost::serialization::item_version_type& t) {
    save(static_cast<std::uint_least32_t>(t));
  }

 private:
  friend class boost::archive::detail::interface_oarchive<byte_oarchive>;
  friend class boost::archive::save_access;
  std::vector<char>& out_;
};

/// Input archive reading what byte_oarchive wrote. Reading past the end throws
/// boost::archive::archive_exception (input_stream_error).
class byte_iarchive : public boost::archive::detail::common_iarchive<byte_iarchive> {
  using base = boost::archive::detail::common_iarchive<byte_iarchive>;

 public:
  explicit byte_iarchive(std::span<const char> in)
      : base(boost::archive::no_header | boost::archive::no_codecvt), in_(in) {}

  void load_binary(void* p, std::size_t n) {
    if (n > in_.size() - pos_)
      boost::serialization::throw_exception(
          boost::archive::archive_exception(boost::archive::archive_exception::input_stream_error));
    if (n) std::memcpy(p, in_.data() + pos_, n);
    pos_ += n;
  }

  using use_array_optimization = boost::serialization::is_bitwise_serializable<boost::mpl::_1>;
  template <class T>
  void load_array(boost::serialization::array_wrapper<T>& a, unsigned /*version*/) {
    if (a.count()) load_binary(a.address(), a.count() * sizeof(T));
  }

  template <class T>
  void load(T& t) {
    load_binary(&t, sizeof(T));
  }
  template <class C>
  void load(std::basic_string<C>& s) {
    std::uint64_t n = 0;
    load_binary(&n, sizeof n);
    if (n > (in_.size() - pos_) / sizeof(C))
      boost::serialization::throw_exception(
          boost::archive::archive_exception(boost::archive::archive_exception::input_stream_error));
    s.resize(static_cast<std::size_t>(n));
    load_binary(s.data(), s.size() * sizeof(C));
  }

  template <class T>
  void load_override(T& t) {
    base::load_override(t);
  }
  void load_override(boost::archive::class_id_optional_type&) {}
  void load_override(boost::archive::class_name_type& t) {
    std::string name;
    load(name);
    if (name.size() > BOOST_SERIALIZATION_MAX_KEY_SIZE - 1)
      boost::serialization::throw_exception(
          boost::archive::archive_exception(boost::archive::archive_exception::invalid_class_name));
    std::memcpy(t, name.data(), name.size());
    t.t[name.size()] = '\0';
  }
  void load_override(boost::archive::class_id_type& t) {
    std::int_least16_t x = 0;
    load(x);
    t = boost::archive::class_id_type(x);
  }
  void load_override(boost::archive::class_id_reference_type& t) {
    load_override(static_cast<boost::archive::class_id_type&>(t));
  }
  void load_override(boost::archive::version_type& t) {
    std::uint_least32_t x = 0;
    load(x);
    t = boost::archive::version_type(x);
  }
  void load_override(boost::archive::tracking_type& t) {
    bool x = false;
    load(x);
    t = boost::archive::tracking_type(x);
  }
  void load_override(boost::archive::object_id_type& t) {
    std::uint_least32_t x = 0;
    load(x);
    t = boost::archive::object_id_type(x);
  }
  void load_override(boost::archive::object_reference_type& t) {
    load_override(static_cast<boost::archive::object_id_type&>(t));
  }
  void load_override(boost::serialization::collection_size_type& t) {
    std::uint64_t x = 0;
    load(x);
    t = boost::serialization::collection_size_type(static_cast<std::size_t>(x));
  }
  void load_override(boost::serialization::item_version_type& t) {
    std::uint_least32_t x = 0;
    load(x);
    t = boost::serialization::item_version_type(x);
  }

 private:
  friend class boost::archive::detail::interface_iarchive<byte_iarchive>;
  friend class boost::archive::load_access;
  std::span<const char> in_;
  std::size_t pos_ = 0;
};

}  // namespace mpx::detail

BOOST_SERIALIZATION_REGISTER_ARCHIVE(mpx::detail::byte_oarchive)
BOOST_SERIALIZATION_USE_ARRAY_OPTIMIZATION(mpx::detail::byte_oarchive)
BOOST_SERIALIZATION_REGISTER_ARCHIVE(mpx::detail::byte_iarchive)
BOOST_SERIALIZATION_USE_ARRAY_OPTIMIZATION(mpx::detail::byte_iarchive)
