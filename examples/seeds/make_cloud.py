#!/usr/bin/python3
"""Writes cloud3d.npy, M01's data: 60 points of a noisy, slightly tilted 3-D arc (Hands-On ML
ch. 17's generate_3d_data), centred, float32, seed 42. Run from the repository root:
    /usr/bin/python3 examples/seeds/make_cloud.py"""
import numpy as np

rng = np.random.default_rng(42)
m, noise = 60, 0.1
angles = (rng.random(m) ** 3 + 0.5) * 2 * np.pi
x = np.empty((m, 3))
x[:, 0], x[:, 1] = np.cos(angles), np.sin(angles) * 0.5
x[:, 2] = x[:, 0] * 0.1 + x[:, 1] * 0.3 + noise * rng.standard_normal(m)
np.save("examples/seeds/cloud3d.npy", (x - x.mean(axis=0)).astype(np.float32))
