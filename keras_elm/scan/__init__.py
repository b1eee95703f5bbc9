"""The fast path of the `ELM` layer: dispatch to the backend's memory core.

`fast_inner_loop` has the contract of `keras.layers.RNN.inner_loop`: it
returns `(last_output, outputs, states)`. `unsupported_reason` says, before
anything runs, whether it can reproduce the generic loop exactly, so that
`use_fast_path="auto"` falls back and `use_fast_path=True` fails loudly.

The map of this package:

- `hoist`: everything that does not depend on the memory (routing, synaptic
  weights, branch sum, traces, the first layer's drive), computed for the
  whole sequence with `keras.ops`. It imports no core.
- `<backend>_core` (`jax_core`, `tensorflow_core`, `torch_core`): the memory
  recurrence, each with a hand-written backward pass through time. One
  contract: `memory_scan(drive, memory0, recurrent_kernel, hidden_kernels,
  hidden_biases, output_kernel, output_bias, kappa_m, gain, activation,
  mask=None, **options)`, `linear_trace(decays, inputs, initial)`, and, as
  Keras's `cudnn_ok`, `supports(activation, **options)` with
  `SUPPORTED_ACTIVATIONS`. A core ignores the options that are not its own.
- `torch_steps`, `torch_backward`, `triton_core`: the parts of the torch
  core (TorchScript loops, backward pass, fused CUDA kernels).
"""

import keras
from keras import ops

from keras_elm.scan import hoist

# The backends that have a memory core, `keras_elm.scan.<backend>_core`.
BACKENDS = ("jax", "tensorflow", "torch")


def backend_core():
    """This backend's memory core module.

    Returns:
        The module `keras_elm.scan.<backend>_core` of the current Keras
        backend, with `memory_scan`, `linear_trace`, `supports` and
        `SUPPORTED_ACTIVATIONS`.

    Raises:
        NotImplementedError: the backend has no core.

    Example:

    >>> from keras_elm import scan
    >>> scan.backend_core().supports(activation="relu")
    True
    """
    backend = keras.backend.backend()
    if backend == "jax":
        from keras_elm.scan import jax_core

        return jax_core
    if backend == "tensorflow":
        from keras_elm.scan import tensorflow_core

        return tensorflow_core
    if backend == "torch":
        from keras_elm.scan import torch_core

        return torch_core
    raise NotImplementedError(f"No fast path for the {backend!r} backend.")


def __getattr__(name):
    # `ACTIVATIONS`, once a list here: now each core's own.
    if name == "ACTIVATIONS":
        if keras.backend.backend() not in BACKENDS:
            return ()
        return backend_core().SUPPORTED_ACTIVATIONS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def activation_name(cell):
    """The registered name of the cell's MLP activation, or None."""
    return cell.mlp_activation_name


def unsupported_reason(layer):
    """Why the fast path cannot run this layer now, or None if it can.

    Asks the backend's core (`supports`), as Keras's LSTM asks `cudnn_ok`.
    """
    backend = keras.backend.backend()
    if backend not in BACKENDS:
        return f"there is no fast path for the {backend!r} backend"
    name = activation_name(layer.cell)
    if name is None:
        return "the MLP activation is a custom function"
    core = backend_core()
    options = layer.fast_path_options()
    if core.supports(activation=name, **options):
        return None
    if name not in core.SUPPORTED_ACTIVATIONS:
        return (
            f"the fast path has no MLP activation {name!r} (it has "
            f"{', '.join(core.SUPPORTED_ACTIVATIONS)})"
        )
    return f"the {backend} fast path does not support the options {options}"


def fast_inner_loop(layer, sequences, initial_state, mask, need_states=True):
    """The fast equivalent of `keras.layers.RNN.inner_loop` for `ELM`.

    Args:
        layer: the `ELM` layer (its cell built).
        sequences: `(B, T, features)` inputs, or `(B, T)` integer tokens
            for a layer with `num_tokens`.
        initial_state: `[m_0, trace_0]`, float32.
        mask: optional bool `(B, T)`.
        need_states: whether the final trace is needed (return_state,
            stateful); computing the version-1 synapse trace costs extra.

    Returns:
        `(last_output, outputs, [m_T, trace_T])`; `trace_T` is None when not
        needed.
    """
    reason = layer.fast_path_reason
    if reason:
        raise NotImplementedError(reason)
    core = backend_core()
    memory0, trace0 = initial_state
    if mask is not None:
        mask = ops.cast(mask, "bool")
    if layer.go_backwards:
        sequences = ops.flip(sequences, axis=1)
        mask = None if mask is None else ops.flip(mask, axis=1)
    drive, weights, final_trace = hoist.memory_inputs(
        layer, sequences, trace0, mask, need_final=need_states, core=core
    )
    memory = core.memory_scan(
        drive,
        memory0,
        *weights,
        activation_name(layer.cell),
        mask=mask,
        **layer.fast_path_options(),
    )
    outputs = memory
    if mask is not None and layer.zero_output_for_mask:
        outputs = memory * ops.expand_dims(ops.cast(mask, memory.dtype), -1)
    last_output = outputs[:, -1]
    return last_output, outputs, [memory[:, -1], final_trace]
