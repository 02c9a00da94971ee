#include <doctest/doctest.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "rumor/common/error.hpp"
#include "rumor/data/dataset.hpp"

using namespace rumor;
using namespace rumor::data;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path p =
      fs::temp_directory_path() / ("rumor-test-data-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

void write_idx_gz(const fs::path& path, const std::vector<std::uint32_t>& dims,
                  const std::vector<std::uint8_t>& values) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  const unsigned char magic[4] = {0, 0, 0x08, static_cast<unsigned char>(dims.size())};
  gzwrite(f, magic, 4);
  for (auto d : dims) {
    const unsigned char b[4] = {static_cast<unsigned char>(d >> 24),
                                static_cast<unsigned char>(d >> 16),
                                static_cast<unsigned char>(d >> 8), static_cast<unsigned char>(d)};
    gzwrite(f, b, 4);
  }
  gzwrite(f, values.data(), static_cast<unsigned>(values.size()));
  gzclose(f);
}

// The kernel's transparent-huge-page mode ("always", "madvise" or "never"; "" if unknown).
std::string thp_mode() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  std::getline(in, line);
  const auto open = line.find('['), close = line.find(']');
  return open == std::string::npos || close == std::string::npos
             ? std::string()
             : line.substr(open + 1, close - open - 1);
}

// AnonHugePages (kB) summed over the mappings of this process that overlap [p, p + bytes)
// (the advice splits a mapping where it begins and ends).
long anon_huge_kb(const void* p, std::size_t bytes) {
  std::ifstream in("/proc/self/smaps");
  const auto from = reinterpret_cast<std::uintptr_t>(p), to = from + bytes;
  bool overlaps = false;
  long kb = 0;
  for (std::string line; std::getline(in, line);) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find(' ') > line.find('-')) {
      overlaps = lo < to && from < hi;
    } else if (overlaps && line.rfind("AnonHugePages:", 0) == 0) {
      kb += std::stol(line.substr(14));
    }
  }
  return kb;
}

}  // namespace

TEST_SUITE("data") {
  TEST_CASE("idx:DIR reads MNIST-format files, missing files name the path") {
    const fs::path dir = temp_dir("idx");
    // 3 train images of 2x2, 2 test images; pixel values encode (image, pixel).
    std::vector<std::uint8_t> train_px, test_px;
    for (int i = 0; i < 3 * 4; ++i) train_px.push_back(static_cast<std::uint8_t>(i * 10));
    for (int i = 0; i < 2 * 4; ++i) test_px.push_back(static_cast<std::uint8_t>(255 - i));
    write_idx_gz(dir / "train-images-idx3-ubyte.gz", {3, 2, 2}, train_px);
    write_idx_gz(dir / "train-labels-idx1-ubyte.gz", {3}, {0, 2, 1});
    write_idx_gz(dir / "t10k-images-idx3-ubyte.gz", {2, 2, 2}, test_px);
    write_idx_gz(dir / "t10k-labels-idx1-ubyte.gz", {2}, {1, 0});
    DatasetOptions o;
    o.normalize = false;
    const Dataset ds = load_dataset("idx:" + dir.string(), o);
    CHECK(ds.dim == 4);
    CHECK(ds.shape == std::vector<std::int64_t>{1, 2, 2});
    CHECK(ds.num_classes == 3);
    CHECK(ds.train.size() == 3);
    CHECK(ds.test.size() == 2);
    CHECK(ds.train.labels == std::vector<std::int32_t>{0, 2, 1});
    CHECK(ds.train.features[5] == doctest::Approx(50.0 / 255.0));
    CHECK(ds.test.features[0] == doctest::Approx(1.0));

    o.normalize = true;  // standardized with train statistics: train mean 0, sd 1
    const Dataset dn = load_dataset("idx:" + dir.string(), o);
    double sum = 0.0, sq = 0.0;
    for (float v : dn.train.features) sum += v, sq += static_cast<double>(v) * v;
    CHECK(sum / 12.0 == doctest::Approx(0.0).epsilon(1e-5));
    CHECK(sq / 12.0 == doctest::Approx(1.0).epsilon(1e-4));

    fs::remove(dir / "t10k-labels-idx1-ubyte.gz");
    try {
      load_dataset("idx:" + dir.string(), o);
      FAIL("expected DataError");
    } catch (const DataError& e) {
      CHECK(std::string(e.what()).find("t10k-labels-idx1-ubyte") != std::string::npos);
    }
    // A corrupt file (truncated values) is an error, not a crash.
    write_idx_gz(dir / "t10k-labels-idx1-ubyte.gz", {5}, {1, 0});
    CHECK_THROWS_AS(load_dataset("idx:" + dir.string(), o), DataError);
    fs::remove_all(dir);
  }

  TEST_CASE("fashion-mnist with a missing directory names the package") {
    DatasetOptions o;
    o.data_dir = "/nonexistent/rumor";
    CHECK_THROWS_AS(load_dataset("fashion-mnist", o), DataError);
    if (!fs::exists(std::string(kFashionMnistDir))) {
      try {
        load_dataset("fashion-mnist");
        FAIL("expected DataError");
      } catch (const DataError& e) {
        CHECK(std::string(e.what()).find("dataset-fashion-mnist") != std::string::npos);
      }
    }
  }

  TEST_CASE("fashion-mnist loads when installed") {
    if (!fs::exists(fs::path(kFashionMnistDir) / "train-labels-idx1-ubyte.gz")) {
      MESSAGE("dataset-fashion-mnist not installed; skipped");
      return;
    }
    const Dataset ds = load_dataset("fashion-mnist");
    CHECK(ds.train.size() == 60000);
    CHECK(ds.test.size() == 10000);
    CHECK(ds.dim == 784);
    CHECK(ds.num_classes == 10);
    const auto counts = class_counts(ds.train.labels, 10);
    for (auto c : counts) CHECK(c == 6000);  // the dataset is balanced
  }

  TEST_CASE("blobs: deterministic from the seed, labels in range, classes separated") {
    DatasetOptions o;
    o.train_size = 500;
    o.test_size = 100;
    o.dim = 5;
    o.classes = 3;
    o.separation = 8.0;
    const Dataset a = load_dataset("blobs", o);
    const Dataset b = load_dataset("blobs", o);
    o.seed = 2;
    const Dataset c = load_dataset("blobs", o);
    CHECK(a.train.features == b.train.features);
    CHECK(a.train.labels == b.train.labels);
    CHECK(a.train.features != c.train.features);
    CHECK(a.dim == 5);
    CHECK(a.train.features.size() == 500 * 5);
    CHECK(a.test.size() == 100);
    for (auto l : a.train.labels) CHECK((l >= 0 && l < 3));
    // Nearest class mean (estimated on train) classifies the test split well.
    std::vector<double> mean(3 * 5, 0.0);
    std::vector<int> n(3, 0);
    for (std::size_t i = 0; i < a.train.size(); ++i) {
      ++n[a.train.labels[i]];
      for (std::size_t j = 0; j < 5; ++j)
        mean[a.train.labels[i] * 5 + j] += a.train.features[i * 5 + j];
    }
    for (int k = 0; k < 3; ++k)
      for (int j = 0; j < 5; ++j) mean[k * 5 + j] /= n[k];
    int correct = 0;
    for (std::size_t i = 0; i < a.test.size(); ++i) {
      int best = 0;
      double best_d = 1e300;
      for (int k = 0; k < 3; ++k) {
        double d = 0.0;
        for (std::size_t j = 0; j < 5; ++j)
          d += std::pow(a.test.features[i * 5 + j] - mean[k * 5 + j], 2);
        if (d < best_d) best_d = d, best = k;
      }
      correct += best == a.test.labels[i];
    }
    CHECK(correct >= 80);
  }

  TEST_CASE("leaf-synthetic: per-user groups, held-out test, deterministic") {
    DatasetOptions o;
    o.users = 5;
    const Dataset a = load_dataset("leaf-synthetic", o);
    const Dataset b = load_dataset("leaf-synthetic", o);
    CHECK(a.dim == 60);
    CHECK(a.train.features == b.train.features);
    CHECK(a.train.groups.size() == a.train.size());
    CHECK(a.test.size() > 0);
    std::vector<bool> seen(5, false);
    for (auto g : a.train.groups) seen[static_cast<std::size_t>(g)] = true;
    CHECK(std::all_of(seen.begin(), seen.end(), [](bool s) { return s; }));
    CHECK(a.train.size() >= 5 * 40);  // >= 50 samples per user, 20% held out
  }

  TEST_CASE("csv: header, label mapping, held-out fraction, separate test file, errors") {
    const fs::path dir = temp_dir("csv");
    {
      std::ofstream f(dir / "train.csv");
      f << "a,b,label\n";
      for (int i = 0; i < 50; ++i) f << i << "," << (i % 7) << "," << (i % 2 ? 10 : 20) << "\n";
    }
    DatasetOptions o;
    o.test_fraction = 0.2;
    const Dataset ds = load_dataset("csv:" + (dir / "train.csv").string(), o);
    CHECK(ds.dim == 2);
    CHECK(ds.num_classes == 2);
    CHECK(ds.train.size() == 40);
    CHECK(ds.test.size() == 10);
    for (auto l : ds.train.labels) CHECK((l == 0 || l == 1));
    {
      std::ofstream f(dir / "test.csv");
      f << "1,2,10\n3,4,20\n";
    }
    o.test_file = (dir / "test.csv").string();
    const Dataset dt = load_dataset("csv:" + (dir / "train.csv").string(), o);
    CHECK(dt.train.size() == 50);
    CHECK(dt.test.labels == std::vector<std::int32_t>{0, 1});  // 10 -> 0, 20 -> 1
    {
      std::ofstream f(dir / "bad.csv");
      f << "1,2,3\n4,x,6\n";
    }
    try {
      load_dataset("csv:" + (dir / "bad.csv").string(), DatasetOptions{});
      FAIL("expected DataError");
    } catch (const DataError& e) {
      CHECK(std::string(e.what()).find("line 2") != std::string::npos);
    }
    CHECK_THROWS_AS(load_dataset("csv:" + (dir / "missing.csv").string(), DatasetOptions{}),
                    DataError);
    CHECK_THROWS_AS(load_dataset("no-such-dataset", DatasetOptions{}), ConfigError);
    fs::remove_all(dir);
  }

  TEST_CASE("a large data set's features lie in huge pages where the kernel offers them") {
    const std::string mode = thp_mode();
    if (mode != "madvise" && mode != "always") {
      MESSAGE("transparent huge pages are '" << mode << "' here: nothing to check");
      return;
    }
    // 64 MB of features: above malloc's largest mmap threshold, so a fresh mapping.
    DatasetOptions o;
    o.train_size = 80000;
    o.test_size = 10;
    o.dim = 200;
    const Dataset ds = load_dataset("blobs", o);
    REQUIRE(ds.train.features.size() == 80000u * 200u);
    // In "madvise" mode (Debian's default) only the advice given when sizing brings these.
    const auto& f = ds.train.features;
    CHECK(anon_huge_kb(f.data(), f.size() * sizeof(float)) >= 32 * 1024);
  }
}
