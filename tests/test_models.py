"""The task builders: shapes, parameter counts, encoding, saving."""

import os

import keras
import numpy as np
import pytest

from keras_elm import models
from tests.helpers import to_numpy

BUILDERS = {
    # name: (builder, kwargs, image size, classes, trainable parameters)
    "pathfinder": (models.pathfinder, {}, 32, 2, 95_568),
    "pathfinder_x": (models.pathfinder_x, {}, 128, 2, 93_160),
    "image": (models.image, {}, 32, 10, 96_776),
}


def _trainable(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_paper_defaults(name):
    builder, kwargs, size, classes, params = BUILDERS[name]
    model = builder(**kwargs)
    assert model.input_shape == (None, size, size)
    assert model.output_shape == (None, classes)
    assert _trainable(model) == params
    elm = model.get_layer("elm")
    assert elm.units == 150 and elm.cell.hidden_units == 300
    assert not elm.return_sequences


def test_path_x_settings():
    model = models.pathfinder_x()
    elm = model.get_layer("elm")
    assert model.get_layer("grey_levels").levels == 8
    assert elm.cell.memory_tau_max == 2e4
    assert elm.cell.trace_tau_value == 150.0


def test_every_choice_is_an_argument():
    model = models.pathfinder(units=12, mlp_units=7, levels=4,
                              memory_tau_max=50.0, mlp_layers=2)
    elm = model.get_layer("elm")
    assert (elm.units, elm.cell.hidden_units, elm.cell.mlp_layers) == (12, 7, 2)
    assert model.get_layer("grey_levels").levels == 4


def test_grey_levels_are_binned_and_one_hot():
    layer = models.GreyLevelOneHot(16)
    images = np.array([[[0, 15], [16, 255]]], "uint8")
    out = to_numpy(layer(images))
    assert out.shape == (1, 4, 16)
    np.testing.assert_array_equal(out.argmax(-1), [[0, 0, 1, 15]])
    np.testing.assert_array_equal(out.sum(-1), 1.0)


@pytest.mark.parametrize("levels", [1, 257, 2.0, True])
def test_bad_levels(levels):
    with pytest.raises(ValueError, match="levels"):
        models.GreyLevelOneHot(levels)


def test_saving_round_trip(tmp_path):
    model = models.pathfinder(units=6)
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32), dtype="uint8")
    path = os.path.join(tmp_path, "pathfinder.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(to_numpy(loaded(images)), to_numpy(model(images)),
                               rtol=1e-6, atol=1e-6)


def test_the_model_reads_the_generated_dtype():
    model = models.image(units=4)
    images = np.random.default_rng(1).integers(0, 256, (3, 32, 32), dtype="uint8")
    logits = to_numpy(model.predict(images, verbose=0))
    assert logits.shape == (3, 10) and np.all(np.isfinite(logits))
