#pragma once
// The links.* keys of a config as a simulated-time link model (in-process runs).
#include "rumor/config/config.hpp"
#include "rumor/net/inproc.hpp"
#include "rumor/topology/topology.hpp"

namespace rumor::run {

// Throws ConfigError naming the key (links.overrides[i]) that is wrong.
net::LinkModel link_model(const config::Config& cfg, const Topology& topology);

}  // namespace rumor::run
