#!/usr/bin/python3
"""Gossip baselines for rumor's transport benchmarks: torch.distributed with gloo on 127.0.0.1.

NODES worker processes run rounds of one communication pattern on a float32 vector of
FLOATS values, the patterns `rumor bench net` implements:
  ring       send x to both ring neighbours, take theirs, x <- (x + left + right) / 3
             (D-PSGD's Metropolis averaging on a ring)
  pushsum    one-peer exponential graph: in round t, keep half of (x, w) and send the other
             half to rank + 2^(t mod log2 NODES); add what arrives (SGP's push-sum)
  allreduce  exact average with dist.all_reduce (the all-reduce baseline)

Timing ("synced"): before each measured round every rank waits at a barrier (not timed),
then times its own round; a round's figure is its slowest rank's. Reported per (nodes, floats, pattern): the
median, min and max over the measured rounds, and a back-to-back figure (the same number of
rounds with no barrier, total / rounds, slowest rank). Each line also carries a correctness
check of what the pattern computed (ring: sum over ranks conserved; pushsum: weights sum to
NODES and, for a power of two, log2 NODES rounds give the exact average; allreduce: exact).

Usage: /usr/bin/python3 bench/gloo_gossip.py [--nodes 8] [--floats 1e5 1e6] [--patterns ring pushsum]
           [--rounds 20] [--budget SECONDS] [--out FILE.jsonl]
One JSON line per case on stdout (appended to --out as well). Needs PyTorch: Debian's
python3-torch (tools/install-deps.sh installs it) runs under /usr/bin/python3. Loopback only.
"""
import argparse
import json
import math
import os
import queue
import socket
import statistics
import sys
import time
from datetime import timedelta


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, nargs="+", default=[8], help="world sizes to run")
    ap.add_argument("--floats", type=lambda s: int(float(s)), nargs="+", default=[10**5, 10**6],
                    help="vector sizes in float32 values (1e6 is accepted)")
    ap.add_argument("--patterns", nargs="+", default=["ring", "pushsum", "allreduce"],
                    choices=["ring", "pushsum", "allreduce"])
    ap.add_argument("--rounds", type=int, default=20, help="measured rounds per case")
    ap.add_argument("--warmup", type=int, default=2, help="untimed rounds before measuring")
    ap.add_argument("--budget", type=float, default=0.0,
                    help="if > 0, fewer rounds (at least 5) when the warm-up says a case would "
                         "take longer than about this many seconds")
    ap.add_argument("--out", default="", help="also append the JSON lines to this file")
    ap.add_argument("--timeout", type=float, default=600.0,
                    help="give up (and stop the workers) after this many seconds per world size")
    args = ap.parse_args()
    if min(args.nodes) < 2 or min(args.floats) < 1 or args.rounds < 1:
        ap.error("--nodes must be >= 2, --floats >= 1, --rounds >= 1")
    return args


class Pattern:
    """State and one round of a communication pattern on one rank."""

    def __init__(self, name, rank, nodes, floats, torch, dist):
        self.name, self.rank, self.nodes, self.floats = name, rank, nodes, floats
        self.torch, self.dist = torch, dist
        self.t = 0
        # pushsum carries its weight as one extra value at the end of the same tensor.
        extra = 1 if name == "pushsum" else 0
        self.x = torch.empty(floats + extra)
        self.inbox = [torch.empty(floats + extra) for _ in range(2 if name == "ring" else 1)]
        self.reset()

    def reset(self):
        self.t = 0
        self.x[: self.floats].fill_(float(self.rank))
        if self.name == "pushsum":
            self.x[-1] = 1.0

    def round(self):
        if self.name == "ring":
            left, right = (self.rank - 1) % self.nodes, (self.rank + 1) % self.nodes
            ops = [self.dist.isend(self.x, left), self.dist.isend(self.x, right),
                   self.dist.irecv(self.inbox[0], left), self.dist.irecv(self.inbox[1], right)]
            for op in ops:
                op.wait()
            self.x.add_(self.inbox[0]).add_(self.inbox[1]).mul_(1.0 / 3.0)
        elif self.name == "pushsum":
            hops = max(1, int(math.log2(self.nodes)))
            step = 1 << (self.t % hops)
            self.x.mul_(0.5)
            ops = [self.dist.isend(self.x, (self.rank + step) % self.nodes),
                   self.dist.irecv(self.inbox[0], (self.rank - step) % self.nodes)]
            for op in ops:
                op.wait()
            self.x.add_(self.inbox[0])
        else:
            self.dist.all_reduce(self.x)
            self.x.mul_(1.0 / self.nodes)
        self.t += 1

    def check(self):
        """What the pattern computed, reduced over ranks; returns a dict for the JSON line."""
        torch, dist, n = self.torch, self.dist, self.nodes
        mean = (n - 1) / 2.0
        if self.name == "ring":
            total = torch.tensor([self.x.double().sum().item()], dtype=torch.float64)
            dist.all_reduce(total)
            expected = mean * n * self.floats
            return {"ring_sum_rel_drift": abs(total.item() - expected) / expected}
        if self.name == "pushsum":
            weight = torch.tensor([self.x[-1].item()], dtype=torch.float64)
            dist.all_reduce(weight)
            out = {"pushsum_weight_sum": weight.item()}
            if n & (n - 1) == 0:
                self.reset()
                for _ in range(max(1, int(math.log2(n)))):
                    self.round()
                err = torch.tensor([(self.x[: self.floats] / self.x[-1] - mean).abs().max().item()])
                dist.all_reduce(err, op=dist.ReduceOp.MAX)
                out["pushsum_avg_error"] = err.item()
            return out
        self.reset()
        self.round()
        err = torch.tensor([(self.x - mean).abs().max().item()])
        dist.all_reduce(err, op=dist.ReduceOp.MAX)
        return {"allreduce_avg_error": err.item()}


def slowest(values, torch, dist):
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.tolist()


def measure(p, args, torch, dist):
    dist.barrier()
    start = time.perf_counter()
    for _ in range(args.warmup):
        p.round()
    per_round = slowest([(time.perf_counter() - start) / max(args.warmup, 1)], torch, dist)[0]
    rounds = args.rounds
    if args.budget > 0 and per_round * rounds > args.budget:
        rounds = max(5, int(args.budget / max(per_round, 1e-9)))
    times = []
    for _ in range(rounds):
        dist.barrier()
        t0 = time.perf_counter()
        p.round()
        times.append(time.perf_counter() - t0)
    times = slowest(times, torch, dist)
    dist.barrier()
    t0 = time.perf_counter()
    for _ in range(rounds):
        p.round()
    back_to_back = slowest([(time.perf_counter() - t0) / rounds], torch, dist)[0]
    return rounds, times, back_to_back


def sent_bytes_per_rank(pattern, floats, nodes):
    if pattern == "ring":
        return 2 * 4 * floats
    if pattern == "pushsum":
        return 4 * (floats + 1)
    return 2 * (nodes - 1) / nodes * 4 * floats  # ring all-reduce: reduce-scatter + all-gather


def worker(rank, nodes, port, args, results):
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=nodes, timeout=timedelta(seconds=args.timeout))
    for floats in args.floats:
        for name in args.patterns:
            p = Pattern(name, rank, nodes, floats, torch, dist)
            rounds, times, b2b = measure(p, args, torch, dist)
            checks = p.check()
            if rank == 0:
                med = statistics.median(times)
                ms = lambda s: round(s * 1e3, 4)
                results.put(dict(bench="gloo", pattern=name, nodes=nodes, floats=floats,
                                 rounds=rounds, median_ms=ms(med), min_ms=ms(min(times)),
                                 max_ms=ms(max(times)), back_to_back_ms=ms(b2b),
                                 sent_gbps_per_rank=round(
                                     sent_bytes_per_rank(name, floats, nodes) / med / 1e9, 4),
                                 **checks))
    dist.barrier()
    dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_world(nodes, args, mp, out):
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=worker, args=(r, nodes, port, args, results)) for r in range(nodes)]
    for p in procs:
        p.start()
    deadline = time.monotonic() + args.timeout
    try:
        for _ in range(len(args.floats) * len(args.patterns)):
            left = deadline - time.monotonic()
            rec = results.get(timeout=max(left, 0.1))
            rec["cores"] = os.cpu_count()
            line = json.dumps(rec)
            print(line, flush=True)
            if out:
                out.write(line + "\n")
                out.flush()
        for p in procs:
            p.join(timeout=max(deadline - time.monotonic(), 1.0))
    except queue.Empty:
        print(f"gloo_gossip: no result within {args.timeout:.0f} s for {nodes} nodes; stopping "
              "the workers (a worker may have died: see its traceback above)", file=sys.stderr)
        return False
    finally:
        for p in procs:  # only the workers started here
            if p.is_alive():
                p.terminate()
                p.join()
    return all(p.exitcode == 0 for p in procs)


def main():
    args = parse_args()
    try:
        import torch.multiprocessing as mp
    except ImportError:
        print(f"gloo_gossip: {sys.executable} cannot import torch; run it with a Python that has "
              "PyTorch (Debian: /usr/bin/python3 with python3-torch, which tools/install-deps.sh "
              "installs)", file=sys.stderr)
        return 1
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    out = open(args.out, "a") if args.out else None
    ok = True
    for nodes in args.nodes:
        ok = run_world(nodes, args, mp, out) and ok
    if out:
        out.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
