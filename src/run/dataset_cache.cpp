#include "rumor/run/dataset_cache.hpp"

#include <map>
#include <mutex>
#include <sstream>

namespace rumor::run {
namespace {

struct Store {
  std::mutex mutex;
  std::map<std::string, std::shared_ptr<const data::Dataset>> entries;
};

Store& store() {
  static Store s;
  return s;
}

}  // namespace

std::string dataset_key(const std::string& spec, const data::DatasetOptions& o,
                        std::size_t test_samples) {
  std::ostringstream k;
  k.precision(17);
  // Strings are length-prefixed so that no two option sets read alike.
  k << spec.size() << ':' << spec << '|' << o.seed << '|' << o.data_dir.size() << ':' << o.data_dir
    << '|' << o.normalize << '|' << o.train_size << '|' << o.test_size << '|' << o.dim << '|'
    << o.classes << '|' << o.separation << '|' << o.leaf_alpha << '|' << o.leaf_beta << '|'
    << o.users << '|' << o.test_file.size() << ':' << o.test_file << '|' << o.test_fraction << '|'
    << test_samples;
  return k.str();
}

std::shared_ptr<const data::Dataset> DatasetCache::find(const std::string& key) {
  auto& s = store();
  std::lock_guard lock(s.mutex);
  const auto it = s.entries.find(key);
  return it == s.entries.end() ? nullptr : it->second;
}

void DatasetCache::keep(const std::string& key, std::shared_ptr<const data::Dataset> dataset) {
  auto& s = store();
  std::lock_guard lock(s.mutex);
  s.entries[key] = std::move(dataset);
}

void DatasetCache::clear() {
  auto& s = store();
  std::lock_guard lock(s.mutex);
  s.entries.clear();
}

}  // namespace rumor::run
