#!/usr/bin/env python3
"""Writes the churn experiment's topologies and configs (deterministic for --seed).

  rrg32.json          a random 4-regular graph on 32 nodes (pairing model, re-drawn until it
                      is simple and connected)
  rrg32-standby.json  the same graph with the 6 nodes that join later marked standby
  churn.json          the run with churn: one event every 50 rounds, join and leave in turn
  static.json         the same graph, every node from round 0, no churn

Events: standby nodes join at rounds 50, 150, ..., 550; nodes that were there from the
start leave gracefully at rounds 100, 200, ..., 600. Standby nodes, joiners and leavers are
drawn at random until the live graph is connected at the start and after every event, a
joiner has at least 2 live neighbours when it joins and a leaver at least 2 when it leaves.
The script checks this and prints the live graph's size and edges after each event.

usage: make_setting.py [--seed 1] [--check]   (--check: verify the files, write nothing)
"""
import argparse
import json
import os
import random

N, DEGREE, STANDBY, EVERY, EVENTS, ROUNDS = 32, 4, 6, 50, 12, 700
HERE = os.path.dirname(os.path.abspath(__file__))


def regular_graph(rng):
    for _ in range(10000):
        stubs = [i for i in range(N) for _ in range(DEGREE)]
        rng.shuffle(stubs)
        edges = {tuple(sorted(stubs[k:k + 2])) for k in range(0, len(stubs), 2)}
        simple = len(edges) == N * DEGREE // 2 and all(a != b for a, b in edges)
        if simple and connected(set(range(N)), edges):
            return sorted(edges)
    raise SystemExit("no simple connected 4-regular graph in 10000 draws")


def connected(live, edges):
    if not live:
        return False
    adj = {i: [] for i in live}
    for a, b in edges:
        if a in live and b in live:
            adj[a].append(b)
            adj[b].append(a)
    seen, todo = set(), [min(live)]
    while todo:
        v = todo.pop()
        if v not in seen:
            seen.add(v)
            todo.extend(adj[v])
    return seen == live


def live_degree(v, live, edges):
    return sum(1 for a, b in edges if (a == v and b in live) or (b == v and a in live))


def draw_events(rng, edges):
    """Standby set and (kind, node, round) events keeping the live graph connected."""
    for _ in range(10000):
        standby = rng.sample(range(N), STANDBY)
        live = set(range(N)) - set(standby)
        if not connected(live, edges):
            continue
        waiting, events, ok = list(standby), [], True
        for e in range(EVENTS):
            r = EVERY * (e + 1)
            if e % 2 == 0:
                pick = [v for v in waiting if live_degree(v, live, edges) >= 2]
                kind = "join"
            else:
                pick = [v for v in sorted(live) if v not in standby
                        and live_degree(v, live, edges) >= 2
                        and connected(live - {v}, edges)]
                kind = "leave"
            if not pick:
                ok = False
                break
            v = rng.choice(pick)
            if kind == "join":
                waiting.remove(v)
                live.add(v)
            else:
                live.remove(v)
            events.append((kind, v, r))
        if ok:
            return sorted(standby), events
    raise SystemExit("no event sequence keeping the live graph connected in 10000 draws")


def check(edges, standby, events):
    """Prints the live graph after each event; raises if it is ever disconnected."""
    live = set(range(N)) - set(standby)
    assert connected(live, edges), "live graph at the start is not connected"
    print(f"start: {len(live)} live nodes, connected")
    for kind, v, r in events:
        deg = live_degree(v, live, edges)
        (live.add if kind == "join" else live.remove)(v)
        ok = connected(live, edges)
        m = sum(1 for a, b in edges if a in live and b in live)
        leaves = [u for u in sorted(live) if live_degree(u, live, edges) == 1]
        print(f"round {r}: node {v} {kind}s ({deg} live neighbours); {len(live)} live nodes, "
              f"{m} live edges, {'connected' if ok else 'DISCONNECTED'}; one live neighbour: "
              f"{leaves}")
        assert ok and deg >= 1
    return live


def topology(name, edges, standby):
    nodes = [{"id": i, "standby": True} if i in standby else {"id": i} for i in range(N)]
    return {"name": name, "directed": False, "schedule": "static", "mixing": "metropolis",
            "nodes": nodes, "edges": [list(e) for e in edges]}


def config(name, topo, faults):
    cfg = {
        "name": name, "seed": 1, "topology": topo, "task": "train",
        "method": {"name": "sgp"}, "codec": "fp32",
        "data": {"dataset": "fashion-mnist",
                 "partition": {"kind": "dirichlet", "alpha": 0.5, "min_size": 10}},
        "model": {"name": "mlp", "hidden": [128]},
        "optimizer": {"name": "sgd", "lr": 0.1},
        "batch_size": 32, "local_steps": 1, "rounds": ROUNDS, "eval": {"every": 25},
        "on_peer_failure": "continue", "output": {"dir": "runs"}}
    if faults:
        cfg["faults"] = faults
    return cfg


def dump(name, obj):
    with open(os.path.join(HERE, name), "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    if a.check:
        t = json.load(open(os.path.join(HERE, "rrg32-standby.json")))
        c = json.load(open(os.path.join(HERE, "churn.json")))["faults"]
        edges = [tuple(e) for e in t["edges"]]
        standby = [n["id"] for n in t["nodes"] if n.get("standby")]
        events = sorted([("join", e["node"], e["round"]) for e in c["join"]] +
                        [("leave", e["node"], e["round"]) for e in c["leave"]],
                        key=lambda e: e[2])
        check(edges, standby, events)
        return
    rng = random.Random(a.seed)
    edges = regular_graph(rng)
    standby, events = draw_events(rng, edges)
    end = check(edges, standby, events)
    print(f"end: {len(end)} live nodes")
    dump("rrg32.json", topology("rrg32", edges, []))
    dump("rrg32-standby.json", topology("rrg32-standby", edges, standby))
    faults = {"join": [{"node": v, "round": r} for k, v, r in events if k == "join"],
              "leave": [{"node": v, "round": r} for k, v, r in events if k == "leave"]}
    dump("churn.json", config("churn", "rrg32-standby.json", faults))
    dump("static.json", config("churn-static", "rrg32.json", None))


main()
