#include "storage/errc.hpp"

#include <string>

namespace ringmq::storage {

namespace {
class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "storage"; }
  std::string message(int value) const override {
    switch (static_cast<storage_errc>(value)) {
      case storage_errc::io_error: return "I/O error";
      case storage_errc::corruption: return "store corrupted";
      case storage_errc::no_space: return "no space left on the store's disk";
      case storage_errc::busy: return "store busy";
      case storage_errc::schema_mismatch: return "store written by an incompatible version";
      case storage_errc::closed: return "store closed";
      case storage_errc::invalid_argument: return "invalid argument";
      case storage_errc::over_limit: return "store size limit reached";
    }
    return "unknown storage error";
  }
};
}  // namespace

const std::error_category& storage_category() noexcept {
  static const category c;
  return c;
}

}  // namespace ringmq::storage
