#!/usr/bin/python3
"""PyTorch reference for examples/vae_mlp.gm (MLP VAE on Fashion-MNIST, seed model M22).

784 -> Dense 512 relu -> (Dense 2 = mu, Dense 2 = logvar); z = mu + exp(0.5 logvar) * eps;
z -> Dense 512 relu -> Dense 784 sigmoid.
Loss per batch = 784 * BCE(mean over pixels and batch) + mean over batch of KL
(= mean over the batch of the per-example negative ELBO, in nats).
Keras defaults: glorot_uniform kernels, zero biases, Adam(lr 1e-3, betas (0.9, 0.999), eps 1e-7).
Batch 128, reshuffled each epoch, last partial batch kept (60000 = 468*128 + 96).

Prints one line per epoch:
  epoch E train_loss L test_neg_elbo T time_s S
where train_loss is the mean over the epoch's batches, test_neg_elbo the mean over the 10,000
test images of the per-example negative ELBO (one eps draw per image, batches of 500), and time_s
the wall time of the epoch's training pass (shuffle + all optimizer steps; the test evaluation is
not included). Ends with
  mean_epoch_time_s X   (mean over epochs 2..N when N > 1: the first epoch is excluded as warm-up)
  final_test_neg_elbo Y

Usage: /usr/bin/python3 bench/vae_mlp_torch.py [--epochs 10] [--threads 2] [--seed 0] [--data DIR]
Environment: OMP_NUM_THREADS/OPENBLAS_NUM_THREADS default to --threads and OMP_WAIT_POLICY to
PASSIVE (both ~2x faster on 2 cores); set OPENBLAS_CORETYPE=SkylakeX on CPUs that OpenBLAS 0.3.21
does not recognise (it then uses Prescott kernels, ~2x slower). The header line shows the core.
"""
import argparse
import gzip
import os
import struct
import sys
import time

import numpy as np


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--data", default=os.environ.get("FASHION_MNIST_DIR",
                                                    "/usr/share/datasets/fashion-mnist"))
    return p.parse_args()


def load_idx(path):
    """Read an IDX file (optionally gzip-compressed) into a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError("%s: not an unsigned-byte IDX file (magic %02x %02x)"
                         % (path, zero, dtype_code))
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError("%s: %d bytes of data for dims %s" % (path, data.size, dims))
    return data.reshape(dims)


def find(data_dir, stem):
    for name in (stem + ".gz", stem):
        p = os.path.join(data_dir, name)
        if os.path.exists(p):
            return p
    sys.exit("vae_mlp_torch: cannot find %s(.gz) in %s" % (stem, data_dir))


def blas_core():
    """OpenBLAS's kernel choice (it matters: 0.3.21 does not know recent Xeons and falls back to
    Prescott SSE3 kernels unless OPENBLAS_CORETYPE is set)."""
    try:
        import ctypes
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        core = lib.openblas_get_corename().decode()
        forced = os.environ.get("OPENBLAS_CORETYPE")
        return "OpenBLAS core %s%s" % (core, " (OPENBLAS_CORETYPE=%s)" % forced if forced else "")
    except (OSError, AttributeError):
        return "not OpenBLAS or unknown"


def main():
    args = parse_args()
    # Size the BLAS/OpenMP pools before torch loads them (torch.set_num_threads alone does
    # not resize OpenBLAS's own pthread pool). Debian's torch runs its elementwise ops on an
    # OpenMP pool and its GEMMs on OpenBLAS's separate pthread pool; with OpenMP's default
    # spin-waiting the two pools fight over the cores and an epoch takes ~2x longer on 2 cores,
    # so let idle OpenMP workers sleep (any value already in the environment wins).
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    torch.autograd.set_detect_anomaly(False)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    train = load_idx(find(args.data, "train-images-idx3-ubyte"))
    test = load_idx(find(args.data, "t10k-images-idx3-ubyte"))
    x_train = torch.from_numpy(train.reshape(len(train), -1).astype(np.float32) / 255.0)
    x_test = torch.from_numpy(test.reshape(len(test), -1).astype(np.float32) / 255.0)
    n_train = x_train.shape[0]

    def dense(n_in, n_out):
        lin = torch.nn.Linear(n_in, n_out)
        torch.nn.init.xavier_uniform_(lin.weight)  # = glorot_uniform: U(+-sqrt(6/(in+out)))
        torch.nn.init.zeros_(lin.bias)
        return lin

    class VAE(torch.nn.Module):
        def __init__(self, latent=2, hidden=512, pixels=784):
            super().__init__()
            self.enc = dense(pixels, hidden)
            self.mu = dense(hidden, latent)
            self.logvar = dense(hidden, latent)
            self.dec = dense(latent, hidden)
            self.out = dense(hidden, pixels)

        def forward(self, x):
            h = F.relu(self.enc(x))
            mu, logvar = self.mu(h), self.logvar(h)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            recon = torch.sigmoid(self.out(F.relu(self.dec(z))))
            return recon, mu, logvar

    def kl_per_example(mu, logvar):
        return -0.5 * torch.sum(1 + logvar - mu * mu - torch.exp(logvar), dim=1)

    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)

    print("# torch %s, threads %d, seed %d, batch %d, Adam(lr=1e-3, eps=1e-7), BLAS: %s, "
          "OMP_WAIT_POLICY=%s; time_s = training pass only (test evaluation excluded)"
          % (torch.__version__, torch.get_num_threads(), args.seed, args.batch, blas_core(),
             os.environ.get("OMP_WAIT_POLICY")), flush=True)

    def evaluate():
        model.eval()
        total = 0.0
        with torch.no_grad():
            for i in range(0, x_test.shape[0], 500):
                xb = x_test[i:i + 500]
                recon, mu, logvar = model(xb)
                bce = F.binary_cross_entropy(recon, xb, reduction="none").sum(dim=1)
                total += float((bce + kl_per_example(mu, logvar)).sum())
        model.train()
        return total / x_test.shape[0]

    times, test_nelbo = [], float("nan")
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        perm = torch.randperm(n_train)
        loss_sum = torch.zeros((), dtype=torch.float64)
        n_batches = 0
        for i in range(0, n_train, args.batch):
            xb = x_train[perm[i:i + args.batch]]
            recon, mu, logvar = model(xb)
            loss = 784.0 * F.binary_cross_entropy(recon, xb) + kl_per_example(mu, logvar).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach()
            n_batches += 1
        dt = time.perf_counter() - t0
        times.append(dt)
        test_nelbo = evaluate()
        print("epoch %d train_loss %.4f test_neg_elbo %.4f time_s %.3f"
              % (epoch, float(loss_sum) / n_batches, test_nelbo, dt), flush=True)

    timed = times[1:] if len(times) > 1 else times
    note = "epochs 2..%d, first epoch excluded as warm-up" % len(times) if len(times) > 1 \
        else "single epoch, includes warm-up"
    print("mean_epoch_time_s %.3f (%s)" % (sum(timed) / len(timed), note))
    print("final_test_neg_elbo %.4f" % test_nelbo)


if __name__ == "__main__":
    main()
