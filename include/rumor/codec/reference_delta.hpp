#pragma once
// What a codec chain does to a vector without structure. A codec's delta() is a worst-case
// bound (sign: 1/chunk, reached by a vector with one non-zero per chunk), far below what it
// removes from the vectors methods send; methods that size a step by the codec (CHOCO's
// automatic consensus step) need the typical figure instead.
#include <cstddef>

#include "rumor/codec/codec.hpp"

namespace rumor::codec {

// The share of ||x||^2 one encode removes, 1 - ||x - C(x)||^2 / ||x||^2, for x of dimension
// d with independent standard normal entries from a fixed seed (a fresh encoder, round 0,
// sender 0, so every node of a run gets the same figure). About 1 for fp32/fp16/bf16, 2/pi
// for sign, the energy of the k largest of d normal values for top-k, k/d for rand-k and for
// a sketch (whose table names no heavy hitters in such a vector, so it sends its fallback).
// Costs one encode of d values.
double reference_delta(const Codec& codec, std::size_t d);

}  // namespace rumor::codec
