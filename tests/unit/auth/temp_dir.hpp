#pragma once
// A private temporary directory for one test, removed with everything in it,
// and small file helpers.

#include <string>
#include <string_view>
#include <vector>

namespace ringmq::auth::testing {

class temp_dir {
 public:
  temp_dir();
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::string& path() const noexcept { return path_; }
  std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

void write_file(const std::string& path, std::string_view content);
std::string read_file(const std::string& path);

// Runs a program to completion (no shell); returns its exit code, its output in `output`.
int run_program(const std::vector<std::string>& argv, std::string& output);

}  // namespace ringmq::auth::testing
