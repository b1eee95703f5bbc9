"""Models saved by an earlier keras_elm load and predict the same.

`tests/data/saved/` holds one small model per kind of builder (token,
image, spike and NeuronIO inputs), saved on JAX with the code before the
issue-18 move of `tasks`, `data` and the input layers, with an input and
the outputs it gave then. Each must load through the registered Keras
names and give the same outputs on every backend.
"""

import os

import keras
import numpy as np
import pytest

import keras_elm  # noqa: F401  (registers the keras_elm names)

FOLDER = os.path.join(os.path.dirname(__file__), "data", "saved")
NAMES = ("listops", "image", "shd", "neuronio")


@pytest.mark.parametrize("name", NAMES)
def test_model_saved_before_loads_and_predicts_the_same(name):
    model = keras.saving.load_model(os.path.join(FOLDER, f"{name}.keras"))
    case = np.load(os.path.join(FOLDER, f"{name}.npz"))
    outputs = model.predict(case["x"], verbose=0)
    if isinstance(outputs, dict):
        outputs = [outputs[key] for key in sorted(outputs)]
    elif not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    expected = [case[f"y{i}"] for i in range(len(outputs))]
    assert len([k for k in case.files if k.startswith("y")]) == len(outputs)
    for got, want in zip(outputs, expected):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-5)
