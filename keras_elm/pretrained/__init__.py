"""The NeuronIO neurons published by the ELM authors.

Fifteen Branch-ELM models (1278 inputs, 45 branches x 100 synapses, NeuronIO
routing, version 1) trained by Spieler et al. on NeuronIO, shipped as package
data under their MIT licence (`neuronio/LICENSE-MIT.txt`).
"""

import json
import os

import numpy as np
from keras import ops

from keras_elm import convert
from keras_elm.data.neuronio.files import SOMA_OFFSET
from keras_elm.data.neuronio.files import SOMA_SCALE

NEURONIO_DIR = os.path.join(os.path.dirname(__file__), "neuronio")
NEURONIO_MEMORY_SIZES = (1, 2, 3, 5, 7, 10, 15, 20, 25, 30, 40, 50, 75, 100)
# The somatic voltage target is (V + 67.7 mV) * 0.1 during training; the
# data's constants under this module's names.
SOMA_VOLTAGE_SCALE = SOMA_SCALE
SOMA_VOLTAGE_OFFSET_MV = SOMA_OFFSET


def _neuronio_folder(num_memory):
    if isinstance(num_memory, str) and num_memory == "best":
        return os.path.join(NEURONIO_DIR, "best_elm_neuron")
    # By type first: 15.0 == 15 and True == 1 in Python.
    if isinstance(num_memory, bool) or not isinstance(
        num_memory, (int, np.integer)
    ):
        raise TypeError(
            f"Argument `num_memory` must be an integer, one of "
            f"{NEURONIO_MEMORY_SIZES}, or 'best'. Received: "
            f"num_memory={num_memory!r} of type {type(num_memory).__name__}"
        )
    num_memory = int(num_memory)
    if num_memory not in NEURONIO_MEMORY_SIZES:
        raise ValueError(
            f"Argument `num_memory` must be one of {NEURONIO_MEMORY_SIZES} or "
            f"'best'. Received: num_memory={num_memory!r}"
        )
    return os.path.join(NEURONIO_DIR, f"num_memory_{num_memory}")


def neuronio_config(num_memory=15):
    """The reference constructor config of a published NeuronIO neuron.

    Args:
        num_memory: the memory size d_m of the model, one of
            `NEURONIO_MEMORY_SIZES`, or `"best"` for the authors' best model
            (d_m = 100, SiLU, τ_m in [1, 150]).

    Returns:
        A dict of the reference constructor's keyword arguments.
    """
    with open(
        os.path.join(_neuronio_folder(num_memory), "model_config.json")
    ) as f:
        return json.load(f)


def neuronio_results(num_memory=15):
    """The authors' evaluation results (AUC, soma RMSE, ...) of a model."""
    with open(
        os.path.join(_neuronio_folder(num_memory), "eval_results.json")
    ) as f:
        return json.load(f)


def neuronio_neuron(num_memory=15, **layer_kwargs):
    """Loads a published NeuronIO Branch-ELM neuron as a Keras model.

    Args:
        num_memory: the memory size d_m, one of `NEURONIO_MEMORY_SIZES`, or
            `"best"` for the authors' best model (test AUC 0.9946).
        **layer_kwargs: extra arguments for the `keras_elm.ELM` layer.

    Returns:
        A `keras.Model` mapping spike trains `(batch, steps, 1278)` to the
        raw outputs `(batch, steps, 2)`: the spike logit and the scaled
        somatic voltage. `neuronio_evaluation_output` turns them into a spike
        probability and a voltage.

    Example:

    >>> import numpy as np
    >>> import keras_elm
    >>> from keras import ops
    >>> model = keras_elm.pretrained.neuronio_neuron(15)
    >>> y = model(np.zeros((1, 100, 1278), "float32"))
    >>> tuple(y.shape)
    (1, 100, 2)
    >>> spike_probability, voltage = ops.unstack(
    ...     keras_elm.pretrained.neuronio_evaluation_output(y), axis=-1)
    >>> tuple(voltage.shape)
    (1, 100)
    """
    folder = _neuronio_folder(num_memory)
    with np.load(os.path.join(folder, "state_dict.npz")) as data:
        state_dict = {k: data[k] for k in data.files}
    return convert.from_reference(
        neuronio_config(num_memory), state_dict, version=1, **layer_kwargs
    )


def neuronio_evaluation_output(outputs):
    """Turns raw NeuronIO outputs into the authors' evaluation quantities.

    Args:
        outputs: tensor `(..., 2)` of a NeuronIO model's raw outputs.

    Returns:
        A tensor `(..., 2)`: channel 0 is the spike probability
        `sigmoid(y_0)`, channel 1 the somatic voltage offset in mV,
        `y_1 / 0.1` (add -67.7 mV for the absolute voltage).
    """
    spike = ops.sigmoid(outputs[..., 0])
    voltage = outputs[..., 1] / SOMA_VOLTAGE_SCALE
    return ops.stack([spike, voltage], axis=-1)
