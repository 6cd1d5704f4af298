#pragma once
// A private directory for one test (mkdtemp under the temp directory),
// removed with everything in it when the test ends.

#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <string>

namespace ringmq::testing {

class scratch_dir {
 public:
  explicit scratch_dir(const std::string& name = "ringmq-test") {
    auto pattern = (std::filesystem::temp_directory_path() / (name + "-XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~scratch_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;

  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

}  // namespace ringmq::testing
