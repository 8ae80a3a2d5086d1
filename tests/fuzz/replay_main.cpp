// tests/fuzz/replay_main.cpp — a main() for a fuzz target without libFuzzer: runs the target's
// LLVMFuzzerTestOneInput once on every input it is given, so the seed corpora and the saved crash
// inputs replay as ordinary ctest tests with any compiler (GCC included).
//
//   replay_<target> PATH...   a PATH is an input file or a directory of them (not recursive)
//
// Exit status 0 if every input ran (a failing input aborts, as under libFuzzer); 2 if a path is
// missing or no input was found, which would otherwise make the test pass vacuously.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <system_error>
#include <vector>

// NOLINTNEXTLINE(readability-identifier-naming): the fuzz target, as libFuzzer names it
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

// Runs the target on one file. The bytes live in a heap block of exactly their size, so that a
// sanitized build catches a read past the end, as libFuzzer's own driver would.
bool replay(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    return false;
  }
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  const std::size_t size = bytes.size();
  const auto data = std::make_unique<std::uint8_t[]>(size);  // NOLINT(*-avoid-c-arrays)
  std::copy(bytes.begin(), bytes.end(), data.get());
  std::printf("  %s (%zu bytes)\n", path.c_str(), size);
  std::fflush(stdout);  // name the input before a failure aborts
  LLVMFuzzerTestOneInput(data.get(), size);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t count = 0;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path path(argv[i]);
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
      std::vector<std::filesystem::path> files;
      for (const auto& entry : std::filesystem::directory_iterator(path)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
      }
      std::sort(files.begin(), files.end());
      std::printf("%s: %zu inputs\n", path.c_str(), files.size());
      for (const auto& file : files) {
        if (!replay(file)) return 2;
        ++count;
      }
    } else if (std::filesystem::is_regular_file(path, ec)) {
      if (!replay(path)) return 2;
      ++count;
    } else {
      std::fprintf(stderr, "no such file or directory: %s\n", path.c_str());
      return 2;
    }
  }
  if (count == 0) {
    std::fprintf(stderr, "no inputs to replay\n");
    return 2;
  }
  std::printf("replayed %zu inputs: all passed\n", count);
  return 0;
}
