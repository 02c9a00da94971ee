#pragma once
// A peer's round: the fixed step sequence every driver runs, the blocking driver for one
// peer per process over TCP (node.cpp) and the phased driver for every peer of a run in
// one process (inprocess.cpp). The drivers differ only in how they wait and in what
// each step does around the Peer it calls:
//   boundary    between rounds: faults (rejoins served, neighbours found gone, members
//               joining and leaving); returns the round to run, later than the one given
//               when a node readmitted after a pause resumes at its neighbours' round; a
//               driver with skip_to() may also continue at a later round from here
//   local       local work (Peer::local)
//   exchange    produce and send, wait, check (the gate) and absorb
//   evaluate    on evaluation rounds: the exact average for consensus distance
//   record      the metrics line (Peer::finish_round)
//   checkpoint  every checkpoint.every rounds
//   after       fault injection after the round; false ends the run here
#include <cstdint>

namespace rumor::run {

// Runs rounds [first, rounds); returns the first round not run.
template <typename Driver>
std::int64_t run_rounds(Driver& d, std::int64_t first, std::int64_t rounds) {
  for (std::int64_t r = first; r < rounds; ++r) {
    r = d.boundary(r);  // later than r when a node readmitted after a pause takes its round
    if (r >= rounds) return rounds;
    if constexpr (requires { d.skip_to(); }) {
      if (const auto to = d.skip_to(); to && *to > r) {
        r = *to - 1;  // a peer let back in at a later round continues there
        continue;
      }
    }
    d.local(r);
    d.exchange(r);
    if (d.eval_round(r)) d.evaluate(r);
    d.record(r);
    d.checkpoint(r);
    if (!d.after(r)) return r + 1;
  }
  return rounds;
}

}  // namespace rumor::run
