"""τ_m's initial range and spacing, separate from its bounds (the paper's)."""

import keras
import numpy as np
import pytest

import keras_elm
from keras_elm import math as elm_math
from tests.helpers import to_numpy


def _initial_tau(layer):
    cell = layer.cell
    return to_numpy(
        elm_math.memory_tau(
            cell.memory_tau_raw, cell.memory_tau_min, cell.memory_tau_max
        )
    )


def _built(**kwargs):
    layer = keras_elm.ELM(**kwargs)
    layer.build((None, 3, 2))
    return layer


def test_default_is_log_spaced_over_the_bounds():
    layer = _built(units=6, memory_tau_min=2.0, memory_tau_max=300.0)
    np.testing.assert_allclose(
        _initial_tau(layer), np.geomspace(2, 300, 6), rtol=1e-4
    )


@pytest.mark.parametrize(
    "spacing, expected",
    [
        ("linear", np.linspace(1, 150, 5)),
        ("log", np.geomspace(1, 150, 5)),
    ],
)
def test_init_range_inside_the_bounds(spacing, expected):
    # The paper's SHD setting: bounded to 0-1000, starting in 1-150.
    layer = _built(
        units=5,
        memory_tau_min=0.0,
        memory_tau_max=1000.0,
        memory_tau_init_range=(1.0, 150.0),
        memory_tau_spacing=spacing,
        learn_memory_tau=True,
    )
    np.testing.assert_allclose(_initial_tau(layer), expected, rtol=1e-4)
    # Trained τ_m stays within the bounds, not the initial range.
    cell = layer.cell
    cell.memory_tau_raw.assign(np.array([-50, -5, 0, 5, 50], "float32"))
    tau = _initial_tau(layer)
    assert tau.min() >= 0.0 and tau.max() <= 1000.0
    assert tau.max() > 150.0


def test_linear_spacing_over_the_bounds_may_start_at_zero():
    layer = _built(
        units=4,
        memory_tau_min=0.0,
        memory_tau_max=30.0,
        memory_tau_spacing="linear",
    )
    tau = _initial_tau(layer)
    np.testing.assert_allclose(tau[1:], [10.0, 20.0, 30.0], rtol=1e-4)
    assert 0.0 < tau[0] < 1e-5  # pulled inside the bound
    out = to_numpy(layer(np.ones((2, 3, 2), "float32")))
    assert np.isfinite(out).all()


def test_serialised_and_the_same_after_a_round_trip(tmp_path):
    inputs = keras.Input((4, 2))
    layer = keras_elm.ELM(
        3,
        memory_tau_min=0.0,
        memory_tau_max=100.0,
        memory_tau_init_range=(1.0, 20.0),
        memory_tau_spacing="linear",
    )
    model = keras.Model(inputs, layer(inputs))
    config = layer.get_config()
    assert config["memory_tau_init_range"] == [1.0, 20.0]
    assert config["memory_tau_spacing"] == "linear"
    clone = keras_elm.ELM.from_config(config)
    clone.build((None, 4, 2))
    np.testing.assert_allclose(_initial_tau(clone), _initial_tau(layer))
    path = str(tmp_path / "tau.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        _initial_tau(loaded.layers[-1]), np.linspace(1, 20, 3), rtol=1e-4
    )


# Something that is not a pair of numbers is a bad type: TypeError
# (ValueError before issue 18).
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(memory_tau_init_range="ab"), "memory_tau_init_range"),
        # A string of two digits once unpacked as the pair (1.0, 5.0).
        (dict(memory_tau_init_range="15"), "memory_tau_init_range"),
        (dict(memory_tau_init_range=b"15"), "memory_tau_init_range"),
        (dict(memory_tau_init_range=(1.0, "5")), "memory_tau_init_range"),
        (dict(memory_tau_init_range=(True, 5.0)), "memory_tau_init_range"),
        (dict(memory_tau_init_range=(None, 5.0)), "memory_tau_init_range"),
        (dict(memory_tau_init_range={1.0, 5.0}), "memory_tau_init_range"),
        (
            dict(memory_tau_init_range={1.0: 5.0, 2.0: 6.0}),
            "memory_tau_init_range",
        ),
        (dict(memory_tau_init_range=5.0), "memory_tau_init_range"),
        (dict(num_branches=1, routing=3), "routing"),
        (dict(memory_tau_min="0"), "memory_tau_min"),
    ],
)
def test_tau_settings_of_the_wrong_type(kwargs, match):
    with pytest.raises(TypeError, match=match):
        keras_elm.ELM(4, **kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(memory_tau_spacing="geometric"), "memory_tau_spacing"),
        (dict(memory_tau_spacing=None), "memory_tau_spacing"),
        (dict(memory_tau_init_range=(5.0,)), "memory_tau_init_range"),
        (dict(memory_tau_init_range=()), "memory_tau_init_range"),
        (dict(memory_tau_init_range=((1.0, 5.0),)), "memory_tau_init_range"),
        (
            dict(memory_tau_init_range=np.array([[1.0, 5.0]])),
            "memory_tau_init_range",
        ),
        (dict(memory_tau_init_range=(1.0, 5.0, 9.0)), "memory_tau_init_range"),
        (
            dict(memory_tau_init_range=(float("nan"), 5.0)),
            "memory_tau_init_range",
        ),
        (
            dict(memory_tau_init_range=(1.0, float("inf"))),
            "memory_tau_init_range",
        ),
        # The other sequence argument: routing indices must be 1-D.
        (
            dict(
                num_branches=2, synapses_per_branch=2, routing=[[0, 1], [2, 3]]
            ),
            "routing",
        ),
        (dict(memory_tau_init_range=(0.5, 10.0)), "memory_tau_init_range"),
        (dict(memory_tau_init_range=(10.0, 5.0)), "memory_tau_init_range"),
        (dict(memory_tau_init_range=(1.0, 2000.0)), "memory_tau_init_range"),
        (dict(memory_tau_min=0.0), "memory_tau_init_range|linear"),
        (dict(memory_tau_min=0.0, memory_tau_init_range=(0.0, 5.0)), "low > 0"),
        (dict(memory_tau_min=-1.0), "memory_tau_min"),
    ],
)
def test_bad_tau_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        keras_elm.ELM(4, **kwargs)


@pytest.mark.parametrize(
    "init_range",
    [
        (1, 5),
        [1.0, 20.0],
        np.array([2.0, 30.0]),
        (np.float32(1.5), np.int64(9)),
    ],
)
def test_tau_init_range_accepts_number_pairs(init_range):
    cell = keras_elm.ELMCell(4, memory_tau_init_range=init_range)
    low, high = cell.memory_tau_init_range
    assert (low, high) == (float(init_range[0]), float(init_range[1]))
