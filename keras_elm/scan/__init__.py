"""The fast path of the `ELM` layer: hoisted linear parts, fast memory core.

`fast_inner_loop` has the contract of `keras.layers.RNN.inner_loop`: it
returns `(last_output, outputs, states)`. `unsupported_reason` says, before
anything runs, whether it can reproduce the generic loop exactly, so that
`use_fast_path="auto"` falls back and `use_fast_path=True` fails loudly.
"""

import keras
from keras import ops

from keras_elm.scan import common


def activation_name(cell):
    """The registered name of the cell's MLP activation, or None."""
    return cell.mlp_activation_name


# The hidden activations every backend's memory core implements.
ACTIVATIONS = (
    "relu",
    "silu",
    "tanh",
    "sigmoid",
    "gelu",
    "elu",
    "softplus",
    "linear",
)


def unsupported_reason(layer):
    """Why the fast path cannot run this layer now, or None if it can."""
    backend = keras.backend.backend()
    if backend not in ("jax", "tensorflow", "torch"):
        return f"there is no fast path for the {backend!r} backend"
    name = activation_name(layer.cell)
    if name is None:
        return "the MLP activation is a custom function"
    if name not in ACTIVATIONS:
        return (
            f"the fast path has no MLP activation {name!r} (it has "
            f"{', '.join(ACTIVATIONS)})"
        )
    return None


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
    cell = layer.cell
    core = common.backend_core().memory_scan
    memory0, trace0 = initial_state
    if mask is not None:
        mask = ops.cast(mask, "bool")
    if layer.go_backwards:
        sequences = ops.flip(sequences, axis=1)
        mask = None if mask is None else ops.flip(mask, axis=1)

    kappa_m, gain = cell.memory_coefficients()
    num_branches = cell.resolved_num_branches
    first_kernel = ops.cast(cell.mlp_kernels[0], "float32")
    float32 = lambda v: ops.cast(v, "float32")  # noqa: E731
    if layer.num_tokens is not None and not layer.uses_token_lookup:
        sequences = layer.one_hot(sequences)
    if layer.uses_token_lookup:
        drive, final_trace = common.token_drive(
            layer, sequences, trace0, mask, need_final=need_states
        )
    else:
        branches, final_trace = common.branch_traces(
            cell, sequences, trace0, mask, need_final=need_states
        )
        drive = ops.matmul(branches, first_kernel[:num_branches]) + float32(
            cell.mlp_biases[0]
        )
    recurrent_kernel = (
        ops.expand_dims(kappa_m, -1) * first_kernel[num_branches:]
    )
    memory = core(
        drive,
        memory0,
        recurrent_kernel,
        [float32(k) for k in cell.mlp_kernels[1:-1]],
        [float32(b) for b in cell.mlp_biases[1:-1]],
        float32(cell.mlp_kernels[-1]),
        float32(cell.mlp_biases[-1]),
        kappa_m,
        gain,
        activation_name(cell),
        mask=mask,
        **layer.fast_path_options(),
    )
    outputs = memory
    if mask is not None and layer.zero_output_for_mask:
        outputs = memory * ops.expand_dims(ops.cast(mask, memory.dtype), -1)
    last_output = outputs[:, -1]
    return last_output, outputs, [memory[:, -1], final_trace]
