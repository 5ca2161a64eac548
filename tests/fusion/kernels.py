#!/usr/bin/python3
"""kernels.py FUSED.txt UNFUSED.txt CLASS

Reads two `gmc --dump-kernels` outputs of the same program (fused, and --no-fuse) and checks
that the fusion expected of op class CLASS happened: the fused plan has fewer kernels than the
unfused one, and one of its kernels has the shape CLASS asks for (below), while no kernel of
the unfused plan has it (so the check says something about fusion, not about the program).
Prints one "ok - ..." or "FAIL - ..." line."""
import re
import sys

# a kernel line: kernel kN_op [dims] (sum|max [rdims])? -> buf 0[index] = expression
KERNEL = re.compile(r"^kernel k\d+_\w+ \[([^]]*)\](?: (\w+) \[[^]]*\])? -> buf 0\[[^]]*\] = (.*)$")
OPS = re.compile(r"\b([a-z_]+)\(")


def kernels(path):
    out = []
    for line in open(path):
        m = KERNEL.match(line.rstrip("\n"))
        if m:
            ops = [o for o in OPS.findall(m.group(3)) if o != "load"]
            out.append({"line": line.strip(), "reduce": m.group(2), "expr": m.group(3), "ops": ops})
    return out


def conv_steps(path):
    """the implicit convolutions' steps (conv forward / weight-gradient / input-gradient)"""
    return [{"line": line.strip()} for line in open(path) if line.startswith("conv ")]


def conv_epilogues(steps):
    """what convs.gm should fold into the convolutions: a forward step storing relu, a
    transposed convolution's input-gradient step adding its bias and storing relu, a
    weight-gradient step summing the bias gradient, an input-gradient step applying the
    relu-gradient mask"""
    has = lambda pat: any(re.match(pat, s["line"]) for s in steps)
    return (has(r"conv forward .* then relu,") and has(r"conv input-gradient .* \+ bias b\d+ .* then relu,") and
            has(r"conv weight-gradient .* bias gradient b\d+,") and has(r"conv input-gradient .* times \(b\d+ > 0\),"))


def nested_broadcast(k):
    """an op of the kernel reads a buffer through an index with fewer loop variables than the
    kernel's widest load (a broadcast read in place), inside another op"""
    loads = re.findall(r"load b\d+\[([^]]*)\]", k["expr"])
    widths = [len(set(re.findall(r"i\d", ix))) for ix in loads]
    return len(k["ops"]) >= 2 and widths and min(widths) < max(widths) and min(widths) > 0


# CLASS -> (what it means, predicate on one kernel)
CLASSES = {
    "chain": ("an elementwise chain of 3+ ops (tanh among them) inside a reduction",
              lambda k: k["reduce"] and "tanh" in k["ops"] and len(set(k["ops"])) >= 4),
    "broadcast": ("a broadcast operand read in place inside a chain of 2+ ops",
                  nested_broadcast),
    "reduce": ("a reduction over the product of its operands (sum(mul(...)))",
               lambda k: k["reduce"] and k["expr"].startswith("sum(mul(") and len(k["ops"]) >= 2),
    "norms": ("a variance: the squared deviation from a broadcast mean summed in one kernel",
              lambda k: k["reduce"] and k["expr"].startswith("sum(mul(sub(")),
    "losses": ("binary cross-entropy: both log terms summed in one kernel",
               lambda k: k["reduce"] and k["ops"].count("log") >= 2),
    "convs": ("passes around implicit convolutions in their steps: relu stored by the forward step "
              "and bias + relu by a transposed convolution's, the bias gradient summed by the "
              "weight-gradient step, the relu-gradient mask applied by the input-gradient step",
              lambda k: False),
    "epilogue": ("a product's bias add and activation in one kernel",
                 lambda k: not k["reduce"] and re.match(r"(sigmoid|tanh|max|relu)\(add\(load b\d+\[[^]]*\], load b\d+\[i\d\]\)", k["expr"])),
}


def main(argv):
    fused, unfused, cls = argv[1], argv[2], argv[3]
    what, pred = CLASSES[cls]
    kf, ku = kernels(fused), kernels(unfused)
    hits = [k for k in kf if pred(k)]
    unfused_hits = [k for k in ku if pred(k)]
    if cls == "convs":            # the class is in the convolution steps, not in a kernel
        sf, su = conv_steps(fused), conv_steps(unfused)
        hits = [s for s in sf if "then relu" in s["line"]] if conv_epilogues(sf) else []
        unfused_hits = su if conv_epilogues(su) else []
    problems = []
    if not kf or not ku:
        problems.append("no kernels in the dump (fused %d, unfused %d)" % (len(kf), len(ku)))
    elif len(kf) >= len(ku):
        problems.append("fused plan has %d kernels, unfused %d" % (len(kf), len(ku)))
    if not hits:
        problems.append("no fused kernel has %s" % what)
    if unfused_hits:
        problems.append("the unfused plan has it too: %s" % unfused_hits[0]["line"][:160])
    if problems:
        print("FAIL - fusion of %s (tests/fusion/%s.gm): %s" % (cls, cls, "; ".join(problems)))
        return 1
    print("ok - fusion of %s (tests/fusion/%s.gm): %d kernels fused, %d unfused; %s: %s" % (
        cls, cls, len(kf), len(ku), what, hits[0]["line"][:140]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
