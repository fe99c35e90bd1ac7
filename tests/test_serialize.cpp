// Serialized values (detail/byte_archive.hpp): every Boost.Serialization feature survives a
// trip between ranks: versions, object tracking (shared_ptr aliasing), exported polymorphic
// pointers, nested STL containers; bad input is an exception, not garbage.
#include <gtest/gtest.h>
#include <mpx/mpx.hpp>

#include <boost/serialization/base_object.hpp>
#include <boost/serialization/export.hpp>
#include <boost/serialization/list.hpp>
#include <boost/serialization/map.hpp>
#include <boost/serialization/optional.hpp>
#include <boost/serialization/set.hpp>
#include <boost/serialization/shared_ptr.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/unique_ptr.hpp>
#include <boost/serialization/unordered_map.hpp>
#include <boost/serialization/utility.hpp>
#include <boost/serialization/vector.hpp>
#include <list>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

struct Inner {
  int a = 0;
  std::string s;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & a & s;
  }
  bool operator==(const Inner&) const = default;
};

struct Outer {
  std::vector<Inner> v;
  std::map<std::string, int> m;
  std::pair<int, double> p;
  boost::optional<std::string> o;
  std::shared_ptr<Inner> first, second;  // the same object twice: tracking keeps one copy
  std::list<std::vector<std::string>> l;
  std::set<long> st;
  std::unordered_map<int, std::string> um;
  unsigned loaded_version = 0;
  template <class Archive>
  void serialize(Archive& ar, unsigned version) {
    ar & v & m & p & o & first & second & l & st & um;
    loaded_version = version;
  }
};

struct Shape {
  virtual ~Shape() = default;
  int id = 0;
  [[nodiscard]] virtual std::string kind() const { return "shape"; }
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & id;
  }
};
struct Circle : Shape {
  double radius = 0;
  [[nodiscard]] std::string kind() const override { return "circle"; }
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & boost::serialization::base_object<Shape>(*this) & radius;
  }
};

Outer make_outer() {
  Outer o;
  o.v = {{1, "a"}, {2, std::string(300, 'b')}};
  o.m = {{"x", 1}, {"yy", 2}};
  o.p = {3, 4.5};
  o.o = std::string("optional");
  o.first = std::make_shared<Inner>(Inner{7, "shared"});
  o.second = o.first;
  o.l = {{"p", "q"}, {}};
  o.st = {5, 6, 7};
  o.um = {{1, "one"}, {2, "two"}};
  return o;
}

const mpx::Communicator& world() { return mpx::Communicator::world(); }

}  // namespace

BOOST_CLASS_VERSION(Outer, 3)
BOOST_CLASS_EXPORT(Circle)

TEST(Serialize, EveryFeatureSurvivesTheTrip) {
  const int last = world().size() - 1;
  if (world().rank() == 0) world().send(make_outer(), last);
  if (world().rank() == last) {
    const auto got = world().recv<Outer>(0);
    const auto want = make_outer();
    EXPECT_EQ(got.v, want.v);
    EXPECT_EQ(got.m, want.m);
    EXPECT_EQ(got.p, want.p);
    EXPECT_EQ(got.o.value_or("none"), "optional");
    ASSERT_TRUE(got.first);
    EXPECT_EQ(*got.first, *want.first);
    EXPECT_EQ(got.first, got.second) << "tracking must restore one shared object, not two";
    EXPECT_EQ(got.l, want.l);
    EXPECT_EQ(got.st, want.st);
    EXPECT_EQ(got.um, want.um);
    EXPECT_EQ(got.loaded_version, 3u);
  }
  world().barrier();
}

TEST(Serialize, ExportedPolymorphicPointersKeepTheirDynamicType) {
  const int last = world().size() - 1;
  std::vector<std::unique_ptr<Shape>> shapes;
  shapes.push_back(std::make_unique<Shape>());
  auto circle = std::make_unique<Circle>();
  circle->id = 9;
  circle->radius = 2.5;
  shapes.push_back(std::move(circle));
  if (world().rank() == 0) world().send(shapes, last);
  if (world().rank() == last) {
    const auto got = world().recv<std::vector<std::unique_ptr<Shape>>>(0);
    EXPECT_EQ(got.size(), 2u);
    if (got.size() == 2) {
      EXPECT_EQ(got[0]->kind(), "shape");
      EXPECT_EQ(got[1]->kind(), "circle");
      EXPECT_EQ(got[1]->id, 9);
      EXPECT_EQ(dynamic_cast<const Circle&>(*got[1]).radius, 2.5);
    }
  }
  world().barrier();
}

TEST(Serialize, TruncatedOrForeignBytesThrowInsteadOfReturningGarbage) {
  std::vector<char> bytes;
  mpx::detail::serialize_into(bytes, make_outer());
  bytes.resize(bytes.size() / 2);
  Outer out;
  EXPECT_ANY_THROW(mpx::detail::deserialize_from(bytes, out));

  std::vector<char> text;
  mpx::detail::serialize_into(text, std::string("hello world"));
  std::map<std::string, std::string> wrong;
  EXPECT_ANY_THROW(mpx::detail::deserialize_from(text, wrong));
}

TEST(Serialize, AppendsToWhatIsAlreadyInTheBuffer) {
  std::vector<char> bytes{'x', 'y'};
  mpx::detail::serialize_into(bytes, std::map<int, int>{{1, 2}});
  EXPECT_EQ(bytes[0], 'x');
  std::map<int, int> back;
  mpx::detail::deserialize_from(std::span<const char>(bytes).subspan(2), back);
  EXPECT_EQ(back, (std::map<int, int>{{1, 2}}));
}
