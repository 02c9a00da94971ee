#pragma once
// Datasets as plain arrays: features are contiguous row-major float [n x dim], labels are
// ints in [0, num_classes). No LibTorch here, so partitions and their tests stay light.
// Thread safety: a loaded Dataset is immutable; any number of threads may read it.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace rumor::data {

// One split (train or test) of a dataset.
struct Split {
  std::vector<float> features;       // n * dim values, sample i at [i * dim, (i + 1) * dim)
  std::vector<std::int32_t> labels;  // n labels
  // Natural grouping of samples (e.g. LEAF users), one group id per sample; empty if none.
  std::vector<std::int32_t> groups;

  std::size_t size() const { return labels.size(); }
  std::span<const float> row(std::size_t i, std::size_t dim) const {
    return {features.data() + i * dim, dim};
  }
};

struct Dataset {
  std::string name;     // canonical spec, e.g. "fashion-mnist" or "csv:/x.csv"
  std::size_t dim = 0;  // features per sample (product of shape)
  int num_classes = 0;
  std::vector<std::int64_t> shape;  // per-sample shape: {1, 28, 28} for images, {dim} for tables
  Split train;                      // the part that is partitioned over nodes
  Split test;                       // held out, never partitioned; every node evaluates on it all
  std::string source;               // where it came from (path or generator), for logs
};

// Options for every dataset kind; each kind reads the fields that apply to it.
struct DatasetOptions {
  std::uint64_t seed = 1;  // synthetic generators and held-out splits
  std::string data_dir;    // fashion-mnist: overrides /usr/share/datasets/fashion-mnist
  bool normalize = true;   // images: (x/255 - mean) / std; tables: per-feature z-score
  // blobs: Gaussian mixture, one Gaussian per class with means `separation` apart (scale).
  std::size_t train_size = 10000;
  std::size_t test_size = 2000;
  std::size_t dim = 0;  // 0: the kind's default (blobs 20, leaf-synthetic 60)
  int classes = 10;
  double separation = 3.0;
  // leaf-synthetic (LEAF synthetic(alpha, beta)): `users` users whose models and inputs
  // differ by alpha and beta; train/test per user split by test_fraction. dim 60 default.
  double leaf_alpha = 1.0;
  double leaf_beta = 1.0;
  int users = 30;
  // csv: label in the last column; a separate test file, or hold out test_fraction.
  std::string test_file;
  double test_fraction = 0.2;
};

// Loads a dataset by spec: "fashion-mnist", "idx:DIR", "blobs", "leaf-synthetic",
// "csv:FILE". Throws rumor::DataError naming the path (and the package to install)
// on missing or malformed files, rumor::ConfigError on an unknown spec.
Dataset load_dataset(std::string_view spec, const DatasetOptions& options = {});

// Names accepted by load_dataset (prefix forms written as "idx:DIR", "csv:FILE").
std::vector<std::string> dataset_names();

// Default location of the Debian dataset-fashion-mnist package.
inline constexpr std::string_view kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// The dataset used when a config names none: "fashion-mnist" if its files are installed
// in kFashionMnistDir, else the embedded synthetic "blobs" (so rumor runs anywhere).
std::string default_dataset();

// Reads one IDX file (gzip-compressed or plain) as uint8 values plus its dimensions.
struct IdxArray {
  std::vector<std::int64_t> dims;
  std::vector<std::uint8_t> values;
};
IdxArray read_idx(const std::string& path);

// Per-class counts of a label array.
std::vector<std::size_t> class_counts(std::span<const std::int32_t> labels, int num_classes);

}  // namespace rumor::data
