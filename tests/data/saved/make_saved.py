"""Saves one small model per builder (with the code before issue 18).

KERAS_BACKEND=jax python tests/data/saved/make_saved.py tests/data/saved
"""

import os
import sys

import keras
import numpy as np

from keras_elm import models

out = sys.argv[1]
keras.utils.set_random_seed(0)
small = dict(units=4, mlp_units=8)
builds = {
    "listops": (
        lambda: models.listops(12, **small),
        lambda r: r.integers(0, 16, (2, 12)).astype("int32"),
    ),
    "image": (
        lambda: models.pathfinder(8, **small),
        lambda r: r.integers(0, 256, (2, 8, 8)).astype("uint8"),
    ),
    "shd": (
        lambda: models.shd(10, **small),
        lambda r: (r.random((2, 10, 700)) < 0.05).astype("float32"),
    ),
    "neuronio": (
        lambda: models.neuronio(window=6, units=4, mlp_units=8, num_branches=2),
        None,
    ),
}
cases = {}
for name, (build, make) in builds.items():
    model = build()
    rng = np.random.default_rng(1)
    if make is None:
        shape = (2, 6) + tuple(model.input_shape[2:])
        x = (rng.random(shape) < 0.05).astype("float32")
    else:
        x = make(rng)
    y = model.predict(x, verbose=0)
    path = os.path.join(out, f"{name}.keras")
    model.save(path)
    ys = (
        [y[k] for k in sorted(y)]
        if isinstance(y, dict)
        else (list(y) if isinstance(y, (list, tuple)) else [y])
    )
    np.savez(
        os.path.join(out, f"{name}.npz"),
        x=x,
        **{f"y{i}": v for i, v in enumerate(ys)},
    )
    print(name, model.input_shape, [v.shape for v in ys])
