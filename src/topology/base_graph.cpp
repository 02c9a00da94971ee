// The Base-(k+1) graph (Takezawa, Sato, Bao, Niwa and Yamada 2023, "Beyond Exponential Graph:
// Communication-Efficient Topologies for Decentralized Learning via Finite-time Convergence"):
// a periodic schedule of undirected rounds, every node of degree at most k, whose mixing
// matrices multiply over one period to exact averaging, for any number of nodes.
#include <algorithm>
#include <map>
#include <optional>

#include "rumor/common/error.hpp"
#include "rumor/topology/generators.hpp"

namespace rumor {
namespace {

using Round = std::map<std::pair<int, int>, double>;  // (i < j) -> W(i, j) = W(j, i)
using Rounds = std::vector<Round>;

void link(Round& r, int a, int b, double w) {
  r[{std::min(a, b), std::max(a, b)}] = w;
}

// m written as a product of factors in 2..k+1 (the largest taken first): the mixed radix of
// the k-peer hyper-hypercube; none when m has a prime factor above k+1.
std::optional<std::vector<int>> radix(int m, int k) {
  std::vector<int> f;
  for (int d = k + 1; d >= 2 && m > 1; --d) {
    while (m % d == 0) {
      f.push_back(d);
      m /= d;
    }
  }
  if (m != 1) return std::nullopt;
  std::reverse(f.begin(), f.end());
  return f;
}

// Round t of the k-peer hyper-hypercube on `nodes` (their count is the product of `f`): the
// nodes whose mixed-radix digits differ in digit t only form a clique of f[t] nodes, each
// weight 1/f[t], so after every digit's round all of them hold the same average.
void hypercube_round(const std::vector<int>& nodes, const std::vector<int>& f, std::size_t t,
                     Round& out) {
  int stride = 1;
  for (std::size_t u = 0; u < t; ++u) stride *= f[u];
  for (int a = 0; a < static_cast<int>(nodes.size()); ++a) {
    const int digit = (a / stride) % f[t];
    for (int e = digit + 1; e < f[t]; ++e)
      link(out, nodes[a], nodes[a + (e - digit) * stride], 1.0 / f[t]);
  }
}

// Round m of `nodes`' own hyper-hypercube, repeated (a no-op once they agree); nothing for
// a single node.
void cycled_hypercube(const std::vector<int>& nodes, int k, int m, Round& out) {
  const auto f = radix(static_cast<int>(nodes.size()), k);
  if (f && !f->empty()) hypercube_round(nodes, *f, static_cast<std::size_t>(m) % f->size(), out);
}

// n = sum_l a_l (k+1)^p_l (base k+1 digits a_l, p_l decreasing): group l is a_l (k+1)^p_l
// consecutive nodes, split into a_l subgroups of (k+1)^p_l.
struct Group {
  std::vector<int> nodes;
  std::vector<std::vector<int>> subgroups;
};

std::vector<Group> base_digits(const std::vector<int>& v, int k) {
  long power = 1;
  while (power * (k + 1) <= static_cast<long>(v.size())) power *= k + 1;
  std::vector<Group> groups;
  std::size_t at = 0;
  for (; power >= 1; power /= k + 1) {
    const long a = static_cast<long>(v.size() - at) / power;
    if (a == 0) continue;
    Group g;
    for (long s = 0; s < a; ++s) {
      g.subgroups.emplace_back(v.begin() + static_cast<long>(at), v.begin() + at + power);
      g.nodes.insert(g.nodes.end(), g.subgroups.back().begin(), g.subgroups.back().end());
      at += static_cast<std::size_t>(power);
    }
    groups.push_back(std::move(g));
  }
  return groups;
}

// Round m >= M of the simple Base-(k+1) graph, for one group l. With s = m - M: every group
// after s links each of its nodes to one node of each subgroup of group s, which moves it to
// the average of groups s.. at once; group s pairs up its other nodes (they agree already:
// the paper's inner edges); the groups before s (and the last one) re-average their
// subgroups, which the links to later groups had disturbed equally.
void merge_round(const std::vector<Group>& groups, int k, int l, int s,
                 std::vector<std::vector<int>>& left, std::vector<int>& b, Round& r) {
  const int count = static_cast<int>(groups.size());
  const Group& g = groups[static_cast<std::size_t>(l)];
  if (l > s) {
    double total = 0;
    for (int t = s; t < count; ++t) total += static_cast<double>(groups[t].nodes.size());
    const double alpha = static_cast<double>(groups[s].nodes.size()) / total;
    for (int i : g.nodes) {
      for (auto& sub : left) {
        link(r, i, sub.back(), alpha / static_cast<double>(left.size()));
        sub.pop_back();
      }
    }
  } else if (l == s && l != count - 1) {
    std::vector<int> rest;
    for (const auto& sub : left) rest.insert(rest.end(), sub.begin(), sub.end());
    for (std::size_t at = 0; at + 1 < rest.size(); at += static_cast<std::size_t>(k) + 1) {
      const std::vector<int> clique(
          rest.begin() + static_cast<long>(at),
          rest.begin() + static_cast<long>(std::min(rest.size(), at + k + 1)));
      for (std::size_t x = 0; x < clique.size(); ++x)
        for (std::size_t y = x + 1; y < clique.size(); ++y)
          link(r, clique[x], clique[y], 1.0 / static_cast<double>(clique.size()));
    }
  } else {
    if (static_cast<int>(g.nodes.size()) < k + 1) {
      cycled_hypercube(g.nodes, k, b[l], r);
    } else {
      for (const auto& sub : g.subgroups) cycled_hypercube(sub, k, b[l], r);
    }
    ++b[l];
  }
}

// The simple Base-(k+1) graph on the nodes `v`.
Rounds simple_base(const std::vector<int>& v, int k) {
  if (v.size() <= 1) return {};
  Rounds out;
  if (const auto f = radix(static_cast<int>(v.size()), k)) {
    for (std::size_t t = 0; t < f->size(); ++t) hypercube_round(v, *f, t, out.emplace_back());
    return out;
  }
  const std::vector<Group> groups = base_digits(v, k);
  const int count = static_cast<int>(groups.size());
  // Each group averages on its own: as many rounds as the largest needs.
  const int first = static_cast<int>(radix(static_cast<int>(groups[0].nodes.size()), k)->size());
  for (int m = 0; m < first; ++m) {
    Round& r = out.emplace_back();
    for (const auto& g : groups) cycled_hypercube(g.nodes, k, m, r);
  }
  const int settle =
      static_cast<int>(radix(static_cast<int>(groups[0].subgroups[0].size()), k)->size());
  std::vector<int> b(groups.size(), 0);
  for (int s = 0; b[0] < settle && s < count + settle + 1; ++s) {
    Round& r = out.emplace_back();
    std::vector<std::vector<int>> left;
    if (s < count) left = groups[static_cast<std::size_t>(s)].subgroups;
    for (int l = count - 1; l >= 0; --l) merge_round(groups, k, l, s, left, b, r);
  }
  return out;
}

// Rounds of `part` laid side by side (all of the same length) into `out`.
void overlay(const Rounds& part, Rounds& out, std::size_t from) {
  if (out.size() < from + part.size()) out.resize(from + part.size());
  for (std::size_t r = 0; r < part.size(); ++r)
    out[from + r].insert(part[r].begin(), part[r].end());
}

// The Base-(k+1) graph: the simple one on all n nodes, or, when shorter, n = smooth x rest
// (smooth: the largest factor of n with no prime above k+1): the simple graph inside each of
// `smooth` blocks of `rest` nodes, then a hyper-hypercube across the blocks.
Rounds base_rounds(int n, int k) {
  std::vector<int> all(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) all[static_cast<std::size_t>(i)] = i;
  Rounds simple = simple_base(all, k);
  int smooth = 1, m = n;
  for (int d = 2; d <= k + 1; ++d) {
    while (m % d == 0) {
      m /= d;
      smooth *= d;
    }
  }
  const int rest = n / smooth;
  if (smooth == 1 || rest == 1) return simple;
  Rounds split;
  for (int g = 0; g < smooth; ++g)
    overlay(simple_base(std::vector<int>(all.begin() + g * rest, all.begin() + (g + 1) * rest), k),
            split, 0);
  const std::size_t inner = split.size();
  const auto f = *radix(smooth, k);
  for (int c = 0; c < rest; ++c) {
    std::vector<int> column;
    for (int g = 0; g < smooth; ++g) column.push_back(c + g * rest);
    for (std::size_t t = 0; t < f.size(); ++t) {
      if (split.size() <= inner + t) split.resize(inner + t + 1);
      hypercube_round(column, f, t, split[inner + t]);
    }
  }
  return simple.size() < split.size() ? simple : split;
}

}  // namespace

std::vector<std::vector<Edge>> base_graph_rounds(int nodes, int k) {
  if (nodes < 1) throw TopologyError("topology gen base: --nodes must be at least 1");
  if (k < 1) throw TopologyError("topology gen base: --k (the maximum degree) must be at least 1");
  std::vector<std::vector<Edge>> out;
  for (const auto& round : base_rounds(nodes, k)) {
    auto& edges = out.emplace_back();
    for (const auto& [pair, w] : round) edges.push_back({pair.first, pair.second, w});
  }
  if (out.empty()) out.emplace_back();  // one node: one round of nothing
  return out;
}

}  // namespace rumor
