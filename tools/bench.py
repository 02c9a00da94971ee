#!/usr/bin/python3
"""Runs every comparison of BENCHMARKS.md side by side and rewrites its tables.

  tools/bench.py            full run (medians of 5 repeats; about 7 minutes on a quiet 2-core
                            machine, 34 at load average 15-40; most of it the quickstart runs)
  tools/bench.py --quick    fewer repeats, smaller sizes (a few minutes); prints the tables
                            and leaves BENCHMARKS.md alone unless --write is given

Each figure is a median over repeats with its spread (min..max) and the ratio to its
baseline measured in the same run; rumor and its baseline take turns repeat by repeat.
What runs (rumor = build/release/rumor; baselines in bench/, installed by
tools/install-bench-deps.sh):
  transport  iperf3 one stream on 127.0.0.1 (bench/iperf_loopback.sh) vs `rumor bench net
             --mode pair`; torch.distributed + gloo, 8 processes (bench/gloo_gossip.py) vs
             `rumor bench net --mode ring|pushsum --nodes 8`
  codecs     `rumor bench codecs` (its baselines: memcpy and LibTorch's own ops)
  step       `rumor bench step` (local training steps per second)
  dpsgd      a D-PSGD round on ring8 over `rumor launch` (experiments/dpsgd-round) vs the
             local step + gloo's ring round for a vector of the model's size
  quickstart experiments/quickstart.json timed as whole commands, `rumor launch` vs
             `--inprocess` (alternating pairs), and the same pair with method `local` (no
             communication); in-process dpsgd vs `local` by wall_time_s
Raw results go to OUT/results.json (default runs/bench/<UTC time>/); with the tables
written, a copy goes to bench/results.json. Needs only the Python 3 standard library
(gloo_gossip.py runs under PYTHON, default /usr/bin/python3 with python3-torch).
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import bench_tables  # noqa: E402  (tools/ on the path above)

# The D-PSGD baseline's gloo ring round runs on a vector of the mlp's size, in the same gloo
# runs as the transport rows (one start of 8 Python processes per repeat, not two).
MLP_PARAMS = 101770
FULL = dict(pairs=5, iperf_s=5, pair_floats=10**7, pair_repeats=20,
            gossip_repeats=5, gossip_cases=[("ring", 10**5), ("ring", 10**6), ("pushsum", 10**6)],
            gossip_rounds=20, codec_floats=10**7, codec_repeats=5,
            step_repeats=5, step_seconds=1.0, step_models=["logreg", "mlp", "cnn", "resnet8"],
            dpsgd_repeats=5, dpsgd_rounds=500, quickstart_pairs=3, quickstart_rounds=None,
            inproc_repeats=5)
QUICK = dict(pairs=3, iperf_s=2, pair_floats=10**7, pair_repeats=10,
             gossip_repeats=2, gossip_cases=[("ring", 10**6)],
             gossip_rounds=10, codec_floats=10**6, codec_repeats=3,
             step_repeats=2, step_seconds=0.3, step_models=["logreg", "mlp"],
             dpsgd_repeats=2, dpsgd_rounds=200, quickstart_pairs=1, quickstart_rounds=200,
             inproc_repeats=2)
SECTIONS = ["transport", "codecs", "step", "dpsgd", "quickstart"]
T0 = time.monotonic()


def say(*parts):
    print(f"[bench {time.monotonic() - T0:6.0f} s]", *parts, file=sys.stderr, flush=True)


class Failed(Exception):
    pass


def run(cmd, timeout=900, env=None):
    """stdout of cmd (a list); Failed naming the command and the end of its stderr."""
    try:
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                           env=env)
    except subprocess.TimeoutExpired:
        raise Failed(f"`{' '.join(cmd)}` took more than {timeout} s")
    except OSError as e:
        raise Failed(f"`{cmd[0]}` could not run: {e}")
    if p.returncode != 0:
        tail = " | ".join(p.stderr.strip().splitlines()[-3:])
        raise Failed(f"`{' '.join(cmd)}` exited {p.returncode}: {tail}")
    return p.stdout


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sci(x):
    """1e6 for powers of ten, 101,770 for the rest."""
    t = f"{x:.0e}"
    return t.replace("e+0", "e") if float(t) == x else f"{x:,}"


class Bench:
    def __init__(self, args):
        self.args = args
        self.cfg = QUICK if args.quick else FULL
        self.rumor = os.path.abspath(args.rumor)
        self.py = args.python
        self.out = args.out
        self.results = {"machine": machine(args), "comparisons": []}

    def compare(self, section, what, unit, higher, value, baseline, how, target=None):
        c = dict(section=section, what=what, unit=unit, higher_is_better=higher, value=value,
                 baseline=baseline, how=how)
        if target:
            c["target"] = target
        self.results["comparisons"].append(c)

    def failed(self, section, what, unit, error):
        say(f"{section}: {what}: FAILED: {error}")
        self.results["comparisons"].append(dict(section=section, what=what, unit=unit,
                                                error=str(error)))

    def save(self):
        with open(os.path.join(self.out, "results.json"), "w") as f:
            json.dump(self.results, f, indent=1)

    # ---- transport --------------------------------------------------------------------
    def transport(self):
        self.pair()
        self.gossip()

    def pair(self):
        c = self.cfg
        rumor, iperf = [], []
        what = f"TCP pair, {sci(c['pair_floats'])} floats"
        try:
            for i in range(c["pairs"]):
                line = json_lines(run(["bash", "bench/iperf_loopback.sh", str(c["iperf_s"]),
                                       str(free_port())]))[-1]
                iperf.append(line["gbps_median"])
                j = json_lines(run([self.rumor, "bench", "net", "--mode", "pair", "--floats",
                                    str(c["pair_floats"]), "--repeats", str(c["pair_repeats"]),
                                    "--json"]))[-1]
                rumor.append(j["gbps"]["median"])
                say(f"pair {i + 1}/{c['pairs']}: iperf3 {iperf[-1]:.3f} GB/s, rumor "
                    f"{rumor[-1]:.3f} GB/s")
        except (Failed, KeyError, IndexError) as e:
            self.failed("transport", what, "GB/s", e)
            return
        self.compare("transport", what, "GB/s", True,
                     {"name": "rumor bench net --mode pair", "samples": rumor},
                     {"name": "iperf3, one stream", "samples": iperf},
                     f"`rumor bench net --mode pair --floats {sci(c['pair_floats'])} --repeats "
                     f"{c['pair_repeats']} --json`: a message from one TCP transport to another "
                     f"on 127.0.0.1 and back, 2·4D bytes / round-trip time, median over the "
                     f"repeats; `bash bench/iperf_loopback.sh {c['iperf_s']}`: median of the "
                     f"1-second intervals; {c['pairs']} alternating pairs.",
                     {"op": ">=", "ratio": 1.0})

    def gloo_round(self, floats, patterns, rounds):
        """{(pattern, floats): median ms} of one bench/gloo_gossip.py run with 8 processes."""
        lines = json_lines(run([self.py, "bench/gloo_gossip.py", "--nodes", "8", "--floats",
                                *map(str, floats), "--patterns", *patterns, "--rounds",
                                str(rounds), "--budget", "5"]))
        return {(line["pattern"], line["floats"]): line["median_ms"] for line in lines}

    def gossip(self):
        c = self.cfg
        cases = c["gossip_cases"]
        floats = sorted({f for _, f in cases} | {MLP_PARAMS})
        patterns = sorted({p for p, _ in cases} | {"ring"})
        gloo = {k: [] for k in cases}
        rumor = {k: [] for k in cases}
        self.gloo_mlp_ring = []
        errors = {}
        for i in range(c["gossip_repeats"]):
            try:
                got = self.gloo_round(floats, patterns, c["gossip_rounds"])
                for k in cases:
                    gloo[k].append(got[k])
                self.gloo_mlp_ring.append(got[("ring", MLP_PARAMS)])
            except (Failed, KeyError) as e:
                errors.setdefault("gloo", e)
            for pattern, n in cases:
                try:
                    j = json_lines(run([self.rumor, "bench", "net", "--mode", pattern,
                                        "--nodes", "8", "--floats", str(n), "--rounds",
                                        str(c["gossip_rounds"]), "--json"]))[-1]
                    rumor[(pattern, n)].append(j["median_ms"])
                except (Failed, KeyError, IndexError) as e:
                    errors.setdefault((pattern, n), e)
            say(f"gossip {i + 1}/{c['gossip_repeats']}: " + ", ".join(
                f"{p} {sci(n)}: gloo {gloo[(p, n)][-1:]} rumor {rumor[(p, n)][-1:]} ms"
                for p, n in cases))
        for pattern, n in cases:
            what = f"{pattern} gossip round, 8 processes, {sci(n)} floats"
            err = errors.get((pattern, n)) or errors.get("gloo")
            if err and (not gloo[(pattern, n)] or not rumor[(pattern, n)]):
                self.failed("transport", what, "ms", err)
                continue
            target = {"op": "<=", "ratio": 1.0 if n >= 10**6 else 0.75}
            self.compare(
                "transport", what, "ms", False,
                {"name": f"rumor bench net --mode {pattern}", "samples": rumor[(pattern, n)]},
                {"name": "torch.distributed + gloo", "samples": gloo[(pattern, n)]},
                f"`rumor bench net --mode ring|pushsum --nodes 8 --floats D --rounds "
                f"{c['gossip_rounds']} --json` against `{os.path.basename(self.py)} "
                f"bench/gloo_gossip.py --nodes 8 --floats {' '.join(map(sci, floats))} "
                f"--patterns {' '.join(patterns)} --rounds {c['gossip_rounds']} --budget 5`, "
                "taking turns: 8 processes on 127.0.0.1, a barrier (not timed) before each "
                "round, a round's time is its slowest process's, median over the rounds of a "
                "run; the figure is the median over runs.", target)

    # ---- codecs -----------------------------------------------------------------------
    def codecs(self):
        c = self.cfg
        try:
            j = json.loads(run([self.rumor, "bench", "codecs", "--floats", str(c["codec_floats"]),
                                "--repeats", str(c["codec_repeats"]), "--json"]))
        except (Failed, ValueError) as e:
            self.failed("codecs", "encode throughput", "GB/s", e)
            return
        self.results["codecs"] = j
        by = {x["name"]: x for x in j["codecs"] + j["baselines"]}
        n = j["repeats"]

        def fig(name, x):
            return {"name": name, "median": x["encode_gbps"], "min": x.get("encode_gbps_min"),
                    "max": x.get("encode_gbps_max"), "n": n}

        how = (f"`rumor bench codecs --floats {sci(c['codec_floats'])} --repeats {n} --json`, "
               "one thread, encode GB/s = input bytes / median time; baselines in the same "
               "process.")
        pairs = [("fp16", "memcpy", {"op": ">=", "ratio": 1.0}),
                 ("bf16", "memcpy", {"op": ">=", "ratio": 1.0}),
                 ("fp16", "torch to(kHalf)", None),
                 ("qsgd:4", "memcpy", None),
                 ("topk:0.01", "torch::topk", {"op": ">=", "ratio": 30.0})]
        for codec, base, target in pairs:
            if codec in by and base in by:
                self.compare("codecs", f"`{codec}` encode, {sci(c['codec_floats'])} floats",
                             "GB/s", True, fig(codec, by[codec]), fig(base, by[base]), how,
                             target)

    # ---- step -------------------------------------------------------------------------
    def step(self):
        c = self.cfg
        models = {}
        blas = ""
        try:
            for i in range(c["step_repeats"]):
                j = json_lines(run([self.rumor, "bench", "step", "--json", "--seconds",
                                    str(c["step_seconds"]), "--models", *c["step_models"],
                                    "--log-level", "off"]))[-1]
                blas = j["blas"]
                for m in j["models"]:
                    e = models.setdefault(m["model"], {"model": m["model"],
                                                       "params": m["params"], "steps_per_s": []})
                    e["steps_per_s"].append(m["steps_per_s"])
                say(f"step {i + 1}/{c['step_repeats']}: " + ", ".join(
                    f"{m['model']} {m['steps_per_s']:.0f}/s" for m in j["models"]))
        except (Failed, KeyError, IndexError) as e:
            self.failed("step", "local training steps", "steps/s", e)
            return
        self.results["step"] = {"batch": 32, "blas": blas, "seconds": c["step_seconds"],
                                "models": list(models.values())}

    def mlp_step_ms(self, count):
        """ms per mlp step, one per repeat: from the step section, or measured here."""
        for m in self.results.get("step", {}).get("models", []):
            if m["model"] == "mlp" and len(m["steps_per_s"]) >= count:
                return [1000.0 / s for s in m["steps_per_s"][:count]]
        out = []
        for _ in range(count):
            j = json_lines(run([self.rumor, "bench", "step", "--json", "--models", "mlp",
                                "--seconds", "1", "--log-level", "off"]))[-1]
            out.append(1000.0 / j["models"][0]["steps_per_s"])
        return out

    # ---- runs of the runtime -------------------------------------------------------------
    def launch(self, config, tag, extra, attempts=3):
        """(whole-command seconds, summary.json) of one `rumor launch`; a launch that fails
        (e.g. a port taken by another run between launch's check and a peer's bind) is tried
        again, at most `attempts` times."""
        out = os.path.join(self.out, "runs", tag)
        last = None
        for _ in range(attempts):
            shutil.rmtree(out, ignore_errors=True)
            t0 = time.monotonic()
            try:
                run([self.rumor, "launch", config, "--no-progress", "--log-level", "warn",
                     "--set", f"output.dir={out}", *extra], timeout=1800)
            except Failed as e:
                last = e
                say(f"{tag}: launch failed, trying again: {e}")
                continue
            wall = time.monotonic() - t0
            runs = [d for d in os.listdir(out) if os.path.isdir(os.path.join(out, d))]
            with open(os.path.join(out, runs[0], "summary.json")) as f:
                return wall, json.load(f)
        raise last

    def dpsgd(self):
        c = self.cfg
        what = "D-PSGD round on ring8 over `rumor launch`, mlp 784-128-10"
        rounds = ["--set", f"rounds={c['dpsgd_rounds']}", "--set",
                  f"eval.every={c['dpsgd_rounds']}"]
        rumor = []
        gloo = list(getattr(self, "gloo_mlp_ring", []))[:c["dpsgd_repeats"]]
        try:
            steps = self.mlp_step_ms(c["dpsgd_repeats"])
            for i in range(c["dpsgd_repeats"]):
                if len(gloo) <= i:  # the transport section did not run: a gloo run here
                    gloo.append(self.gloo_round([MLP_PARAMS], ["ring"],
                                                c["gossip_rounds"])[("ring", MLP_PARAMS)])
                _, summary = self.launch("experiments/dpsgd-round/config.json", f"dpsgd-{i}",
                                         rounds)
                rumor.append(summary["round_ms_median"])
                say(f"dpsgd {i + 1}/{c['dpsgd_repeats']}: step {steps[i]:.3f} + gloo ring "
                    f"{gloo[i]:.2f} ms; rumor round {rumor[-1]:.2f} ms")
        except (Failed, KeyError, IndexError, OSError) as e:
            self.failed("runtime", what, "ms", e)
            return
        say(f"dpsgd: gloo ring rounds {[round(g, 2) for g in gloo]} ms")
        self.compare("runtime", what, "ms", False,
                     {"name": "rumor dpsgd round", "samples": rumor},
                     {"name": "local step + gloo ring round",
                      "samples": [s + g for s, g in zip(steps, gloo)]},
                     f"`rumor launch experiments/dpsgd-round/config.json --set rounds="
                     f"{c['dpsgd_rounds']}` (8 processes, one local step per round): the "
                     "slowest node's median round (`round_ms_median`); baseline per repeat: "
                     "the median mlp step of one `rumor bench step` process plus the median "
                     "gloo ring round for 101,770 floats (the mlp's size) of one "
                     "`bench/gloo_gossip.py` run of the transport rows.",
                     {"op": "<=", "ratio": 0.65})

    def quickstart(self):
        c = self.cfg
        extra = ["--set", f"rounds={c['quickstart_rounds']}"] if c["quickstart_rounds"] else []
        rounds = f" --set rounds={c['quickstart_rounds']}" if extra else ""
        local = ["--set", "method.name=local"]
        # Each pair once as configured and once with no communication at all (method local):
        # the second pair is what eight processes cost here before any message is sent.
        runs = {k: [] for k in ("tcp", "inproc", "tcp_run", "inproc_run", "tcp0", "inproc0")}
        what = "quickstart, whole command: `rumor launch` (8 processes) vs `--inprocess`"
        try:
            for i in range(c["quickstart_pairs"]):
                for tag, key, more in (("tcp", "tcp", []), ("inproc", "inproc", ["--inprocess"]),
                                       ("local-tcp", "tcp0", local),
                                       ("local-inproc", "inproc0", ["--inprocess", *local])):
                    w, s = self.launch("experiments/quickstart.json", f"qs-{tag}-{i}",
                                       [*more, *extra])
                    runs[key].append(w)
                    if key in ("tcp", "inproc"):
                        runs[key + "_run"].append(s["wall_time_s"])
                say(f"quickstart {i + 1}/{c['quickstart_pairs']}: launch {runs['tcp'][-1]:.1f} s "
                    f"(run {runs['tcp_run'][-1]:.1f}), --inprocess {runs['inproc'][-1]:.1f} s "
                    f"(run {runs['inproc_run'][-1]:.1f}); method local: launch "
                    f"{runs['tcp0'][-1]:.1f} s, --inprocess {runs['inproc0'][-1]:.1f} s")
        except (Failed, KeyError, IndexError, OSError) as e:
            self.failed("runtime", what, "s", e)
        else:
            self.quickstart_rows(what, rounds, runs)
        self.inproc_methods()

    def quickstart_rows(self, what, rounds, runs):
        pairs = self.cfg["quickstart_pairs"]
        launch, inproc = "rumor launch", "rumor launch --inprocess"
        self.compare("runtime", what, "s", False,
                     {"name": launch, "samples": runs["tcp"]},
                     {"name": inproc, "samples": runs["inproc"]},
                     f"`rumor launch experiments/quickstart.json{rounds}` and the same with "
                     "`--inprocess`, each timed from start to exit as a user would; "
                     f"{pairs} alternating pairs.",
                     {"op": "<=", "ratio": 1.25})
        self.compare("runtime", "quickstart, the run's own `wall_time_s`: over TCP vs "
                     "in-process", "s", False,
                     {"name": launch, "samples": runs["tcp_run"]},
                     {"name": inproc, "samples": runs["inproc_run"]},
                     "summary.json's `wall_time_s` of the same runs (training only, "
                     "start-up left out).")
        self.compare("runtime", "quickstart with no communication (method `local`), whole "
                     "command: `rumor launch` vs `--inprocess`", "s", False,
                     {"name": launch, "samples": runs["tcp0"]},
                     {"name": inproc, "samples": runs["inproc0"]},
                     f"the pairs above with `--set method.name=local{rounds}`, run beside "
                     "them: the same processes, data, steps and evaluations with no message "
                     "sent, so the ratio is what eight processes cost on this machine before "
                     "any communication.")

    def inproc_methods(self):
        c = self.cfg
        extra = ["--inprocess"] + (["--set", f"rounds={c['quickstart_rounds']}"]
                                   if c["quickstart_rounds"] else [])
        dpsgd, local = [], []
        what = "quickstart in-process, dpsgd vs `local` (no communication), `wall_time_s`"
        try:
            for i in range(c["inproc_repeats"]):
                _, s = self.launch("experiments/quickstart.json", f"inproc-dpsgd-{i}",
                                   [*extra, "--set", "method.name=dpsgd"])
                dpsgd.append(s["wall_time_s"])
                _, s = self.launch("experiments/quickstart.json", f"inproc-local-{i}",
                                   [*extra, "--set", "method.name=local"])
                local.append(s["wall_time_s"])
                say(f"in-process {i + 1}/{c['inproc_repeats']}: dpsgd {dpsgd[-1]:.2f} s, "
                    f"local {local[-1]:.2f} s")
        except (Failed, KeyError, IndexError, OSError) as e:
            self.failed("runtime", what, "s", e)
            return
        self.compare("runtime", what, "s", False, {"name": "dpsgd", "samples": dpsgd},
                     {"name": "local", "samples": local},
                     "`rumor launch experiments/quickstart.json --inprocess --set method.name="
                     "dpsgd` and `... method.name=local`, alternating; summary.json's "
                     "`wall_time_s`.", {"op": "<=", "ratio": 1.6})


def machine(args):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    osname = platform.system()
    try:
        with open("/etc/os-release") as f:
            osname = next(line.split("=", 1)[1].strip().strip('"') for line in f
                          if line.startswith("PRETTY_NAME="))
    except (OSError, StopIteration):
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = "?"
    return {"cpu": cpu, "cores": os.cpu_count(), "os": osname, "kernel": platform.release(),
            "load_start": [round(x, 2) for x in os.getloadavg()], "commit": commit or "?",
            "mode": "quick" if args.quick else "full",
            "command": "tools/bench.py" + (" --quick" if args.quick else ""),
            "started_utc": utc_now()}


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats, smaller sizes")
    ap.add_argument("--write", action="store_true",
                    help="with --quick: write BENCHMARKS.md all the same")
    ap.add_argument("--no-write", action="store_true", help="never touch BENCHMARKS.md")
    ap.add_argument("--only", nargs="+", choices=SECTIONS, default=SECTIONS,
                    help="run these sections only (the tables then hold only them)")
    ap.add_argument("--rumor", default=os.path.join(ROOT, "build/release/rumor"))
    ap.add_argument("--python", default=os.environ.get("PYTHON", "/usr/bin/python3"),
                    help="Python with torch for bench/gloo_gossip.py")
    ap.add_argument("--out", default="", help="where raw results go (default runs/bench/TIME)")
    ap.add_argument("--benchmarks", default=os.path.join(ROOT, "BENCHMARKS.md"))
    args = ap.parse_args()
    if not args.out:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
        args.out = os.path.join(ROOT, "runs", "bench", stamp)
    args.out = os.path.abspath(args.out)
    return args


def main():
    args = parse_args()
    if not os.access(args.rumor, os.X_OK):
        print(f"bench: {args.rumor} is not an executable; build it first (cmake --preset release "
              "&& cmake --build --preset release --target rumor) or pass --rumor", file=sys.stderr)
        return 1
    os.makedirs(args.out, exist_ok=True)
    b = Bench(args)
    for name in SECTIONS:  # the order matters: dpsgd reuses the step section's mlp figures
        if name in args.only:
            say(f"section {name}")
            getattr(b, name)()
            b.save()
    m = b.results["machine"]
    m["load_end"] = [round(x, 2) for x in os.getloadavg()]
    m["finished_utc"] = utc_now()
    m["wall_s"] = round(time.monotonic() - T0, 1)
    b.save()
    block = bench_tables.render(b.results)
    print(block)
    write = not args.no_write and (not args.quick or args.write)
    if write:
        with open(args.benchmarks) as f:
            text = f.read()
        with open(args.benchmarks, "w") as f:
            f.write(bench_tables.replace_block(text, block))
        shutil.copy(os.path.join(args.out, "results.json"), os.path.join(ROOT, "bench",
                                                                           "results.json"))
        say(f"wrote {args.benchmarks} and bench/results.json")
    say(f"done in {m['wall_s'] / 60:.1f} min; raw results in {args.out}/results.json")
    failed = [c for c in b.results["comparisons"] if c.get("error")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
