// Boost.JSON is header-only: its implementation is compiled once, here, for
// the test support libraries that parse JSON answers.
#include <boost/json/src.hpp>
