#!/usr/bin/env python3
"""Compile time of every example: a cold start (empty kernel cache) and a warm one (every kernel
from the disk cache), one iteration of each program's train blocks (`--set steps=1
--limit-batches 1`: the step blocks, and the validation and end-of-epoch blocks, are built and
compiled; `every N steps` hooks and sampling procedures are not). Not part of `make test`.

    tools/compile_times.py [--threads 2] [--reps 1] [--base OLD_GMC] [FILE.gm ...]

Prints one row per program, sorted by cold compile CPU time: compile CPU (all threads, from
--stats, with its breakdown), the JIT's wall time (compiling or loading kernels), and the whole
process's wall and CPU time (which also count loading data and running the step) for the cold
and the warm run. With --reps N each number is the median of N runs. With --base, another
build of gmc runs each program too, alternating with this one (so both see the same load),
and the rows read "base -> this" for kernels, cold compile CPU, its machine code part and warm
compile CPU.
"""
import argparse, glob, os, re, resource, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CPU = re.compile(r"compile CPU time \(all threads\): ([\d.]+) s = graphs ([\d.]+) \+ lowering ([\d.]+) \+ "
                 r"LLVM IR ([\d.]+) \+ optimisation ([\d.]+) \+ machine code ([\d.]+) \+ linking ([\d.]+)")
CACHE = re.compile(r"kernel cache on disk: (\d+) kernels loaded, (\d+) compiled \((\d+) stored\).*?([\d.]+) s in all")


# programs that need a setting to run here
EXTRA = {"bench/char_lstm.gm": ["--set", "corpus=" + os.path.join(ROOT, "..", "shared", "data", "tinyshakespeare.txt")]}


def run(gmc, prog, cache, out, threads):
    env = dict(os.environ, XDG_CACHE_HOME=cache)
    cmd = [gmc, prog, "--run", "--set", "steps=1", "--limit-batches", "1", "--stats",
           "--threads", str(threads), "--out", out] + EXTRA.get(os.path.relpath(prog, ROOT), [])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if p.returncode != 0:
        return {"error": (p.stdout.strip().splitlines() or ["exit %d" % p.returncode])[-1][:80]}
    # a program may hold several train blocks: sum their lines
    r = {"wall": wall, "cpu": cpu, "compile": [0.0] * 7, "jit_wall": 0.0, "loaded": 0, "compiled": 0}
    for m in CPU.finditer(p.stdout):
        r["compile"] = [a + float(b) for a, b in zip(r["compile"], m.groups())]
    for m in CACHE.finditer(p.stdout):
        r["loaded"] += int(m.group(1))
        r["compiled"] += int(m.group(2))
        r["jit_wall"] += float(m.group(4))
    return r


def median_runs(runs):
    failed = [r for r in runs if "error" in r]
    if failed:
        return failed[0]
    m = {k: statistics.median(r[k] for r in runs) for k in ("wall", "cpu", "jit_wall", "loaded", "compiled")}
    m["compile"] = [statistics.median(r["compile"][i] for r in runs) for i in range(7)]
    return m


def print_compared(rows, base_rows):
    def ok(r):
        return "error" not in r
    rows.sort(key=lambda r: -max(r[1]["compile"][0] if ok(r[1]) else 0,
                                 base_rows[r[0]][1]["compile"][0] if ok(base_rows[r[0]][1]) else 0))
    print("| program | kernels | cold: compile CPU s | cold: machine code CPU s | warm: compile CPU s |")
    print("|---|---|---|---|---|")
    for name, c, w in rows:
        _, bc, bw = base_rows[name]
        if not (ok(c) and ok(w) and ok(bc) and ok(bw)):
            err = next(r["error"] for r in (bc, bw, c, w) if not ok(r))
            print("| %s | failed: %s ||||" % (name, err.replace("|", "/")))
            continue
        print("| %s | %d → %d | %.2f → %.2f | %.2f → %.2f | %.2f → %.2f |" % (
            name, bc["compiled"] + bc["loaded"], c["compiled"] + c["loaded"], bc["compile"][0], c["compile"][0],
            bc["compile"][5], c["compile"][5], bw["compile"][0], w["compile"][0]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="*")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--gmc", default=os.path.join(ROOT, "gmc"))
    ap.add_argument("--base", help="another gmc binary to compare with, run alternately")
    a = ap.parse_args()
    files = a.files or sorted(glob.glob(os.path.join(ROOT, "examples", "*.gm")) +
                              glob.glob(os.path.join(ROOT, "examples", "seeds", "*.gm")) +
                              glob.glob(os.path.join(ROOT, "bench", "*.gm")))
    tmp = tempfile.mkdtemp(prefix="gmc_compile_times.")
    rows, base_rows = [], {}
    try:
        for f in files:
            for gmc in ([a.base] if a.base else []) + [a.gmc]:
                cold, warm = [], []
                for rep in range(a.reps):
                    cache = os.path.join(tmp, "cache%d" % rep)
                    shutil.rmtree(cache, ignore_errors=True)
                    cold.append(run(gmc, f, cache, os.path.join(tmp, "out"), a.threads))
                    warm.append(run(gmc, f, cache, os.path.join(tmp, "out"), a.threads))
                    shutil.rmtree(cache, ignore_errors=True)
                row = (os.path.relpath(f, ROOT), median_runs(cold), median_runs(warm))
                if gmc is a.base and a.base: base_rows[row[0]] = row
                else: rows.append(row)
            print("  %s done" % rows[-1][0], file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if a.base:
        print_compared(rows, base_rows)
        return
    rows.sort(key=lambda r: -r[1]["compile"][0] if "error" not in r[1] else 1)
    print("| program | kernels | cold: compile CPU s (graphs + lowering + IR + opt + machine code + link) | cold: JIT wall s | cold: process wall / CPU s | warm: compile CPU s | warm: JIT wall s | warm: process wall / CPU s |")
    print("|---|---|---|---|---|---|---|---|")
    for name, c, w in rows:
        if "error" in c or "error" in w:
            print("| %s | failed: %s |||||||" % (name, (c.get("error") or w.get("error")).replace("|", "/")))
            continue
        cc, wc = c["compile"], w["compile"]
        print("| %s | %d | %.2f (%.2f + %.2f + %.2f + %.2f + %.2f + %.2f) | %.2f | %.2f / %.2f | %.2f | %.2f | %.2f / %.2f |" % (
            name, c["compiled"] + c["loaded"], cc[0], cc[1], cc[2], cc[3], cc[4], cc[5], cc[6], c["jit_wall"],
            c["wall"], c["cpu"], wc[0], w["jit_wall"], w["wall"], w["cpu"]))


if __name__ == "__main__":
    main()
