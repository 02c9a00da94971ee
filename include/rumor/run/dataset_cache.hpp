#pragma once
// Data sets loaded once per process and shared. `rumor launch` loads the run's data set
// before it forks the peers, so every peer reads the launcher's copy (copy-on-write) instead
// of decompressing and parsing the files again.
#include <memory>
#include <string>

#include "rumor/data/dataset.hpp"

namespace rumor::run {

// What makes two loads give the same bytes: the resolved spec, every option of
// data::DatasetOptions and `test_samples` (eval.test_samples, applied after loading).
std::string dataset_key(const std::string& spec, const data::DatasetOptions& options,
                        std::size_t test_samples);

// The process-wide cache. Thread-safe. Entries live until clear(); nothing is added unless
// asked (keep), so a long process that loads many data sets does not hold them all.
class DatasetCache {
 public:
  static std::shared_ptr<const data::Dataset> find(const std::string& key);
  static void keep(const std::string& key, std::shared_ptr<const data::Dataset> dataset);
  static void clear();
};

}  // namespace rumor::run
