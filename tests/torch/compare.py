"""compare.py: the comparison every cross-check ends with: gmc's loss and gradients against a
float64 PyTorch reference, with float32 PyTorch's own error beside them for scale."""
import numpy as np

TOL = 1e-4


def relerr(got, ref, floor=1e-2):
    """max |got - ref| over max(max |ref|, floor); inf if got is not finite"""
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    if not np.all(np.isfinite(got)):
        return float("inf")
    return float(np.max(np.abs(got - ref), initial=0.0) / max(np.max(np.abs(ref), initial=0.0),
                                                                floor))


def report(tensors, names, ref64, ref32, summary, width=36, err=relerr, tol=TOL):
    """Prints a row per tensor (the loss, then grad/NAME for each name) and, if all are within
    tol, the last line summary(number of tensors, worst error). ref64 and ref32 are
    (loss, {name: gradient}) of the reference in float64 and float32. Returns 0 or 1."""
    (loss64, g64), (loss32, g32) = ref64, ref32
    rows = [("loss", float(tensors["loss"].reshape(())), loss64, loss32)]
    rows += [("grad/" + n, tensors["grad/" + n], g64[n], g32[n]) for n in names]
    failures, worst = [], 0.0
    print("%-*s %-10s %11s %11s   (tol %.0e)" % (width, "tensor", "shape", "err_gmc", "err_f32", tol))
    for name, got, ref, r32 in rows:
        e, e32 = err(got, ref), err(r32, ref)
        worst = max(worst, e)
        shape = "x".join(str(s) for s in np.shape(got)) or "scalar"
        print("%-*s %-10s %11.3e %11.3e   %s" % (width, name, shape, e, e32, "ok" if e <= tol else "FAIL"))
        if e > tol:
            failures.append("%s: relative error %.3e > %.0e" % (name, e, tol))
    print("loss: gmc %.8g  torch f64 %.10g  torch f32 %.8g" % (rows[0][1], loss64, loss32))
    if failures:
        print("crosscheck: %d of %d tensors FAILED" % (len(failures), len(rows)))
        for f in failures:
            print("  " + f)
        return 1
    print(summary(len(rows), worst))
    return 0
