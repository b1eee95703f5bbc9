"""Seeded runs repeat: the same seed gives the same first epoch.

What the examples do: `keras.utils.set_random_seed(--seed)` (inside
`tasks.parse_args`), build the task's model, fit with shuffling and
dropout. Two such runs in one process, on one backend, must match.
"""

import argparse

import numpy as np
import pytest

from keras_elm import tasks


def _first_epoch(task_name, seed, x, y):
    task = tasks.get(task_name)
    tasks.parse_args(tasks.parser(task), task, ["--seed", str(seed)])
    model = task.build_model(
        **dict(task.smoke_model),
        **({"dt": 10.0, "steps": x.shape[1]} if task_name == "shd" else {}),
    )
    args = argparse.Namespace(learning_rate=task.learning_rate, epochs=1)
    tasks.compile_model(model, task, args, 4)
    history = model.fit(x, y, epochs=1, batch_size=4, shuffle=True, verbose=0)
    return history.history["loss"][0], model.get_weights()


@pytest.mark.parametrize("task_name", ["pathfinder", "shd"])
def test_the_same_seed_gives_the_same_first_epoch(task_name):
    rng = np.random.default_rng(0)
    if task_name == "pathfinder":  # shuffling only
        x = rng.integers(0, 256, (16, 32, 32)).astype("uint8")
    else:  # shuffling and input dropout
        x = rng.integers(0, 3, (16, 12, 700)).astype("uint8")
    y = rng.integers(0, 2, 16)
    loss, weights = _first_epoch(task_name, 3, x, y)
    again, weights_again = _first_epoch(task_name, 3, x, y)
    other, _ = _first_epoch(task_name, 4, x, y)
    np.testing.assert_allclose(again, loss, rtol=1e-6)
    for a, b in zip(weights_again, weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert other != loss  # the seed does matter
