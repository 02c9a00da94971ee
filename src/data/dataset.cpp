// Dataset registry: IDX image sets, synthetic generators and CSV tables.
#include "rumor/data/dataset.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "huge_pages.hpp"
#include "random.hpp"
#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"

namespace rumor::data {
namespace {

namespace fs = std::filesystem;

// Finds NAME or NAME.gz in dir.
std::string find_idx(const std::string& dir, const std::string& name, bool default_dir) {
  for (const std::string& candidate : {name + ".gz", name}) {
    const fs::path p = fs::path(dir) / candidate;
    if (fs::exists(p)) return p.string();
  }
  std::string msg = "dataset file " + (fs::path(dir) / (name + ".gz")).string() + " not found";
  if (default_dir) {
    msg +=
        "; install it with `apt-get install dataset-fashion-mnist`, or point --data-dir / "
        "data.data_dir at a directory holding the four MNIST-format IDX files";
  } else {
    msg +=
        "; the directory must hold train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (optionally .gz)";
  }
  throw DataError(msg);
}

Split read_idx_split(const std::string& images_path, const std::string& labels_path,
                     std::size_t& dim, std::vector<std::int64_t>& shape) {
  IdxArray images = read_idx(images_path);
  IdxArray labels = read_idx(labels_path);
  if (images.dims.size() < 2 || labels.dims.size() != 1 || images.dims[0] != labels.dims[0]) {
    throw DataError("IDX files " + images_path + " and " + labels_path +
                    " do not match (need images [n x ...] and labels [n])");
  }
  std::vector<std::int64_t> s(images.dims.begin() + 1, images.dims.end());
  if (s.size() == 2) s.insert(s.begin(), 1);  // [H, W] -> [C=1, H, W]
  std::size_t d = 1;
  for (auto v : s) d *= static_cast<std::size_t>(v);
  if (dim != 0 && d != dim)
    throw DataError("IDX images in " + images_path + " differ in size from the train set");
  dim = d;
  shape = s;
  Split split;
  detail::resize_in_huge_pages(split.features, images.values.size());
  for (std::size_t i = 0; i < images.values.size(); ++i) {
    split.features[i] = static_cast<float>(images.values[i]) / 255.0f;
  }
  split.labels.assign(labels.values.begin(), labels.values.end());
  return split;
}

// Standardizes all features with one mean/std taken from the train split (images).
void normalize_global(Dataset& ds) {
  double sum = 0.0, sq = 0.0;
  for (float v : ds.train.features) {
    sum += v;
    sq += static_cast<double>(v) * v;
  }
  const double n = static_cast<double>(ds.train.features.size());
  const double mean = sum / n;
  const double sd = std::sqrt(std::max(sq / n - mean * mean, 1e-12));
  for (Split* s : {&ds.train, &ds.test}) {
    for (float& v : s->features) v = static_cast<float>((v - mean) / sd);
  }
}

// Per-feature z-score with train statistics (tables).
void normalize_columns(Dataset& ds) {
  const std::size_t d = ds.dim;
  const std::size_t n = ds.train.size();
  if (n == 0) return;
  std::vector<double> mean(d, 0.0), sq(d, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < d; ++j) {
      const double v = ds.train.features[i * d + j];
      mean[j] += v;
      sq[j] += v * v;
    }
  }
  std::vector<double> sd(d);
  for (std::size_t j = 0; j < d; ++j) {
    mean[j] /= static_cast<double>(n);
    const double var = sq[j] / static_cast<double>(n) - mean[j] * mean[j];
    sd[j] = var > 1e-12 ? std::sqrt(var) : 1.0;  // constant columns stay put
  }
  for (Split* s : {&ds.train, &ds.test}) {
    for (std::size_t i = 0; i < s->size(); ++i) {
      for (std::size_t j = 0; j < d; ++j) {
        float& v = s->features[i * d + j];
        v = static_cast<float>((v - mean[j]) / sd[j]);
      }
    }
  }
}

int max_label_plus_one(const Dataset& ds) {
  int k = 0;
  for (const Split* s : {&ds.train, &ds.test}) {
    for (auto l : s->labels) {
      if (l < 0) throw DataError("dataset " + ds.name + " has a negative label");
      k = std::max(k, l + 1);
    }
  }
  return k;
}

Dataset load_idx_dir(const std::string& dir, const std::string& name, bool default_dir,
                     const DatasetOptions& opt) {
  Dataset ds;
  ds.name = name;
  ds.source = dir;
  ds.train =
      read_idx_split(find_idx(dir, "train-images-idx3-ubyte", default_dir),
                     find_idx(dir, "train-labels-idx1-ubyte", default_dir), ds.dim, ds.shape);
  ds.test = read_idx_split(find_idx(dir, "t10k-images-idx3-ubyte", default_dir),
                           find_idx(dir, "t10k-labels-idx1-ubyte", default_dir), ds.dim, ds.shape);
  ds.num_classes = max_label_plus_one(ds);
  if (opt.normalize) normalize_global(ds);
  return ds;
}

void check_synthetic(const DatasetOptions& o, const char* what) {
  if (o.dim == 0 || o.classes < 2 || o.train_size == 0) {
    throw ConfigError(std::string(what) + ": need dim >= 1, classes >= 2 and train_size >= 1");
  }
}

Dataset make_blobs(const DatasetOptions& options) {
  DatasetOptions o = options;
  if (o.dim == 0) o.dim = 20;
  check_synthetic(o, "blobs");
  Dataset ds;
  ds.name = "blobs";
  ds.source = "Gaussian mixture, dim " + std::to_string(o.dim) + ", " + std::to_string(o.classes) +
              " classes, separation " + std::to_string(o.separation);
  ds.dim = o.dim;
  ds.shape = {static_cast<std::int64_t>(o.dim)};
  ds.num_classes = o.classes;
  Rng rng = Rng::derive(o.seed, detail::kStreamBlobs);
  // Means with N(0, s^2) components, s = separation / sqrt(2 dim): class means lie about
  // `separation` apart, measured in units of the unit-variance noise.
  const double s = o.separation / std::sqrt(2.0 * static_cast<double>(o.dim));
  std::vector<double> means(static_cast<std::size_t>(o.classes) * o.dim);
  for (double& m : means) m = s * detail::normal(rng);
  auto fill = [&](Split& split, std::size_t n) {
    detail::resize_in_huge_pages(split.features, n * o.dim);
    split.labels.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      const auto c = static_cast<std::int32_t>(rng.below(static_cast<std::uint64_t>(o.classes)));
      split.labels[i] = c;
      for (std::size_t j = 0; j < o.dim; ++j) {
        split.features[i * o.dim + j] = static_cast<float>(
            means[static_cast<std::size_t>(c) * o.dim + j] + detail::normal(rng));
      }
    }
  };
  fill(ds.train, o.train_size);
  fill(ds.test, o.test_size);
  return ds;
}

// LEAF synthetic(alpha, beta) (Caldas et al. 2018, after Shamir et al. / Li et al.
// FedProx): user k has u_k ~ N(0, alpha), B_k ~ N(0, beta), W_k, b_k ~ N(u_k, 1),
// v_k ~ N(B_k, 1); x ~ N(v_k, diag(j^-1.2)), y = argmax(W_k x + b_k). Samples per user
// 50 + lognormal(4, 2), capped at 2000.
Dataset make_leaf(const DatasetOptions& o) {
  DatasetOptions oo = o;
  if (oo.dim == 0) oo.dim = 60;  // LEAF's default dimension
  check_synthetic(oo, "leaf-synthetic");
  if (oo.users < 1) throw ConfigError("leaf-synthetic: need users >= 1");
  if (!(o.test_fraction >= 0.0 && o.test_fraction < 1.0)) {
    throw ConfigError("leaf-synthetic: test_fraction must be in [0, 1)");
  }
  Dataset ds;
  ds.name = "leaf-synthetic";
  ds.dim = oo.dim;
  ds.shape = {static_cast<std::int64_t>(oo.dim)};
  ds.num_classes = oo.classes;
  ds.source = "LEAF synthetic(" + std::to_string(o.leaf_alpha) + ", " +
              std::to_string(o.leaf_beta) + "), " + std::to_string(oo.users) + " users";
  const std::size_t d = oo.dim;
  const auto k = static_cast<std::size_t>(oo.classes);
  std::vector<double> sigma(d);
  for (std::size_t j = 0; j < d; ++j)
    sigma[j] = std::pow(static_cast<double>(j + 1), -0.6);  // sqrt(j^-1.2)
  Rng rng = Rng::derive(o.seed, detail::kStreamLeaf);
  std::vector<double> w(k * d), b(k), v(d), x(d), logits(k);
  for (int user = 0; user < oo.users; ++user) {
    const double u = std::sqrt(o.leaf_alpha) * detail::normal(rng);
    const double bb = std::sqrt(o.leaf_beta) * detail::normal(rng);
    for (double& e : w) e = u + detail::normal(rng);
    for (double& e : b) e = u + detail::normal(rng);
    for (double& e : v) e = bb + detail::normal(rng);
    const double ln = std::exp(4.0 + 2.0 * detail::normal(rng));
    const std::size_t n = 50 + static_cast<std::size_t>(std::min(ln, 1950.0));
    const auto n_test =
        static_cast<std::size_t>(std::floor(static_cast<double>(n) * o.test_fraction));
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < d; ++j) x[j] = v[j] + sigma[j] * detail::normal(rng);
      std::size_t best = 0;
      for (std::size_t c = 0; c < k; ++c) {
        double z = b[c];
        for (std::size_t j = 0; j < d; ++j) z += w[c * d + j] * x[j];
        logits[c] = z;
        if (z > logits[best]) best = c;
      }
      Split& s = i < n_test ? ds.test : ds.train;
      for (std::size_t j = 0; j < d; ++j) s.features.push_back(static_cast<float>(x[j]));
      s.labels.push_back(static_cast<std::int32_t>(best));
      s.groups.push_back(user);
    }
  }
  return ds;
}

// Parses a numeric CSV; skips a first line that is not all numbers (a header).
void read_csv(const std::string& path, std::vector<std::vector<double>>& rows) {
  std::ifstream in(path);
  if (!in) throw DataError("cannot open CSV file " + path);
  std::string line;
  std::size_t line_no = 0;
  std::size_t cols = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    std::vector<double> row;
    std::stringstream ss(line);
    std::string cell;
    bool numeric = true;
    while (std::getline(ss, cell, ',')) {
      try {
        std::size_t used = 0;
        row.push_back(std::stod(cell, &used));
        if (cell.find_first_not_of(" \t", used) != std::string::npos) numeric = false;
      } catch (const std::exception&) {
        numeric = false;
      }
    }
    if (!numeric) {
      if (line_no == 1) continue;  // header
      throw DataError("CSV file " + path + " line " + std::to_string(line_no) +
                      ": non-numeric cell; features and label must be numbers");
    }
    if (row.size() < 2) {
      throw DataError("CSV file " + path + " line " + std::to_string(line_no) +
                      ": need at least one feature and a label");
    }
    if (cols == 0) cols = row.size();
    if (row.size() != cols) {
      throw DataError("CSV file " + path + " line " + std::to_string(line_no) + ": " +
                      std::to_string(row.size()) + " columns, expected " + std::to_string(cols));
    }
    rows.push_back(std::move(row));
  }
  if (rows.empty()) throw DataError("CSV file " + path + " has no data rows");
}

Dataset load_csv(const std::string& path, const DatasetOptions& o) {
  std::vector<std::vector<double>> train_rows, test_rows;
  read_csv(path, train_rows);
  if (!o.test_file.empty()) {
    read_csv(o.test_file, test_rows);
    if (test_rows[0].size() != train_rows[0].size()) {
      throw DataError("CSV test file " + o.test_file + " has a different column count than " +
                      path);
    }
  } else {
    if (!(o.test_fraction > 0.0 && o.test_fraction < 1.0)) {
      throw ConfigError("csv:" + path + ": without a test file, test_fraction must be in (0, 1)");
    }
    Rng rng = Rng::derive(o.seed, detail::kStreamCsvSplit);
    detail::shuffle(train_rows, rng);
    const auto n_test = std::max<std::size_t>(
        1, static_cast<std::size_t>(static_cast<double>(train_rows.size()) * o.test_fraction));
    if (n_test >= train_rows.size())
      throw DataError("CSV file " + path + " is too small to hold out a test set");
    test_rows.assign(
        std::make_move_iterator(train_rows.end() - static_cast<std::ptrdiff_t>(n_test)),
        std::make_move_iterator(train_rows.end()));
    train_rows.resize(train_rows.size() - n_test);
  }
  // Labels: distinct values of the train file, sorted, mapped to 0..k-1.
  std::map<double, std::int32_t> label_ids;
  for (const auto& r : train_rows) label_ids.emplace(r.back(), 0);
  std::int32_t next = 0;
  for (auto& [value, id] : label_ids) id = next++;
  Dataset ds;
  ds.name = "csv:" + path;
  ds.source = path;
  ds.dim = train_rows[0].size() - 1;
  ds.shape = {static_cast<std::int64_t>(ds.dim)};
  ds.num_classes = next;
  auto fill = [&](Split& s, const std::vector<std::vector<double>>& rows, const std::string& file) {
    for (const auto& r : rows) {
      auto it = label_ids.find(r.back());
      if (it == label_ids.end()) {
        throw DataError("CSV file " + file + ": label " + std::to_string(r.back()) +
                        " does not occur in the training data");
      }
      for (std::size_t j = 0; j + 1 < r.size(); ++j) s.features.push_back(static_cast<float>(r[j]));
      s.labels.push_back(it->second);
    }
  };
  fill(ds.train, train_rows, path);
  fill(ds.test, test_rows, o.test_file.empty() ? path : o.test_file);
  if (ds.num_classes < 2)
    throw DataError("CSV file " + path + " has fewer than two distinct labels");
  if (o.normalize) normalize_columns(ds);
  return ds;
}

}  // namespace

Dataset load_dataset(std::string_view spec, const DatasetOptions& options) {
  const std::string s(spec);
  Dataset ds;
  if (s == "fashion-mnist") {
    const bool is_default = options.data_dir.empty();
    const std::string dir = is_default ? std::string(kFashionMnistDir) : options.data_dir;
    ds = load_idx_dir(dir, s, is_default, options);
  } else if (s.rfind("idx:", 0) == 0 && s.size() > 4) {
    ds = load_idx_dir(s.substr(4), s, false, options);
  } else if (s == "blobs") {
    ds = make_blobs(options);
  } else if (s == "leaf-synthetic") {
    ds = make_leaf(options);
  } else if (s.rfind("csv:", 0) == 0 && s.size() > 4) {
    ds = load_csv(s.substr(4), options);
  } else {
    std::string names;
    for (const auto& n : dataset_names()) names += (names.empty() ? "" : ", ") + n;
    throw ConfigError("unknown dataset '" + s + "'; valid: " + names);
  }
  log::debug("dataset ", ds.name, ": ", ds.train.size(), " train, ", ds.test.size(), " test, dim ",
             ds.dim, ", ", ds.num_classes, " classes (", ds.source, ")");
  return ds;
}

std::string default_dataset() {
  const fs::path dir(kFashionMnistDir);
  for (const char* f : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}) {
    if (!fs::exists(dir / (std::string(f) + ".gz")) && !fs::exists(dir / f)) return "blobs";
  }
  return "fashion-mnist";
}

std::vector<std::string> dataset_names() {
  return {"fashion-mnist", "idx:DIR", "blobs", "leaf-synthetic", "csv:FILE"};
}

std::vector<std::size_t> class_counts(std::span<const std::int32_t> labels, int num_classes) {
  std::vector<std::size_t> counts(static_cast<std::size_t>(std::max(num_classes, 0)), 0);
  for (auto l : labels) {
    if (l >= 0 && l < num_classes) ++counts[static_cast<std::size_t>(l)];
  }
  return counts;
}

}  // namespace rumor::data
