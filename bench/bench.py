#!/usr/bin/python3
"""make bench: each benchmark model trained with the same recipe in gmc and in PyTorch.

  /usr/bin/python3 bench/bench.py [--models a,b] [--rounds 3] [--threads N] [--scale 1]
                                  [--markdown] [--check] [--keep DIR]

For each model the two sides run alternately (gmc, PyTorch, then PyTorch, gmc, ...), each run a
fresh process doing W warm-up iterations (gmc compiles its kernels then) and N timed ones.
Step time: the timed iterations of every round are cut into blocks of N/10 consecutive
iterations; a block's mean iteration time is one sample, and the table shows the median of
the samples of all rounds (robust to another process taking the cores for a while). gmc's
times come from its metrics.csv (time at the end of each iteration), PyTorch's from
perf_counter after each iteration; both include drawing the batch. An iteration is every step
of the recipe once (a GAN: its D step and its G step).

Columns: median ms per iteration of each, their ratio gmc/PyTorch (lower is better; the
issue's target in brackets), examples per second, peak resident memory of each process
(wait4's ru_maxrss: the whole process, its data set, and for PyTorch the torch library), and
gmc's matrix-product GFLOP/s from --stats with its share of a 1024^3 OpenBLAS sgemm timed at
the end of the same gmc run (median over rounds).

A second table sets gmc's large matrix products against OpenBLAS per shape (the issue's target:
large GEMM-bound layers at 85 % or more of sgemm's throughput): every product of 100 MFLOP or
more a call that gmc's --stats lists (plain products and implicit convolutions, whose shape is
that of the product they replace: [N*Ho*Wo x kh*kw*C] @ [kh*kw*C x F] forward, the weight
gradient's A^T, the input gradient's B^T), with gmc's GFLOP/s on it (all its calls, warm-up
included) and OpenBLAS sgemm's on the same [m, k, n] and transposes, timed right after each
gmc run by build/sgemm_shapes (bench/sgemm_shapes.c: single sgemm calls on OpenBLAS's own T
threads, the fastest of 5 or more after a warm-up, in a process of its own so the operands do
not count in gmc's peak memory); medians over the rounds. "all" is the model's large products together:
their FLOPs over gmc's seconds, against the time sgemm would take for the same calls.

Settings: gmc --threads T; PyTorch torch.set_num_threads(T), OMP_NUM_THREADS=T, OpenBLAS
single-threaded (OPENBLAS_NUM_THREADS=1: fastest for torch here, its OpenMP pool and
OpenBLAS's own threads otherwise fight over the cores), OMP_WAIT_POLICY=PASSIVE and, on
AVX-512 CPUs that Debian's OpenBLAS 0.3.21 does not recognise, OPENBLAS_CORETYPE=SkylakeX
(gmc sets that for itself). T defaults to the number of cores.

Models whose .gm program does not exist yet, or imports a stdlib module that has not landed
(gmc cannot express them yet), get a row with the reason and PyTorch's numbers alone. --check only checks that every .gm program compiles
(gmc --check) and that every PyTorch model runs one iteration. Exit status 1 if a run fails.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# key, label, .gm program, --set values, batch, examples per iteration, timed iterations,
# warm-up iterations, target ratio, reason when the program is missing
MODELS = [
    dict(key="vae_mlp", label="MLP VAE (M22)", gm="examples/vae_mlp.gm", torch="vae_mlp", batch=128,
         steps=400, warmup=20, target=0.5),
    dict(key="conv_vae", label="conv VAE (M17)", gm="bench/conv_vae.gm", torch="conv_vae", batch=100,
         steps=40, warmup=3, target=0.8),
    dict(key="dcgan", label="DCGAN (M11), D+G step", gm="examples/dcgan.gm", torch="dcgan", batch=32,
         steps=60, warmup=3, target=0.8),
    dict(key="cyclegan1", label="CycleGAN (M27) 32x32x1", gm="examples/cyclegan.gm", torch="cyclegan",
         batch=1, steps=60, warmup=3, target=0.8),
    dict(key="cyclegan16", label="CycleGAN (M27) 32x32x1", gm="examples/cyclegan.gm", torch="cyclegan",
         batch=16, steps=10, warmup=2, target=0.8),
    dict(key="char_lstm", label="char LSTM (M19), 2x128, seq 40", gm="bench/char_lstm.gm", torch="char_lstm",
         batch=128, steps=30, warmup=3, target=0.7, text=True,
         missing="no LSTM layer in gmc yet"),
    dict(key="ddpm", label="DDPM U-Net 32-64-128", gm="bench/ddpm_unet.gm", torch="ddpm", batch=64,
         steps=10, warmup=2, target=0.8),
]


def avx512():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return " avx512f" in line and " avx512bw" in line
    except OSError:
        pass
    return False


def run_child(cmd, env, log):
    """Run cmd with stdout and stderr to the file log; return (exit code, output, peak RSS MB)
    where the peak is the child's own (wait4), not the largest of all children so far."""
    with open(log, "w") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    with open(log) as f:
        text = f.read()
    return p.returncode, text, ru.ru_maxrss / 1024.0


def block_samples(times, warmup, steps):
    """Mean iteration time (s) of each block of ~steps/10 iterations after the warm-up;
    times[i] = end of iteration i + 1, or times[0] = end of the warm-up when warmup is None."""
    start = 0 if warmup is None else max(warmup - 1, 0)
    k = max(1, steps // 10)
    out = []
    for b in range(steps // k):
        i, j = start + b * k, start + (b + 1) * k
        if j < len(times):
            out.append((times[j] - times[i]) / k)
    return out


def gmc_check(m, args, tmp):
    """gmc FILE --check with the model's settings: (exit code, output)"""
    cmd = [args.gmc, m["gm"], "--check", "--set", "batch_size=%d" % m["batch"]]
    if m.get("text"):
        cmd += ["--set", "corpus=" + args.text]
    rc, text, _ = run_child(cmd, dict(os.environ), os.path.join(tmp, m["key"] + ".check"))
    return rc, text


def expressible(m, args, tmp):
    """Whether gmc can run the model: its program exists and needs no stdlib module that has
    not landed yet (then m["missing"] says why, with gmc's own words)"""
    if not os.path.exists(os.path.join(ROOT, m["gm"])):
        return False
    rc, text = gmc_check(m, args, tmp)
    if rc != 0 and "error: unknown module" in text:
        m["missing"] = "%s: %s" % (m["missing"], next(l for l in text.splitlines() if "unknown module" in l)
                                    .split("error: ")[1])
        return False
    return True


def run_gmc(m, args, tmp, rnd):
    out = os.path.join(tmp, "%s-gmc-%d" % (m["key"], rnd))
    cmd = [args.gmc, m["gm"], "--run", "--set", "steps=%d" % (m["warmup"] + m["steps"]),
           "--set", "batch_size=%d" % m["batch"], "--threads", str(args.threads), "--out", out,
           "--seed", str(rnd), "--stats"]
    if m.get("text"):
        cmd += ["--set", "corpus=" + args.text]
    env = dict(os.environ)
    rc, text, rss = run_child(cmd, env, out + ".log")
    if rc != 0:
        return dict(error="gmc exit %d: %s" % (rc, last_line(text)), log=out + ".log")
    times = []
    with open(os.path.join(out, "metrics.csv")) as f:
        header = f.readline().strip().split(",")
        col = header.index("time_s")
        for line in f:
            row = line.strip().split(",")
            if row[-1] == "":                  # training rows only, not validation rows
                times.append(float(row[col]))
    res = dict(samples=block_samples(times, m["warmup"], m["steps"]), rss=rss)
    res["large"] = large_products(text)
    if res["large"]:
        res["large_ref"] = sgemm_reference(res["large"], args, out + ".sgemm.log")
    for line in text.splitlines():
        if "matrix products:" in line:         # "193.6 GFLOP/s, 64 % of OpenBLAS sgemm ..."
            parts = line.split()
            res["gflops"] = float(parts[2])
            res["pct"] = float(parts[4])
            res["sgemm"] = float(line.split("(")[1].split()[0])
    return res


def large_products(text):
    """gmc --stats's products of 100 MFLOP or more a call: one dict per shape, e.g. from
    "     65536 x    864 x     32          conv fwd     0.267 s        6 calls     81.4 GFLOP/s" """
    out, on = [], False
    for line in text.splitlines():
        if line.startswith("  matrix products of 100 MFLOP or more"):
            on = True
            continue
        if on and not line.startswith("    "):
            break
        if not on:
            continue
        head, rest = line.split(" s ", 1) if " s " in line else (line, "")
        w = head.split()
        try:
            d = dict(m=int(w[0]), k=int(w[2]), n=int(w[4]), ta=int("A^T" in w), tb=int("B^T" in w),
                     batch=1, kind="product", seconds=float(w[-1]))
            for x in w[5:-1]:
                if x.startswith("(x"):
                    d["batch"] = int(x[2:-1])
            if "conv" in w:
                d["kind"] = "conv " + w[w.index("conv") + 1]
            d["calls"] = int(rest.split()[0])
            d["gflops"] = float(rest.split()[2])
        except (ValueError, IndexError):
            continue
        out.append(d)
    return out


def sgemm_reference(shapes, args, log):
    """OpenBLAS sgemm's GFLOP/s on each shape (None for batched products or without the
    helper), by build/sgemm_shapes with the same threads, right now"""
    helper = os.path.join(ROOT, args.sgemm)
    single = [d for d in shapes if d["batch"] == 1]
    if not single or not os.access(helper, os.X_OK):
        return [None] * len(shapes)
    cmd = [helper, str(args.threads), "5"]
    for d in single:
        cmd += [str(d["m"]), str(d["k"]), str(d["n"]), str(d["ta"]), str(d["tb"])]
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads))
    if avx512():
        env.setdefault("OPENBLAS_CORETYPE", "SkylakeX")
    rc, text, _ = run_child(cmd, env, log)
    got = {}
    for line in text.splitlines():
        w = line.split()
        if len(w) == 6:
            got[tuple(int(x) for x in w[:5])] = float(w[5])
    return [got.get((d["m"], d["k"], d["n"], d["ta"], d["tb"])) if d["batch"] == 1 else None for d in shapes]


def run_torch(m, args, tmp, rnd):
    log = os.path.join(tmp, "%s-torch-%d.log" % (m["key"], rnd))
    cmd = [sys.executable, os.path.join(ROOT, "bench", "torch_models.py"), m["torch"],
           "--steps", str(m["steps"]), "--warmup", str(m["warmup"]), "--threads", str(args.threads),
           "--batch", str(m["batch"]), "--seed", str(rnd), "--text", args.text]
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.torch_blas_threads))
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if avx512():
        env.setdefault("OPENBLAS_CORETYPE", "SkylakeX")
    rc, text, rss = run_child(cmd, env, log)
    bench = [l for l in text.splitlines() if l.startswith("BENCH ")]
    if rc != 0 or not bench:
        return dict(error="PyTorch exit %d: %s" % (rc, last_line(text)), log=log)
    d = json.loads(bench[-1][6:])
    return dict(samples=block_samples(d["times"], None, m["steps"]), rss=rss, torch=d["torch"])


def last_line(text):
    lines = [l for l in text.strip().splitlines() if l.strip()]
    return lines[-1].strip() if lines else "(no output)"


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def write_text(path):
    """A synthetic corpus for the character LSTM: 65 symbols, like Tiny Shakespeare's (the
    vocabulary bench/char_lstm.gm declares)."""
    import random
    rng = random.Random(0)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .,;:!?'-\n&$3"
    with open(path, "w") as f:
        f.write("".join(rng.choice(alphabet) for _ in range(200000)))


def fmt(x, spec):
    return "—" if x is None or x != x else format(x, spec)


def rate(n, ms):
    """examples per second, to three significant digits or more"""
    if not ms:
        return "—"
    r = n / ms * 1000
    return format(r, ".0f" if r >= 100 else ".1f" if r >= 10 else ".2f")


def row_cells(m, g, t, notes):
    """Table cells of one model from the merged results of gmc (g) and PyTorch (t); what went
    wrong, or why gmc did not run, is appended to notes."""
    gms = median(g["samples"]) * 1000 if g and g.get("samples") else None
    tms = median(t["samples"]) * 1000 if t and t.get("samples") else None
    ratio = gms / tms if gms and tms else None
    n = m["batch"]
    gflops = "—"
    if g and g.get("gflops"):
        gflops = "%.1f (%.0f %% of %.1f)" % (median(g["gflops"]), median(g["pct"]), median(g["sgemm"]))
    label = "%s, batch %d" % (m["label"], n)
    if g is None:
        notes.append("%s: not yet expressible in gmc: %s" % (label, m["missing"]))
    elif "error" in g:
        notes.append("%s: gmc failed: %s" % (label, g["error"]))
    if "error" in t:
        notes.append("%s: PyTorch failed: %s" % (label, t["error"]))
    return [label, fmt(gms, ".2f"), fmt(tms, ".2f"),
            (fmt(ratio, ".2f") + " (≤ %.1f)" % m["target"]) if ratio else "—",
            rate(n, gms), rate(n, tms),
            fmt(max(g["rss"]) if g and g.get("rss") else None, ".0f"),
            fmt(max(t["rss"]) if t.get("rss") else None, ".0f"), gflops]


HEAD = ["model", "gmc ms/iter", "PyTorch ms/iter", "gmc/PyTorch (target)", "gmc ex/s", "PyTorch ex/s",
        "gmc peak MB", "PyTorch peak MB", "gmc GEMM GFLOP/s (% of sgemm GFLOP/s)"]


def print_table(rows, notes, markdown):
    if markdown:
        print("| " + " | ".join(HEAD) + " |")
        print("|" + "---|" * len(HEAD))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        print_plain(rows)
    if notes:
        print()
    for n in notes:
        print(("- " if markdown else "  ") + n)


def print_plain(rows, head=HEAD):
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    for r in [head] + rows:
        print("  ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]))


LARGE_HEAD = ["model", "product [m x k x n]", "kind", "MFLOP a call", "gmc GFLOP/s", "sgemm GFLOP/s",
              "gmc / sgemm (target ≥ 85 %)"]


def merge_large(acc, r):
    """adds one gmc run's large products (and their sgemm reference) to acc: shape -> lists"""
    for d, ref in zip(r.get("large", []), r.get("large_ref", [])):
        key = (d["m"], d["k"], d["n"], d["ta"], d["tb"], d["batch"], d["kind"])
        e = acc.setdefault(key, dict(gmc=[], ref=[], seconds=[], calls=d["calls"]))
        e["gmc"].append(d["gflops"])
        e["seconds"].append(d["seconds"])
        if ref:
            e["ref"].append(ref)


def large_rows(m, acc):
    """rows of the second table for one model: each shape, largest first, then "all" """
    rows, flops, secs, ref_secs = [], 0.0, 0.0, 0.0
    for key in sorted(acc, key=lambda k: -k[0] * k[1] * k[2]):
        mm, k, n, ta, tb, batch, kind = key
        e = acc[key]
        mflop = 2.0 * mm * k * n * batch / 1e6
        g, ref = median(e["gmc"]), median(e["ref"]) if e["ref"] else None
        shape = "%d x %d x %d%s%s%s" % (mm, k, n, " Aᵀ" if ta else "", " Bᵀ" if tb else "",
                                         " (x%d)" % batch if batch > 1 else "")
        rows.append(["%s, batch %d" % (m["label"], m["batch"]), shape, kind, "%.0f" % mflop, fmt(g, ".1f"),
                     fmt(ref, ".1f"), "%.0f %%" % (100 * g / ref) if ref and g == g else "—"])
        work = mflop * 1e6 * e["calls"]
        flops += work
        secs += median(e["seconds"])
        ref_secs += work / (ref * 1e9) if ref else float("nan")
    if len(rows) > 1 and secs > 0:
        g = flops / secs / 1e9
        ref = flops / ref_secs / 1e9 if ref_secs == ref_secs and ref_secs > 0 else None
        rows.append(["%s, batch %d" % (m["label"], m["batch"]), "all of the above", "", "", fmt(g, ".1f"),
                     fmt(ref, ".1f"), "%.0f %%" % (100 * g / ref) if ref else "—"])
    return rows


def print_large(rows, markdown):
    print()
    print("Large matrix products (100 MFLOP or more a call): gmc against OpenBLAS sgemm on the same shape")
    print()
    if markdown:
        print("| " + " | ".join(LARGE_HEAD) + " |")
        print("|" + "---|" * len(LARGE_HEAD))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    elif rows:
        print_plain(rows, LARGE_HEAD)
    if not rows:
        print("(none)")


def check(models, args, tmp):
    """Cheap: each .gm program compiles, each PyTorch model runs an iteration."""
    bad = 0
    for m in models:
        m = dict(m)
        if expressible(m, args, tmp):
            rc, text = gmc_check(m, args, tmp)
            print("%s - gmc --check %s%s" % ("ok" if rc == 0 else "FAIL", m["gm"],
                                             "" if rc == 0 else ": " + last_line(text)))
            bad += rc != 0
        else:
            print("skip - %s: not yet expressible in gmc: %s" % (m["gm"], m["missing"]))
        quick = dict(m, steps=1, warmup=0)
        t = run_torch(quick, args, tmp, 0)
        print("%s - PyTorch %s batch %d%s" % ("ok" if "error" not in t else "FAIL", m["torch"], m["batch"],
                                             "" if "error" not in t else ": " + t["error"]))
        bad += "error" in t
    return 1 if bad else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="", help="comma-separated keys: " + ",".join(m["key"] for m in MODELS))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--scale", type=float, default=1.0, help="multiply every model's timed iterations")
    p.add_argument("--sides", default="gmc,torch", help="run only gmc or only torch")
    p.add_argument("--torch-blas-threads", type=int, default=1)
    p.add_argument("--gmc", default="./gmc")
    p.add_argument("--sgemm", default="build/sgemm_shapes",
                   help="the per-shape sgemm reference (make build/sgemm_shapes)")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--check", action="store_true", help="only check that every model builds and runs")
    p.add_argument("--keep", default="", help="keep the runs' outputs and logs in this folder")
    args = p.parse_args()

    models = MODELS
    if args.models:
        keys = args.models.split(",")
        unknown = [k for k in keys if k not in [m["key"] for m in MODELS]]
        if unknown:
            sys.exit("bench.py: unknown model %s (known: %s)" % (", ".join(unknown), ",".join(m["key"] for m in MODELS)))
        models = [m for m in MODELS if m["key"] in keys]
    if not os.access(os.path.join(ROOT, args.gmc), os.X_OK):
        sys.exit("bench.py: %s not found: run make gmc first" % args.gmc)

    tmp = args.keep or tempfile.mkdtemp(prefix="gmc-bench-")
    os.makedirs(tmp, exist_ok=True)
    args.text = os.path.join(tmp, "text.txt")
    write_text(args.text)
    if args.check:
        sys.exit(check(models, args, tmp))

    load0 = os.getloadavg()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print("# gmc vs PyTorch, %s, %d cores (%s), %d threads each, %d rounds, load average %.2f at start"
          % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.cpu_count(), cpu, args.threads,
             args.rounds, load0[0]), flush=True)
    rows, notes, failed, large = [], [], False, []
    if not os.access(os.path.join(ROOT, args.sgemm), os.X_OK):
        notes.append("no sgemm reference per shape: %s is not built (make build/sgemm_shapes)" % args.sgemm)
    for m in models:
        m = dict(m, steps=max(1, int(round(m["steps"] * args.scale))))
        have_gmc = expressible(m, args, tmp)
        sides = args.sides.split(",")
        g = dict(samples=[], rss=[], gflops=[], pct=[], sgemm=[]) if have_gmc else None
        t = dict(samples=[], rss=[])
        g_large = {}
        for rnd in range(args.rounds):
            order = ["gmc", "torch"] if rnd % 2 == 0 else ["torch", "gmc"]
            for side in order:
                if side not in sides or side == "gmc" and (not have_gmc or "error" in g) \
                        or side == "torch" and "error" in t:
                    continue
                r = (run_gmc if side == "gmc" else run_torch)(m, args, tmp, rnd)
                acc = g if side == "gmc" else t
                if "error" in r:
                    acc["error"] = r["error"]
                    failed = True
                    print("  %s %s round %d: %s (log %s)" % (m["key"], side, rnd + 1, r["error"], r["log"]),
                          flush=True)
                    continue
                for k in acc:
                    if k in r:
                        acc[k] += r[k] if isinstance(r[k], list) else [r[k]]
                if side == "gmc":
                    merge_large(g_large, r)
                print("  %-10s %-5s round %d: %8.2f ms/iter, peak %5.0f MB%s" % (
                    m["key"], side, rnd + 1, median(r["samples"]) * 1000, r["rss"],
                    ", %.1f GFLOP/s (%.0f %% of sgemm)" % (r["gflops"], r["pct"]) if "gflops" in r else ""),
                    flush=True)
        rows.append(row_cells(m, g, t, notes))
        large += large_rows(m, g_large)
    load1 = os.getloadavg()
    print("# load average %.2f at the end (this benchmark alone keeps it near %d; more means other "
          "processes shared the cores and the times are noisy)" % (load1[0], args.threads))
    print("# command: /usr/bin/python3 bench/bench.py " + " ".join(sys.argv[1:]))
    print()
    print_table(rows, notes, args.markdown)
    if "gmc" in args.sides.split(","):
        print_large(large, args.markdown)
    if not args.keep:
        subprocess.run(["rm", "-rf", tmp])
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    print("# %s, Python %s" % (platform.platform(), platform.python_version()))
    main()
