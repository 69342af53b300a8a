// Benchmark (not a test): the disk's floor under the webhook latency target. Each webhook is
// answered after its commit's fdatasync of the WAL, so no reply can be faster than that. This
// writes 4 KiB at a time into a 1 MiB file (overwriting, as a recycled WAL does), fdatasyncs
// after each write, pauses between them like an open-loop load, and prints the percentiles.
//
//   build-rel/bench/bench_fsync_latency [dir=/tmp] [count=2000] [pause_us=2000]
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  std::string dir = argc > 1 ? argv[1] : "/tmp";
  int count = argc > 2 ? std::stoi(argv[2]) : 2000;
  int pause_us = argc > 3 ? std::stoi(argv[3]) : 2000;
  std::string path = dir + "/aoun-fsync-latency.tmp";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) {
    std::perror(path.c_str());
    return 1;
  }
  std::vector<char> block(4096, 'x');
  constexpr int blocks = 256;  // 1 MiB, allocated before the measured writes
  for (int i = 0; i < blocks; ++i) (void)!::pwrite(fd, block.data(), block.size(), static_cast<off_t>(i) * 4096);
  ::fsync(fd);
  std::vector<double> ms;
  ms.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    if (::pwrite(fd, block.data(), block.size(), static_cast<off_t>(i % blocks) * 4096) < 0 || ::fdatasync(fd) != 0) {
      std::perror("write");
      return 1;
    }
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    std::this_thread::sleep_for(std::chrono::microseconds(pause_us));
  }
  ::close(fd);
  ::unlink(path.c_str());
  std::sort(ms.begin(), ms.end());
  auto at = [&](double q) { return ms[std::min(ms.size() - 1, static_cast<std::size_t>(q * static_cast<double>(ms.size())))]; };
  std::printf("4 KiB pwrite + fdatasync, %d times in %s: p50 %.3f p90 %.3f p99 %.3f max %.3f ms\n", count, dir.c_str(),
              at(0.50), at(0.90), at(0.99), ms.back());
  return 0;
}
