#!/usr/bin/python3
"""How gmc and PyTorch slow down when another process takes one core (not part of make test).

  /usr/bin/python3 bench/load.py [--models dcgan,ddpm] [--rounds 3] [--threads N] [--scale 1]
                                 [--gmc ./gmc] [--gmc-before PATH] [--variant NAME=PATH ...]
                                 [--hog-cpu 1] [--no-torch] [--markdown]

Each model of bench/bench.py named in --models is trained, with the same recipe and timing as
`make bench`, by every side (gmc, PyTorch, and a second gmc binary given by --gmc-before, e.g.
the previous commit's, to compare two thread pools; --variant adds more, each a copy of gmc
next to a link to stdlib/ since gmc finds its library next to itself) in two conditions: "quiet" (nothing added)
and "hog" (a busy-loop process pinned to core --hog-cpu for the whole run). Runs are
interleaved: every round runs each side in both conditions, the order rotated from round to
round, so a change in the machine's background load hits all of them alike. A side's time in a
condition is the median over the blocks of iterations of all rounds (bench.py's
block_samples); its slowdown is hog / quiet; gmc/PyTorch in each condition is the median over
rounds of that round's ratio.
The load average at each run's start is printed, since on a shared machine "quiet" is only
what the rest of the machine allows.
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (bench/bench.py: MODELS, run_gmc, run_torch, median)


def start_hog(cpu):
    """a busy loop pinned to one core; the caller kills it"""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"],
                            preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))


def run_side(side, m, args, tmp, rnd):
    if side == "torch":
        return bench.run_torch(m, args, tmp, rnd)
    a = argparse.Namespace(**vars(args))
    a.gmc = {"gmc": args.gmc, "gmc-before": args.gmc_before}.get(side) or dict(v.split("=", 1) for v in args.variant)[side]
    d = os.path.join(tmp, side)              # the two binaries' runs apart
    os.makedirs(d, exist_ok=True)
    return bench.run_gmc(m, a, d, rnd)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="dcgan,ddpm")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--scale", type=float, default=1.0, help="multiply every model's timed iterations")
    p.add_argument("--gmc", default="./gmc")
    p.add_argument("--gmc-before", default="", help="a second gmc binary, run the same way")
    p.add_argument("--variant", action="append", default=[], help="NAME=PATH: another gmc binary")
    p.add_argument("--hog-cpu", type=int, default=os.cpu_count() - 1)
    p.add_argument("--torch-blas-threads", type=int, default=1)
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args()
    # a SIGTERM unwinds like an exception, so the finally below kills a running hog
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    keys = args.models.split(",")
    models = [dict(m) for m in bench.MODELS if m["key"] in keys]
    for m in models:
        m["steps"] = max(2, int(m["steps"] * args.scale))
    sides = ["gmc"] + (["gmc-before"] if args.gmc_before else []) + [v.split("=")[0] for v in args.variant] + \
        ([] if args.no_torch else ["torch"])
    tmp = tempfile.mkdtemp(prefix="gmc-load-")
    args.text = os.path.join(tmp, "corpus.txt")
    bench.write_text(args.text)
    samples = {}                              # (model, side, condition) -> block samples
    per_round = {}                            # (model, side, condition, round) -> median ms
    for rnd in range(args.rounds):
        for m in models:
            runs = [(s, c) for c in ("quiet", "hog") for s in sides]
            k = rnd % len(runs)
            for side, cond in runs[k:] + runs[:k]:
                hog = start_hog(args.hog_cpu) if cond == "hog" else None
                try:
                    load = os.getloadavg()[0]
                    res = run_side(side, m, args, tmp, rnd)
                finally:
                    if hog:
                        hog.kill()
                        hog.wait()
                if "error" in res:
                    print("%s %s %s: %s (%s)" % (m["key"], side, cond, res["error"], res.get("log")), file=sys.stderr)
                    sys.exit(1)
                ms = bench.median(res["samples"]) * 1000
                print("round %d %-10s %-10s %-5s %8.1f ms/iter  (load %.1f)" % (rnd + 1, m["key"], side, cond, ms, load),
                      flush=True)
                samples.setdefault((m["key"], side, cond), []).extend(res["samples"])
                per_round[(m["key"], side, cond, rnd)] = ms
    rows = []
    for m in models:
        med = {(s, c): bench.median(samples[(m["key"], s, c)]) * 1000 for s in sides for c in ("quiet", "hog")}
        for s in sides:
            q, h = med[(s, "quiet")], med[(s, "hog")]
            # against PyTorch: the median over rounds of the two sides' ratio in that round,
            # since runs of one round are close in time
            vs = ["%.2f" % bench.median([per_round[(m["key"], s, c, r)] / per_round[(m["key"], "torch", c, r)]
                                         for r in range(args.rounds)]) if "torch" in sides else "—"
                  for c in ("quiet", "hog")]
            rows.append([m["label"], s, "%.1f" % q, "%.1f" % h, "%.2f" % (h / q)] + vs)
    head = ["model", "side", "quiet ms/iter", "hog ms/iter", "slowdown (hog/quiet)", "vs PyTorch quiet", "vs PyTorch hog"]
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        print("  ".join(head))
        for r in rows:
            print("  ".join(r))


if __name__ == "__main__":
    main()
