#!/bin/sh
# The standard library beyond its PyTorch cross-checks (tests/torch/stdlib_*): parameter counts
# through --summary (SEEDS.md M19's 243,143 among them), spectral normalisation's state across a
# step and in evaluation, flows inverted, an LSTM that learns a predictable text.
cd "$(dirname "$0")/.." || exit 2
. tests/lib.sh
PY=/usr/bin/python3

# M19: the character LSTM of Deep Learning with JavaScript, vocabulary 71
cat > "$tmp/m19.gm" <<'GM'
import std.nn
import std.seq
model CharLSTM(x[40, 71]) {
    return x | lstm(128, return_sequences: true) | lstm(128) | dense(71) | softmax
}
train t { m = CharLSTM() }
GM
$GMC "$tmp/m19.gm" --summary > "$tmp/m19.sum" 2>&1
expect "M19 LSTM 128 -> LSTM 128 -> Dense 71: 243,143 parameters (102,400 + 131,584 + 9,159)" \
    'grep -q "^Total params: 243143$" "$tmp/m19.sum" && grep -q "^m.lstm  .*(None, 40, 128) *102400$" "$tmp/m19.sum" &&
     grep -q "^m.lstm_1 .*(None, 128) *131584$" "$tmp/m19.sum" && grep -q "^m.dense .*(None, 71) *9159$" "$tmp/m19.sum"'

# Keras's initialisers: the recurrent kernel U [16, 64] has orthonormal rows, the forget bias is 1
cat > "$tmp/init.gm" <<'GM'
import std.seq
data d = fashion_mnist(split: "test")
model M(x[4, 3]) { return x | lstm(16) }
train t {
    m = M()
    optimizer opt = sgd(m)
    x = d | batch(2)
    step { minimize sum(m(reshape(slice(reshape(x, -1), start: 0, size: 12), 4, 3))) with opt }
}
GM
$PY -c 'import sys, numpy as np; np.save(sys.argv[1], np.random.RandomState(0).rand(2, 28, 28).astype(np.float32))' "$tmp/xi.npy"
$GMC "$tmp/init.gm" --grad-dump "$tmp/init.safetensors" --feed "$tmp/xi.npy" > /dev/null 2>&1
$PY - "$tmp/init.safetensors" > "$tmp/init.check" 2>&1 <<'PY'
import sys, numpy as np
sys.path.insert(0, "tests/torch")
import st
t, _ = st.read(sys.argv[1])
U = t["m.lstm.U"].astype(np.float64)
print("orth_err", np.abs(U @ U.T - np.eye(16)).max(), "forget", t["m.lstm.b_f"].min(), t["m.lstm.b_f"].max(),
      "input", np.abs(t["m.lstm.b_i"]).max())
PY
expect "lstm: an orthogonal recurrent kernel (U U^T = I) and a forget bias of 1, as Keras" \
    'awk "{exit !(\$2 < 1e-5 && \$4 == 1 && \$5 == 1 && \$7 == 0)}" "$tmp/init.check"' || cat "$tmp/init.check"

# parameter counts and output shapes of the other layers with parameters
cat > "$tmp/counts.gm" <<'GM'
import std.nn
model M(x[8, 8, 2], ids: int[5], w[6]) {
    a = x | layernorm
    b = x | groupnorm(2)
    c = x | sn_conv(8)
    d = w | sn_dense(4)
    e = x | masked_conv(16, k: 7, mask: "A")
    f = ids | embedding(10, 64)
    g = x | minibatch_stddev
    return a, b, c, d, e, f, g
}
train t { m = M() }
GM
$GMC "$tmp/counts.gm" --summary > "$tmp/counts.sum" 2>&1
for row in "m.layernorm .*(None, 8, 8, 2) *4" "m.groupnorm .*(None, 8, 8, 2) *4" \
           "m.sn_conv .*(None, 8, 8, 8) *178" "m.sn_dense .*(None, 4) *38" \
           "m.masked_conv .*(None, 8, 8, 16) *1584" "m.embedding .*(None, 5, 64) *640" \
           "m.minibatch_stddev .*(None, 8, 8, 3) *0"; do
    expect "summary row: $row" 'grep -q "^$row\$" "$tmp/counts.sum"'
done
# rows count state too: sn_conv 144 + 8 trainable, u [8] and v [3, 3, 2, 1]; sn_dense 24 + 4, u [4], v [6, 1]
expect "spectral normalisation's u and v are non-trainable: 36 of 2,448" \
    'grep -q "^Total params: 2448$" "$tmp/counts.sum" && grep -q "^Non-trainable params: 36$" "$tmp/counts.sum"'

# attention: Keras's MultiHeadAttention counts, 4 * (64 * 64 + 64) for 4 heads of 16 on 64 channels
cat > "$tmp/att.gm" <<'GM'
import std.seq
model M(x[8, 8, 64], s[5, 8]) { return self_attention(x, 4, 16), attention(s, x, 2, 3, value_dim: 5) }
train t { m = M() }
GM
$GMC "$tmp/att.gm" --summary > "$tmp/att.sum" 2>&1
expect "attention parameters as Keras's MultiHeadAttention: 16,640 and 1,182 (8·6+6 + 64·6+6 + 64·10+10 + 10·8+8)" \
    'grep -q "^m.self_attention .*(None, 8, 8, 64) *16640$" "$tmp/att.sum" && grep -q "^m.attention .*(None, 5, 8) *1182$" "$tmp/att.sum"'

# a program's names shadow the library's for the program only: its own lstm, check and size do
# not change what std.seq's layers call
cat > "$tmp/shadow.gm" <<'GM'
import std.seq
const size = 64
layer check(x) { return x }
layer lstm(x) { return 2 * x }
model M(x[5, 3]) { return x | lstm | self_attention(1, 2) }
train t { m = M() }
GM
$GMC "$tmp/shadow.gm" --summary > "$tmp/shadow.sum" 2>&1
expect "a program's own lstm, check and size shadow the library's names without breaking std.seq" \
    'grep -q "^m.lstm .*(None, 5, 3) *0$" "$tmp/shadow.sum" && grep -q "^m.self_attention .*(None, 5, 3) *33$" "$tmp/shadow.sum"'

# spectral normalisation across a step: with lr 0 the kernel stays, u and v take one power
# iteration (torch.nn.utils.spectral_norm's), and evaluation divides by u^T W^T v of the stored pair
cat > "$tmp/sn.gm" <<'GM'
import std.nn
data d = fashion_mnist(split: "test")
model M(x[6]) { return x | sn_dense(4) }
train t {
    m = M()
    optimizer opt = sgd(m, lr: 0)
    x = d | batch(2)
    steps 1
    step { minimize sum(m(slice(reshape(x, -1), start: 0, size: 6))) with opt }
}
sample ev() { save m(ones(2, 6)) to "y.npy" }
GM
$PY -c 'import sys, numpy as np; np.save(sys.argv[1], np.random.RandomState(0).rand(2, 28, 28).astype(np.float32))' "$tmp/x.npy"
$GMC "$tmp/sn.gm" --grad-dump "$tmp/sn0.safetensors" --feed "$tmp/x.npy" --seed 3 > "$tmp/sn.log" 2>&1 &&
$GMC "$tmp/sn.gm" --run --seed 3 --out "$tmp/sn" >> "$tmp/sn.log" 2>&1 &&
$GMC "$tmp/sn.gm" --sample ev --out "$tmp/sn" >> "$tmp/sn.log" 2>&1
$PY - "$tmp" > "$tmp/sn.check" 2>&1 <<'PY'
import sys, numpy as np
sys.path.insert(0, "tests/torch")
import st
d = sys.argv[1]
t0, _ = st.read(d + "/sn0.safetensors")
t1, _ = st.read(d + "/sn/checkpoints/step_00000001.safetensors")
W, u0 = t0["m.sn_dense.W"].astype(np.float64), t0["m.sn_dense.spectral_norm.u"].astype(np.float64)
n = lambda a: a / max(np.linalg.norm(a), 1e-12)
v = n(W @ u0); u = n(W.T @ v)
print("u_err", np.abs(t1["m.sn_dense.spectral_norm.u"] - u).max())
print("v_err", np.abs(t1["m.sn_dense.spectral_norm.v"].reshape(-1) - v).max())
print("w_same", np.abs(t1["m.sn_dense.W"] - W).max())
y = np.load(d + "/sn/y.npy")
ref = np.ones((2, 6)) @ (W / (u @ (W.T @ v))) + t1["m.sn_dense.b"]
print("eval_err", np.abs(y - ref).max() / np.abs(ref).max())
PY
expect "spectral norm: one power iteration per step in u and v, the stored pair in evaluation" \
    'awk "/_err|w_same/ {if (\$2 > 1e-5) bad = 1; n++} END {exit bad || n != 4}" "$tmp/sn.check"' ||
    { cat "$tmp/sn.log" "$tmp/sn.check"; }

# flows: the inverse of a coupling layer, through the same instances, gives x back and the
# negated log-determinant
cat > "$tmp/flow.gm" <<'GM'
import std.nn
import std.flow
data d = fashion_mnist(split: "test")
model Net(h[3]) { return h | dense(8) | tanh | dense(3) }
layer flow(x, S1, T1, S2, T2, G) {
    y, l1 = affine_coupling(x, S1, T1)
    z, l2 = affine_coupling(y, S2, T2, flip: true)
    w, l3 = additive_coupling(z, G)
    return w, l1 + l2 + l3
}
layer unflow(w, S1, T1, S2, T2, G) {
    z, l3 = additive_coupling(w, G, inverse: true)
    y, l2 = affine_coupling(z, S2, T2, flip: true, inverse: true)
    x, l1 = affine_coupling(y, S1, T1, inverse: true)
    return x, l1 + l2 + l3
}
train t {
    S1 = Net()
    T1 = Net()
    S2 = Net()
    T2 = Net()
    G = Net()
    optimizer opt = adam(S1, T1, S2, T2, G)
    x = d | batch(2)
    steps 3
    step {
        w, ld = flow(slice(reshape(x, -1), start: 300, size: 6) / 255, S1, T1, S2, T2, G)
        minimize mean(w * w) - mean(ld) with opt
    }
}
sample roundtrip() {
    x = normal(16, 6)
    w, ld = flow(x, S1, T1, S2, T2, G)
    x2, ld2 = unflow(w, S1, T1, S2, T2, G)
    save x to "x.npy"
    save x2 to "x2.npy"
    save ld to "ld.npy"
    save ld2 to "ld2.npy"
}
GM
$GMC "$tmp/flow.gm" --run --out "$tmp/flow" > "$tmp/flow.log" 2>&1 &&
$GMC "$tmp/flow.gm" --sample roundtrip --out "$tmp/flow" >> "$tmp/flow.log" 2>&1
$PY - "$tmp/flow" > "$tmp/flow.check" 2>&1 <<'PY'
import sys, numpy as np
d = sys.argv[1]
x, x2, ld, ld2 = (np.load("%s/%s.npy" % (d, n)) for n in ("x", "x2", "ld", "ld2"))
print("x_err", np.abs(x - x2).max(), "ld_err", np.abs(ld + ld2).max(), "ld_nonzero", np.abs(ld).max())
PY
expect "affine and additive coupling invert exactly through the same instances (x and -logdet back)" \
    'awk "{exit !(\$2 < 1e-5 && \$4 < 1e-5 && \$6 > 1e-3)}" "$tmp/flow.check"' || cat "$tmp/flow.log" "$tmp/flow.check"

# an LSTM stack learns a predictable text: cross-entropy from ln(10) to well below 1
$PY -c 'import sys; sys.stdout.write("the cat sat on the mat " * 200)' > "$tmp/corpus.txt"
cat > "$tmp/lstm.gm" <<GM
import std.nn
import std.seq
import std.losses
data corpus = text("$tmp/corpus.txt", window: 8)
model Next(x[8, 10]) { return x | lstm(16, return_sequences: true) | lstm(16) | dense(10) | softmax }
train t {
    m = Next()
    optimizer opt = rmsprop(m, lr: 1e-2)
    x, y = corpus | shuffle | batch(32)
    step { minimize cce(m(x), y) with opt }
}
GM
$GMC "$tmp/lstm.gm" --run --limit-batches 80 --out "$tmp/lstm" > "$tmp/lstm.log" 2>&1
expect "two stacked LSTMs learn 'the cat sat on the mat': loss from about 2.3 to below 1" \
    'awk -F, "NR == 2 {first = \$4} NR > 70 {s += \$4; n++} END {exit !(first > 2 && s / n < 1)}" "$tmp/lstm/metrics.csv"' ||
    cat "$tmp/lstm.log"
