#!/bin/sh
# Language constructs end to end: compile-time arrays (the DDPM schedule), sampling loops that
# run at run time (the DDPM update, autoregressive sampling with temperature), --set of
# numbers, strings and arrays, paths with {names}. Outputs are checked against numpy
# re-implementations (check.py).
cd "$(dirname "$0")/../.." || exit 2
. tests/lib.sh
PY=/usr/bin/python3

$GMC tests/lang/schedule.gm --sample schedule --out "$tmp/s" > "$tmp/s.log" 2>&1; rc=$?
expect "schedule.gm --sample schedule exits 0 without a checkpoint (no parameters used)" '[ $rc -eq 0 ]' || cat "$tmp/s.log"
$PY tests/lang/check.py "$tmp/s" schedule

$GMC tests/lang/arrays.gm --sample arrays --out "$tmp/a" > "$tmp/a.log" 2>&1; rc=$?
expect "arrays.gm --sample arrays exits 0 (multi-dimensional compile-time arrays)" '[ $rc -eq 0 ]' || cat "$tmp/a.log"
$PY tests/lang/check.py "$tmp/a" arrays

$GMC tests/lang/statements.gm --sample s --out "$tmp/st" > "$tmp/st.log" 2>&1; rc=$?
expect "statements.gm --sample s exits 0" '[ $rc -eq 0 ]' || cat "$tmp/st.log"
$PY tests/lang/check.py "$tmp/st" statements

# a compile-time loop in a model stacks blocks, each with its own parameters
$GMC tests/lang/blocks.gm --summary > "$tmp/b.log" 2>&1
expect "blocks.gm: for i in range(3) in a model gives three residual blocks (833 parameters)" \
    '[ "$(grep -c "^net.resblock" "$tmp/b.log")" -eq 3 ] && grep -q "^Total params: 833$" "$tmp/b.log"' || cat "$tmp/b.log"
$GMC tests/lang/blocks.gm --summary --set n_blocks=5 > "$tmp/b5.log" 2>&1
expect "blocks.gm --set n_blocks=5: five blocks (1377 parameters)" \
    '[ "$(grep -c "^net.resblock" "$tmp/b5.log")" -eq 5 ] && grep -q "^Total params: 1377$" "$tmp/b5.log"' || cat "$tmp/b5.log"

$GMC tests/lang/loop.gm --sample denoise --out "$tmp/d" --dump-kernels > "$tmp/d.log" 2>&1; rc=$?
expect "loop.gm --sample denoise exits 0" '[ $rc -eq 0 ]'
expect "the T = 1000 loop runs at run time, its body compiled once" 'grep -q "^loop over t: 1000 iterations" "$tmp/d.log"'
nk=$(grep -c "^kernel" "$tmp/d.log")
expect "the loop is not unrolled: few kernels in all ($nk)" '[ "$nk" -gt 0 ] && [ "$nk" -lt 60 ]'
$PY tests/lang/check.py "$tmp/d" denoise

$GMC tests/lang/loop.gm --sample noise --out "$tmp/n" > /dev/null 2>&1; rc=$?
expect "loop.gm --sample noise exits 0" '[ $rc -eq 0 ]'
$PY tests/lang/check.py "$tmp/n" noise

$GMC tests/lang/loop.gm --sample generate --out "$tmp/g" > /dev/null 2>&1; rc=$?
expect "loop.gm --sample generate exits 0" '[ $rc -eq 0 ]'
$PY tests/lang/check.py "$tmp/g" generate

# a loop that calls a trained model: two training steps, then the sampling procedure
$GMC tests/lang/model_loop.gm --run --out "$tmp/m" > "$tmp/m.log" 2>&1 &&
$GMC tests/lang/model_loop.gm --sample denoise --out "$tmp/m" > "$tmp/m2.log" 2>&1; rc=$?
expect "model_loop.gm: train two steps, then --sample denoise from the checkpoint (exit 0)" '[ $rc -eq 0 ]' || cat "$tmp/m.log" "$tmp/m2.log"
expect "model_loop.gm: the every-2-steps hook ran its loop at run time" 'grep -q "^loop over t: 50 iterations" "$tmp/m.log"' 
sp=$(sed -n 's/^  spread \([0-9.e+-]*\)$/\1/p' "$tmp/m.log")
$PY -c "import numpy as np,sys; y=np.load('$tmp/m/hook_2.npy'); sys.exit(0 if abs(y.max() - y.min() - float('${sp:-nan}')) <= 1e-5 * (y.max() - y.min()) else 1)" 2>/dev/null
expect "model_loop.gm: the hook's report after its loop prints amax - amin of what it saved (${sp:-none})" '[ $? -eq 0 ]' 
$PY tests/lang/check.py "$tmp/m" model_loop "$tmp/m/checkpoints/$(cat "$tmp/m/checkpoints/latest" 2>/dev/null)"

# a miniature DDPM: train a few steps, then the 1000-step sampling loop
$GMC tests/lang/ddpm.gm --run --limit-batches 5 --out "$tmp/dd" > "$tmp/dd.log" 2>&1 &&
$GMC tests/lang/ddpm.gm --sample generate --out "$tmp/dd" >> "$tmp/dd.log" 2>&1; rc=$?
expect "ddpm.gm: trains, then samples 1000 steps at run time (exit 0)" '[ $rc -eq 0 ] && grep -q "^loop over t: 1000 iterations" "$tmp/dd.log"' || cat "$tmp/dd.log"
expect "ddpm.gm: grids at t = 1000, 750, 500, 250 (if on the counter) and at the end" \
    '[ -s "$tmp/dd/step_1000.png" ] && [ -s "$tmp/dd/step_250.png" ] && [ ! -f "$tmp/dd/step_999.png" ] && [ -s "$tmp/dd/samples.png" ]'
$PY -c "import numpy as np,sys; x=np.load('$tmp/dd/samples.npy'); sys.exit(0 if x.shape==(16,28,28) and np.isfinite(x).all() else 1)"
expect "ddpm.gm: 16 finite samples of 28x28" '[ $? -eq 0 ]'

# characters sampled from a window slid one step per iteration, with temperature
corpus=$(pwd)/../shared/data/tinyshakespeare.txt
if [ -r "$corpus" ]; then
    sed "s|CORPUS|$corpus|" tests/lang/chars.gm > "$tmp/chars.gm"
    $GMC "$tmp/chars.gm" --run --out "$tmp/c" > "$tmp/c.log" 2>&1 &&
    $GMC "$tmp/chars.gm" --sample write --out "$tmp/c" >> "$tmp/c.log" 2>&1; rc=$?
    expect "chars.gm: trains 20 steps on Shakespeare, then writes 60 characters (exit 0)" '[ $rc -eq 0 ]' || cat "$tmp/c.log"
    $PY tests/lang/check.py "$tmp/c" chars "$tmp/c/checkpoints/$(cat "$tmp/c/checkpoints/latest" 2>/dev/null)" "$corpus"
else
    echo "skip - chars.gm: no $corpus"
fi

# sin and cos of tensors: values against numpy, the gradient from --grad-dump
$PY -c "import numpy as np; np.save('$tmp/pts.npy', np.linspace(-2, 2, 10, dtype=np.float32).reshape(2, 5)); np.save('$tmp/feed.npy', np.array([[0.3, -1.2, 2.5, 0.7, -0.4], [1.1, 0.2, -2.2, 3.0, 0.5]], np.float32))"
cat > "$tmp/trig.gm" <<GM
const xs = linspace(-60, 60, 2001)
data pts = npy("$tmp/pts.npy")
layer trig(x) {
    param w[5] = uniform(3)
    return sin(x * w) + cos(x + w)
}
model M(x[5]) { return trig(x) }
train t {
    m = M()
    optimizer opt = sgd(m)
    x = pts | batch(2)
    step { minimize sum(m(x)) with opt }
}
sample s() {
    save sin(xs * ones(1)) to "sin.npy"
    save cos(xs * ones(1)) to "cos.npy"
}
GM
$GMC "$tmp/trig.gm" --sample s --out "$tmp/t" > "$tmp/t.log" 2>&1 &&
$GMC "$tmp/trig.gm" --grad-dump "$tmp/t/dump.safetensors" --feed "$tmp/feed.npy" >> "$tmp/t.log" 2>&1; rc=$?
expect "sin and cos of tensors: --sample and --grad-dump exit 0" '[ $rc -eq 0 ]' || cat "$tmp/t.log"
$PY tests/lang/check.py "$tmp/t" trig "$tmp/t/dump.safetensors"

# --set of a number, a string and an array; {name} of consts and arguments in paths
$GMC tests/lang/loop.gm --sample denoise --out "$tmp/o" --set T=10 --set tag=short --set period=5 > /dev/null 2>&1; rc=$?
expect "--set T=10 tag=short period=5: exits 0" '[ $rc -eq 0 ]'
expect "--set of a number and a string reach the loop and the paths" \
    '[ -f "$tmp/o/short_x_10.npy" ] && [ -f "$tmp/o/short_x_5.npy" ] && [ -f "$tmp/o/short_final.npy" ] && [ ! -f "$tmp/o/ddpm_final.npy" ]'
$PY -c "import numpy as np,sys; c=np.load('$tmp/o/short_calls.npy'); sys.exit(0 if c[0]==10 else 1)"
expect "--set T=10: the loop ran 10 times" '[ $? -eq 0 ]'
cat > "$tmp/set.gm" <<'GM'
const T = 1000
const t = [0, 1]
const f = cos(((t / T + 0.008) / 1.008) * pi / 2) ** 2
sample s() { save cumprod(f) to "f.npy" }
GM
$GMC "$tmp/set.gm" --sample s --out "$tmp/a" --set "t=[0, 250, 500,750,1000]" > "$tmp/a.log" 2>&1; rc=$?
expect "--set of an array exits 0" '[ $rc -eq 0 ]' || cat "$tmp/a.log"
$PY -c "
import numpy as np, sys
t = np.array([0, 250, 500, 750, 1000])
f = np.cos(((t / 1000 + 0.008) / 1.008) * np.pi / 2) ** 2
sys.exit(0 if np.allclose(np.load('$tmp/a/f.npy'), np.cumprod(f), rtol=1e-5) else 1)"
expect "--set t=[0, 250, 500,750,1000]: the const is that array" '[ $? -eq 0 ]'
$GMC tests/lang/arrays.gm --sample arrays --out "$tmp/a2" --set "M=[[1, 2, 3], [4, 5, 6.5]]" > "$tmp/a2.log" 2>&1; rc=$?
$PY -c "import numpy as np,sys; sys.exit(0 if np.allclose(np.load('$tmp/a2/joined.npy'), np.concatenate([[[1, 2, 3], [4, 5, 6.5]], np.array([[1, 2, 3], [4, 5, 6.5]]) * 2])) else 1)" 2>/dev/null
expect "--set M=[[1, 2, 3], [4, 5, 6.5]]: a 2-D array reaches the program (exit $rc)" '[ $? -eq 0 ] && [ $rc -eq 0 ]'
out=$($GMC tests/lang/arrays.gm --check --set "M=[[1, 2, 3], [4, 5]]" 2>&1); rc=$?
expect "--set M=[[1, 2, 3], [4, 5]] (ragged) is a string, which cannot be indexed like M (exit 1)" '[ $rc -eq 1 ]'
out=$($GMC tests/lang/schedule.gm --check --set "t=[1, 2" 2>&1); rc=$?
expect "--set t=[1, 2 (unclosed) is a string, and a string cannot be divided (exit 1)" '[ $rc -eq 1 ] && printf "%s" "$out" | grep -q "cannot combine a string and a number"'

# a fused chain wider than a kernel's buffer table (K_MAXARGS = 64): 100 draws summed in one
# expression; lower.c materialises part of it, and the result equals the unfused path's
cat > "$tmp/wide.gm" <<'GM'
layer wide(m) {
    acc = zeros(m)
    for i in 100 { acc = acc + normal(m) * (i + 1) }
    return acc
}
sample s() { save wide(1000) to "wide.npy" }
GM
$GMC "$tmp/wide.gm" --sample s --out "$tmp/w1" --dump-kernels > "$tmp/w1.log" 2>&1; rc=$?
most=$(grep "buffers:" "$tmp/w1.log" | awk '{ if (NF - 1 > m) m = NF - 1 } END { print m + 0 }')
expect "a sum of 100 draws compiles fused (exit 0), no kernel touching more than 64 buffers ($most)" '[ $rc -eq 0 ] && [ "$most" -gt 1 ] && [ "$most" -le 64 ]'
$GMC "$tmp/wide.gm" --sample s --out "$tmp/w2" --no-fuse > /dev/null 2>&1
$PY -c "
import numpy as np, sys
a, b = np.load('$tmp/w1/wide.npy'), np.load('$tmp/w2/wide.npy')
sys.exit(0 if a.shape == (1000,) and np.array_equal(a, b) and a.std() > 100 else 1)"
expect "the sum of 100 draws is the same fused and unfused" '[ $? -eq 0 ]'
