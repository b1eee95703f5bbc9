"""Saving and loading `ELM` models: .keras files and weights across backends."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_elm
from tests.layer_test_case import to_numpy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ("jax", "tensorflow", "torch")
BATCH, STEPS, FEATURES = 3, 6, 6


@pytest.fixture(autouse=True)
def _seed():
    # Unseeded initializers draw from keras' global seed: same weights on
    # every run.
    keras.utils.set_random_seed(0)


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(BATCH, STEPS, FEATURES)).astype("float32")


def _perturb(model):
    """Moves the float weights away from their initial values."""
    rng = np.random.default_rng(1)
    for variable in model.weights:
        if variable.dtype == "float32" and "routing" not in variable.path:
            value = to_numpy(variable)
            variable.assign(value + 0.1 * rng.normal(size=value.shape))
    return model


def _model():
    """Two stacked ELMs: random routing, version 2, learned τ_m, readout."""
    inputs = keras.Input((None, FEATURES))
    x = keras.layers.Masking(0.0)(inputs)
    x = keras_elm.ELM(
        4,
        num_branches=4,
        synapses_per_branch=2,
        routing="random",
        version=2,
        learn_memory_tau=True,
        mlp_layers=2,
        mlp_activation="silu",
        return_sequences=True,
        name="elm_1",
    )(x)
    outputs = keras_elm.ELM(
        3, output_units=2, return_sequences=True, name="elm_2"
    )(x)
    return _perturb(keras.Model(inputs, outputs))


def _set_routing(layer, indices):
    layer.cell.routing_indices.assign(np.asarray(indices, "int32"))


def test_keras_file_round_trip(tmp_path):
    model = _model()
    # Indices that a fresh build (routing="random", no seed) would not draw.
    indices = [5, 4, 3, 2, 1, 0, 5, 4]
    _set_routing(model.get_layer("elm_1"), indices)
    x = _data()
    x[1, 4:] = 0.0  # Masked by the Masking layer.
    expected = to_numpy(model(x))

    path = str(tmp_path / "elm.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)

    for name in ("elm_1", "elm_2"):
        layer = loaded.get_layer(name)
        assert isinstance(layer, keras_elm.ELM)
        assert layer.get_config() == model.get_layer(name).get_config()
    np.testing.assert_array_equal(
        to_numpy(loaded.get_layer("elm_1").cell.routing_indices), indices
    )
    assert len(loaded.weights) == len(model.weights)
    for a, b in zip(loaded.weights, model.weights):
        assert a.path == b.path
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    np.testing.assert_allclose(
        to_numpy(loaded(x)), expected, rtol=1e-6, atol=1e-7
    )


def test_random_routing_is_saved_not_redrawn(tmp_path):
    # Without a routing seed every build draws new indices, so only the
    # saved non-trainable weight can restore them.
    inputs = keras.Input((STEPS, 50))
    layer = keras_elm.ELM(
        2, num_branches=10, synapses_per_branch=5, routing="random"
    )
    model = keras.Model(inputs, layer(inputs))
    indices = to_numpy(layer.cell.routing_indices)
    assert not layer.cell.routing_indices.trainable
    assert any(
        v is layer.cell.routing_indices for v in layer.non_trainable_weights
    )
    path = str(tmp_path / "routing.keras")
    model.save(path)

    fresh = keras.Model.from_config(model.get_config())
    fresh_indices = to_numpy(fresh.layers[-1].cell.routing_indices)
    assert np.any(fresh_indices != indices)  # 50 channels, 50 synapses.

    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(
        to_numpy(loaded.layers[-1].cell.routing_indices), indices
    )


def test_stateful_layer_saves_and_loads(tmp_path):
    inputs = keras.Input(batch_shape=(BATCH, STEPS, FEATURES))
    model = keras.Model(
        inputs, keras_elm.ELM(4, stateful=True, return_sequences=True)(inputs)
    )
    x = _data()
    expected = to_numpy(model(x))
    path = str(tmp_path / "stateful.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.layers[-1].stateful
    np.testing.assert_allclose(
        to_numpy(loaded(x)), expected, rtol=1e-6, atol=1e-7
    )


CROSS_BACKEND_CODE = """
import sys
import keras
import numpy as np
import keras_elm

config_path, weights_path, data_path = sys.argv[1:4]
with open(config_path) as f:
    model = keras.models.model_from_json(f.read())
model.load_weights(weights_path)
with np.load(data_path) as data:
    x, y, indices = data["x"], data["y"], data["indices"]
got = keras.ops.convert_to_numpy(model(x))
routing = keras.ops.convert_to_numpy(
    model.get_layer("elm_1").cell.routing_indices
)
assert np.array_equal(routing, indices), (routing, indices)
error = float(np.max(np.abs(got - y)))
assert error <= 1e-5, error
print("backend", keras.backend.backend(), "max error", error)
"""


def test_weights_load_under_another_backend(tmp_path):
    backend = keras.backend.backend()
    other = BACKENDS[(BACKENDS.index(backend) + 1) % len(BACKENDS)]
    # One layer: the other backend compiles it from scratch (seconds on JAX).
    inputs = keras.Input((None, FEATURES))
    layer = keras_elm.ELM(
        4,
        output_units=2,
        num_branches=4,
        synapses_per_branch=2,
        routing="random",
        version=2,
        learn_memory_tau=True,
        return_sequences=True,
        name="elm_1",
    )
    model = _perturb(keras.Model(inputs, layer(inputs)))
    indices = np.array([0, 5, 1, 4, 2, 3, 3, 0], "int32")
    _set_routing(layer, indices)
    x = _data(2)
    y = to_numpy(model(x))

    config_path = tmp_path / "model.json"
    config_path.write_text(model.to_json())
    weights_path = str(tmp_path / "elm.weights.h5")
    model.save_weights(weights_path)
    data_path = str(tmp_path / "data.npz")
    np.savez(data_path, x=x, y=y, indices=indices)

    env = {**os.environ, "KERAS_BACKEND": other, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            CROSS_BACKEND_CODE,
            str(config_path),
            weights_path,
            data_path,
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"backend {other} max error" in result.stdout, result.stdout
