"""Every weight starts out with its own values, reproducibly from `seed`.

A Keras 3 initializer instance returns the same values on every call; one
instance shared by several weights would start same-shaped weights equal,
and others as rescaled copies of each other.
"""

import itertools

import keras
import numpy as np
import pytest

import keras_elm
from tests.helpers import to_numpy

# Eight features and eight units: the MLP's kernels are all (16, 16), and
# the readout's bias has as many entries as the MLP's biases start with.
FEATURES = 8


def _weights(**kwargs):
    layer = keras_elm.ELM(8, mlp_layers=2, output_units=3, **kwargs)
    layer.build((2, 4, FEATURES))
    return {
        v.path.split("/")[-1]: to_numpy(v).reshape(-1)
        for v in layer.trainable_weights
        if v.path.split("/")[-1].startswith(("mlp_", "output_"))
    }


def _assert_no_two_alike(weights):
    """No weight's values are another's, or a rescaled copy of them."""
    for (name_a, a), (name_b, b) in itertools.combinations(weights.items(), 2):
        n = min(a.size, b.size)
        u, v = a[:n], b[:n]
        cosine = abs(u @ v) / (np.linalg.norm(u) * np.linalg.norm(v))
        assert cosine < 0.999, f"{name_a} and {name_b} start proportional"


INITIALIZERS = {
    "default": dict(),
    "seeded": dict(seed=3),
    "string": dict(
        kernel_initializer="glorot_uniform", bias_initializer="random_normal"
    ),
    "unseeded_instance": dict(
        kernel_initializer=keras.initializers.GlorotUniform(),
        bias_initializer=keras.initializers.RandomUniform(-0.3, 0.3),
        output_kernel_initializer=keras.initializers.GlorotUniform(),
        output_bias_initializer=keras.initializers.RandomUniform(-0.3, 0.3),
    ),
    "seeded_instance": dict(
        kernel_initializer=keras.initializers.RandomUniform(seed=7),
        bias_initializer=keras.initializers.RandomUniform(seed=7),
        output_kernel_initializer=keras.initializers.RandomUniform(seed=7),
        output_bias_initializer=keras.initializers.RandomUniform(seed=7),
    ),
}


@pytest.mark.parametrize("name", list(INITIALIZERS))
def test_weights_start_distinct(name):
    _assert_no_two_alike(_weights(**INITIALIZERS[name]))


def test_seed_makes_weights_reproducible_and_distinct_between_seeds():
    first, again, other = _weights(seed=5), _weights(seed=5), _weights(seed=6)
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
        assert not np.allclose(first[key], other[key]), key


def test_unseeded_weights_follow_the_global_seed():
    keras.utils.set_random_seed(1)
    first = _weights()
    keras.utils.set_random_seed(1)
    again = _weights()
    second_draw = _weights()
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
        assert not np.allclose(first[key], second_draw[key]), key


def test_from_config_rebuilds_the_same_seeded_weights():
    layer = keras_elm.ELM(8, mlp_layers=2, output_units=3, seed=9)
    layer.build((2, 4, FEATURES))
    twin = keras_elm.ELM.from_config(layer.get_config())
    twin.build((2, 4, FEATURES))
    for a, b in zip(layer.weights, twin.weights):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b), a.path)


def test_a_constant_initializer_is_still_shared():
    weights = _weights(kernel_initializer=keras.initializers.Constant(0.25))
    np.testing.assert_array_equal(weights["mlp_kernel_0"], 0.25)
    np.testing.assert_array_equal(weights["mlp_kernel_1"], 0.25)
