#include "rumor/topology/topology.hpp"
