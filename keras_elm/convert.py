"""Conversion of the authors' PyTorch ELM models to `keras_elm`.

The reference implementation (AaronSpieler/elmneuron) is configured with
keyword arguments such as `num_memory` and `num_branch`, and stores its
parameters in a PyTorch `state_dict`. `from_reference` builds the equivalent
Keras model and loads those parameters, so that outputs and gradients compare
one to one.
"""

import keras
import numpy as np

from keras_elm.checks import check_int_choice
from keras_elm.layer import ELM

# The reference constructor's keywords and their defaults.
REFERENCE_DEFAULTS = {
    "num_input": None,
    "num_output": None,
    "num_memory": 100,
    "lambda_value": 5.0,
    "mlp_num_layers": 1,
    "mlp_hidden_size": None,
    "mlp_activation": "relu",
    "tau_s_value": 5.0,
    "tau_b_value": 5.0,
    "memory_tau_min": 1.0,
    "memory_tau_max": 1000.0,
    "learn_memory_tau": False,
    "w_s_value": 0.5,
    "num_branch": None,
    "num_synapse_per_branch": 1,
    "input_to_synapse_routing": None,
    "delta_t": 1.0,
}

REFERENCE_ROUTINGS = {
    None: None,
    "neuronio_routing": "neuronio",
    "random_routing": "random",
}


def layer_arguments(config, version=1):
    """Translates a reference config into `keras_elm.ELM` arguments.

    Args:
        config: dict of the reference constructor's keyword arguments.
            `num_input` and `num_output` are required; the others default
            as in the reference.
        version: the reference `elm_version`, 1 or 2.

    Returns:
        A tuple `(num_input, kwargs)`: the input channel count and the
        keyword arguments of `keras_elm.ELM`.
    """
    if not isinstance(config, dict):
        raise TypeError(
            "Argument `config` must be a dict of the reference constructor's "
            f"keyword arguments. Received: {type(config).__name__}"
        )
    unknown = sorted(set(config) - set(REFERENCE_DEFAULTS))
    if unknown:
        raise ValueError(
            f"Argument `config` has unknown keys {unknown}. Expected keys "
            f"among {sorted(REFERENCE_DEFAULTS)}."
        )
    version = check_int_choice("version", version, (1, 2))
    c = {**REFERENCE_DEFAULTS, **config}
    for key in ("num_input", "num_output"):
        if c[key] is None:
            raise ValueError(f"Argument `config` must set `{key}`.")
    routing_name = c["input_to_synapse_routing"]
    if routing_name not in REFERENCE_ROUTINGS:
        raise ValueError(
            "Argument `config['input_to_synapse_routing']` must be one of "
            f"{list(REFERENCE_ROUTINGS)}. Received: {routing_name!r}"
        )
    routing = REFERENCE_ROUTINGS[routing_name]
    num_branches = c["num_branch"]
    if num_branches is None:
        num_branches = c["num_input"]
    kwargs = dict(
        units=c["num_memory"],
        output_units=c["num_output"],
        num_branches=num_branches,
        synapses_per_branch=c["num_synapse_per_branch"],
        routing=routing,
        version=version,
        mlp_layers=c["mlp_num_layers"],
        mlp_units=c["mlp_hidden_size"],
        mlp_activation=c["mlp_activation"],
        lambda_value=c["lambda_value"],
        delta_t=c["delta_t"],
        memory_tau_min=c["memory_tau_min"],
        memory_tau_max=c["memory_tau_max"],
        learn_memory_tau=c["learn_memory_tau"],
        trace_tau=c["tau_s_value"] if version == 1 else c["tau_b_value"],
        synapse_weight_init=c["w_s_value"],
    )
    return c["num_input"], kwargs


def reference_variables(layer):
    """Maps reference state-dict names to the layer's variables.

    Each entry also says how a reference array maps onto the variable:
    False (as is), True (transposed: PyTorch stores kernels (out, in)) or
    "per_branch" (version 1's per-synapse τ_s, shared within each branch).
    """
    cell = layer.cell
    trace_name = "tau_s" if cell.version == 1 else "tau_b"
    entries = {
        "_proto_w_s": (cell.synapse_weight_raw, False),
        trace_name: (cell.trace_tau, cell.version == 1 and "per_branch"),
        "_proto_tau_m": (cell.memory_tau_raw, False),
    }
    if cell.uses_routing:
        entries["input_to_synapse_indices"] = (cell.routing_indices, False)
        entries["valid_indices_mask"] = (cell.routing_mask, False)
    for i, (kernel, bias) in enumerate(zip(cell.mlp_kernels, cell.mlp_biases)):
        entries[f"mlp.network.{2 * i}.weight"] = (kernel, True)
        entries[f"mlp.network.{2 * i}.bias"] = (bias, False)
    entries["w_y.weight"] = (layer.output_kernel, True)
    entries["w_y.bias"] = (layer.output_bias, False)
    return entries


def _shared_per_branch(name, value, cell):
    per_branch = value.reshape(
        cell.resolved_num_branches, cell.synapses_per_branch
    )
    unequal = np.flatnonzero(np.any(per_branch != per_branch[:, :1], axis=1))
    if unequal.size:
        raise ValueError(
            f"Argument `state_dict` entry '{name}' must be equal within each "
            "branch (keras_elm shares τ_s among a branch's synapses, as every "
            f"reference model does); branches {unequal[:5].tolist()} differ."
        )
    return per_branch[:, 0]


def _checked_routing_indices(name, value, num_inputs):
    """The routing indices as int32, or a ValueError naming the entry.

    As `ELM(routing=...)` does: out-of-range or fractional indices would
    wire synapses to wrong branches on the fast path, and make NaN or an
    error on the generic loop.
    """
    if value.dtype.kind == "f":
        if not np.all(np.isfinite(value)) or np.any(value != np.round(value)):
            raise ValueError(
                f"Argument `state_dict` entry '{name}' must hold integer "
                f"input indices. Received non-integer values such as "
                f"{value[value != np.round(value)][:3].tolist()}."
            )
    elif value.dtype.kind not in "iu":
        raise TypeError(
            f"Argument `state_dict` entry '{name}' must hold integer input "
            f"indices. Received dtype {value.dtype}."
        )
    bad = np.flatnonzero((value < 0) | (value >= num_inputs))
    if bad.size:
        raise ValueError(
            f"Argument `state_dict` entry '{name}' has indices out of range "
            f"[0, {num_inputs}) for num_input={num_inputs}: synapses "
            f"{bad[:5].tolist()} read {value[bad[:5]].tolist()}."
        )
    return value.astype("int32")


def _checked_routing_mask(name, value):
    """The routing mask as 0/1 float32, or a ValueError naming the entry."""
    if not np.all((value == 0) | (value == 1)):
        raise ValueError(
            f"Argument `state_dict` entry '{name}' must hold 0/1 (or bool) "
            f"values. Received values such as "
            f"{np.unique(value)[:5].tolist()}."
        )
    return value.astype("float32")


def load_reference_weights(layer, state_dict):
    """Assigns a reference `state_dict` to a built `keras_elm.ELM` layer.

    Args:
        layer: a built `ELM` layer with `output_units` set.
        state_dict: mapping of reference parameter names to arrays.

    Raises:
        ValueError: if an entry is missing, unexpected or mis-shaped.
    """
    if not hasattr(state_dict, "keys"):
        raise TypeError(
            "Argument `state_dict` must be a mapping of parameter names to "
            f"arrays. Received: {type(state_dict).__name__}"
        )
    entries = reference_variables(layer)
    arrays = {k: np.asarray(v) for k, v in state_dict.items()}
    for name in ("input_to_synapse_indices", "valid_indices_mask"):
        # The reference keeps empty routing buffers when there is no routing.
        if name not in entries and name in arrays and arrays[name].size == 0:
            del arrays[name]
    missing = [name for name in entries if name not in arrays]
    if missing:
        raise ValueError(
            f"Argument `state_dict` is missing entries {missing}. Expected "
            f"entries: {list(entries)}"
        )
    unexpected = sorted(set(arrays) - set(entries))
    if unexpected:
        raise ValueError(
            f"Argument `state_dict` has unexpected entries {unexpected} for "
            f"this config. Expected entries: {list(entries)}"
        )
    values = []
    for name, (variable, layout) in entries.items():
        value = arrays[name]
        expected = tuple(variable.shape)
        if layout is True:
            expected = expected[::-1]
        elif layout == "per_branch":
            expected = (layer.cell.num_synapses,)
        if tuple(value.shape) != expected:
            raise ValueError(
                f"Argument `state_dict` entry '{name}' has shape "
                f"{tuple(value.shape)}; expected {expected}."
            )
        if layout is True:
            value = value.T
        elif layout == "per_branch":
            value = _shared_per_branch(name, value, layer.cell)
        elif name == "input_to_synapse_indices":
            value = _checked_routing_indices(name, value, layer.cell.input_dim)
        elif name == "valid_indices_mask":
            value = _checked_routing_mask(name, value)
        values.append((variable, value.astype(variable.dtype)))
    for variable, value in values:
        variable.assign(value)


def from_reference(config, state_dict, version=1, **layer_kwargs):
    """Builds a Keras model equal to a reference ELM and loads its weights.

    Args:
        config: dict of the reference constructor's keyword arguments
            (`num_input`, `num_output`, `num_memory`, `num_branch`, ...).
        state_dict: mapping of the reference's PyTorch parameter names to
            arrays, e.g. `{k: v.numpy() for k, v in torch.load(path).items()}`.
        version: the reference `elm_version`: 1 (the paper) or 2.
        **layer_kwargs: extra arguments for the `keras_elm.ELM` layer,
            overriding those derived from `config`.

    Returns:
        A `keras.Model` mapping `(batch, steps, num_input)` to
        `(batch, steps, num_output)`, whose trainable weights are the
        reference's trainable parameters.

    Example:

    ```python
    import numpy as np

    from keras_elm import convert

    config = {"num_input": 3, "num_output": 2, "num_memory": 4}
    # The reference's names and layouts: PyTorch kernels are (out, in).
    rng = np.random.default_rng(0)
    state = {
        "_proto_w_s": np.full(3, 0.5, "float32"),
        "tau_s": np.full(3, 5.0, "float32"),
        "_proto_tau_m": rng.normal(size=4).astype("float32"),
        "mlp.network.0.weight": rng.normal(size=(8, 7)).astype("float32"),
        "mlp.network.0.bias": np.zeros(8, "float32"),
        "mlp.network.2.weight": rng.normal(size=(4, 8)).astype("float32"),
        "mlp.network.2.bias": np.zeros(4, "float32"),
        "w_y.weight": rng.normal(size=(2, 4)).astype("float32"),
        "w_y.bias": np.zeros(2, "float32"),
    }
    model = convert.from_reference(config, state)
    outputs = model.predict(np.zeros((1, 10, 3), "float32"), verbose=0)
    assert outputs.shape == (1, 10, 2)
    ```
    """
    num_input, kwargs = layer_arguments(config, version)
    kwargs.update(return_sequences=True)
    kwargs.update(layer_kwargs)
    layer = ELM(**kwargs)
    inputs = keras.Input((None, num_input))
    model = keras.Model(inputs, layer(inputs), name="elm_reference")
    load_reference_weights(layer, state_dict)
    return model
