#pragma once
// The debug timelines' file (src/cuda/common/cta_timeline_capture.hpp) in the GPU tests: run a call with the
// capture on, read back the records of its last launch.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace omniattn::testing {

struct TimelineRecord {
  long long slot = 0, start = 0, end = 0, sm = 0, tile = -1, head = -1, steps = 0;
};

/// Runs `call` with the environment variable `env_name` naming a fresh file, then returns the records of the last
/// launch in it (a malformed line or a missing file is a test failure) and removes the file.
template <class Call>
std::vector<TimelineRecord> last_launch_timeline(const char* env_name, const std::string& file_name, Call&& call) {
  const std::string path = ::testing::TempDir() + file_name;
  std::remove(path.c_str());
  setenv(env_name, path.c_str(), 1);
  call();
  unsetenv(env_name);
  std::vector<TimelineRecord> last;
  std::ifstream file(path);
  if (!file.good()) ADD_FAILURE() << "no timeline file " << path;
  for (std::string line; std::getline(file, line);) {
    if (line.rfind("launch ", 0) == 0) {
      last.clear();
      continue;
    }
    std::istringstream in(line);
    TimelineRecord r;
    in >> r.slot >> r.start >> r.end >> r.sm >> r.tile >> r.head >> r.steps;
    if (!in) ADD_FAILURE() << "malformed timeline line: " << line;
    last.push_back(r);
  }
  std::remove(path.c_str());
  return last;
}

}  // namespace omniattn::testing
