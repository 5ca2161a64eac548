#!/usr/bin/python3
"""compare_dumps.py REF_DIR DIR MODE TOL [DIFFERING_DIR]

gmc against gmc: every `--grad-dump` file of DIR (made in execution mode MODE: --no-fuse,
GMC_NO_IMPLICIT_CONV=1, ...) against the file of the same name in REF_DIR (the fused JIT
path, itself cross-checked against PyTorch). Every tensor (parameters, inputs, noise draws,
the loss, every gradient) must agree:
    err = max|t - t_ref| / max(max|t_ref|, 1e-2 * the largest |grad| of the reference dump)
(the floor as in seeds_crosscheck.py: a gradient that is zero in exact arithmetic is not
judged on float32 noise alone). TOL 0 asks for bit-identical files' tensors (a mode that must
not change a single rounding: the planner's poisoning, rematerialised windows).
Prints one "ok - ..." or "FAIL - ..." line per dump, naming the tensors that differ.
With DIFFERING_DIR, a dump that is not bit-identical to the reference is not judged here but
linked into DIFFERING_DIR, for seeds_crosscheck.py to judge against PyTorch (the fused path
and another path may each be within float32 rounding of PyTorch and yet further apart from
each other than TOL where a gradient is a sum of cancelling terms: M12's critic).
Needs only numpy. Exit 1 on a failure."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402


def compare(ref_path, path, tol):
    ref, _ = st.read(ref_path)
    got, _ = st.read(path)
    missing = sorted(set(ref) ^ set(got))
    if missing:
        return False, "tensors in one dump only: %s" % ", ".join(missing[:6])
    grads = [np.abs(v).max(initial=0.0) for n, v in ref.items() if n.startswith("grad/")]
    floor = 1e-2 * max(grads + [1e-30])
    bad, worst, same = [], 0.0, 0
    for name in sorted(ref):
        a, b = np.asarray(got[name], np.float64), np.asarray(ref[name], np.float64)
        if a.shape != b.shape:
            bad.append("%s: shape %s, reference %s" % (name, a.shape, b.shape))
            continue
        if np.array_equal(a, b):
            same += 1
            continue
        scale = max(np.abs(b).max(initial=0.0), floor if name.startswith("grad/") else 1e-30)
        err = np.abs(a - b).max() / scale if np.all(np.isfinite(a)) else float("inf")
        worst = max(worst, err)
        if not err <= tol:
            bad.append("%s %.2e" % (name, err))
    if bad:
        return False, "%d of %d tensors differ (tolerance %.0e): %s" % (
            len(bad), len(ref), tol, ", ".join(bad[:6]))
    if tol == 0:
        return True, "%d tensors bit-identical" % len(ref)
    return True, "%d tensors agree, %d bit-identical (worst relative difference %.1e)" % (
        len(ref), same, worst)


def main(argv):
    if len(argv) not in (5, 6):
        print("usage: compare_dumps.py REF_DIR DIR MODE TOL [DIFFERING_DIR]", file=sys.stderr)
        return 2
    ref_dir, run_dir, mode, tol = argv[1], argv[2], argv[3], float(argv[4])
    differing = argv[5] if len(argv) == 6 else None
    if differing:
        os.makedirs(differing, exist_ok=True)
    failed = 0
    files = sorted(f for f in os.listdir(run_dir) if f.endswith(".safetensors"))
    for f in files:
        label = f[:-len(".safetensors")].replace(".", ", step ", 1).replace(".", ", ", 1) + " mode"
        if not os.path.exists(os.path.join(ref_dir, f)):
            good, msg = False, "no fused dump to compare with"
        else:
            try:
                good, msg = compare(os.path.join(ref_dir, f), os.path.join(run_dir, f),
                                    0 if differing else tol)
                if differing and not good:
                    os.link(os.path.join(run_dir, f), os.path.join(differing, f))
                    continue
            except Exception as e:  # a malformed dump
                good, msg = False, "%s: %s" % (type(e).__name__, e)
        print("%s - %s equals the fused JIT path: %s: %s" % ("ok" if good else "FAIL", mode, label, msg))
        failed += not good
    if not files:
        print("FAIL - %s: no dumps in %s" % (mode, run_dir))
        failed = 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
