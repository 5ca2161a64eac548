#!/bin/sh
# docs/tutorial.md stays true: every program fragment it shows is in the example file of its
# section (line for line; the WGAN fragment, which no example holds, is spliced into
# examples/gan_mlp.gm in place of its steps and must pass --check), and every command it
# shows runs (exit 0), in order, with --out under a temporary directory and training cut to
# a few batches (--limit-batches 2).
cd "$(dirname "$0")/.." || exit 2
. tests/lib.sh

python3 - "$tmp" <<'PY'
import re, sys
tmp = sys.argv[1]
text = open("docs/tutorial.md").read()
files = {"1": "examples/ae_mlp.gm", "2": "examples/vae_mlp.gm", "3": "examples/gan_mlp.gm"}
section, fence, block, blocks, commands = None, False, [], [], []
for line in text.split("\n"):
    m = re.match(r"## (\d)\.", line)
    if m:
        section = m.group(1)
    if line.startswith("```"):
        if fence:
            blocks.append((section, block))
        fence, block = not fence, []
        continue
    if fence:
        block.append(line)
    elif line.startswith("    ./gmc "):
        commands.append(line.strip())
for section, block in blocks:
    path = files[section]
    have = {l.strip() for l in open(path)}
    lines = [l.strip() for l in block if l.strip()]
    if "step critic {" in lines:            # the WGAN variant: spliced into the GAN example
        src = open(path).read()
        start, end = src.index("    step discriminator {"), src.index("    every 1 epoch {")
        open(tmp + "/wgan.gm", "w").write(src[:start] + "\n".join(block) + "\n" + src[end:])
        continue
    missing = [l for l in lines if l not in have]
    first = lines[0] if lines else ""
    if missing:
        print("FAIL - tutorial section %s: %d lines of the fragment starting '%s' are not in %s, e.g. '%s'"
              % (section, len(missing), first, path, missing[0]))
    else:
        print("ok - tutorial section %s: the fragment starting '%s' is in %s (%d lines)" % (section, first, path, len(lines)))
with open(tmp + "/commands", "w") as f:
    for c in commands:
        f.write(c + "\n")
PY
PY_OUT=$?
[ $PY_OUT -ne 0 ] && fail "tutorial.sh: reading docs/tutorial.md failed"

if [ -f "$tmp/wgan.gm" ]; then
    out=$($GMC "$tmp/wgan.gm" --check 2>&1); rc=$?
    if [ $rc -eq 0 ]; then ok "tutorial section 3: the WGAN fragment in place of gan_mlp.gm's steps passes --check"
    else fail "tutorial section 3: the WGAN fragment does not check: $out"; fi
else
    fail "tutorial section 3: no WGAN fragment found"
fi

n=0
while read -r cmd; do
    n=$((n + 1))
    # ./gmc FILE ... --out out/X -> $GMC FILE ... --out $tmp/out/X; training cut short
    run=$(echo "$cmd" | sed "s|^\./gmc |$GMC |; s| out/| $tmp/out/|g")
    case "$cmd" in *--run*) run="$run --limit-batches 2" ;; esac
    case "$cmd" in *--run*--set\ epochs=*|*--check*|*--summary*|*--sample*) ;; *--run*) run="$run --set epochs=1" ;; esac
    out=$(cd . && eval "$run" 2>&1); rc=$?
    if [ $rc -eq 0 ]; then ok "tutorial command runs: $cmd"
    else fail "tutorial command '$cmd' exited $rc: $(printf '%s\n' "$out" | tail -3)"; fi
done < "$tmp/commands"
[ "$n" -ge 8 ] && ok "the tutorial shows $n commands, all run above" || fail "the tutorial shows only $n commands"
