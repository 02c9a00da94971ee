#pragma once
// Drivers of asynchronous methods (MethodInfo::asynchronous, e.g. adpsgd): no global rounds,
// each node runs `rounds` local steps of its own, each followed by one pairwise exchange
// (gossip/pairwise.hpp). run_inprocess and run_node hand such runs over to these.
#include "rumor/config/config.hpp"
#include "rumor/run/run.hpp"

namespace rumor::run {

// Every node in this process, in simulated time: an event loop over step ends and message
// arrivals (links.* as for synchronous runs, faults.slow_nodes slow a node's steps).
RunResult run_async_inprocess(const config::Config& config, const RunOptions& options);
// This process is node `id`, over TCP, in real time.
RunResult run_async_node(const config::Config& config, int id, const RunOptions& options);

// The newest checkpoint of node `id` that reads back whole (-1: none); a bad one is passed
// over, saying why. Asynchronous runs resume each node from its own.
std::int64_t last_good_checkpoint(const std::string& run_dir, int id);
// The same for a resumed asynchronous run; throws naming the node when it has none.
std::int64_t own_resume_round(const std::string& run_dir, int id);

}  // namespace rumor::run
