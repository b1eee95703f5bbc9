"""The hoisted ELM: everything that does not depend on the memory, at once.

Routing, synaptic weights, the branch sum, the (synapse or branch) trace and
the part of the MLP's first layer that reads the branches are linear in the
input and independent of the memory m. They are computed here for the whole
sequence with large `keras.ops` calls; only the memory recurrence is left to
the backend's sequential core.

This module imports no core: the functions that run a linear trace take the
backend's core (`keras_elm.scan.backend_core()`) as their `core` argument,
and the cores import `combine_linear_steps` from here.
"""

import numpy as np
from keras import ops

from keras_elm import math as elm_math


def branch_of_synapse(cell):
    """The branch index of every synapse, as a NumPy int32 array."""
    return np.repeat(
        np.arange(cell.resolved_num_branches, dtype="int32"),
        cell.synapses_per_branch,
    )


def routing_matrix(cell):
    """Dense `(num_branches, num_inputs)` matrix of routing, w_s and branch sum.

    `x_t @ R.T` equals `branch_sum(w_s ⊙ x_t[routing])`. Built with a segment
    sum, whose gradient is a gather over the synapses only; gathering the
    input over the synapses instead would make the backward pass scatter
    over every (batch, step, synapse), which is far slower on CPU. The
    branch-major layout makes the weight gradient `g.T @ x`, a product that
    XLA runs about 1.5x faster on CPU than `x.T @ g`.
    """
    num_branches = cell.resolved_num_branches
    weights = (
        elm_math.synapse_weight(cell.synapse_weight_raw) * cell.routing_mask
    )
    flat = cell.routing_indices + branch_of_synapse(cell) * cell.input_dim
    matrix = ops.segment_sum(
        weights, flat, num_segments=num_branches * cell.input_dim
    )
    return ops.reshape(matrix, (num_branches, cell.input_dim))


def branch_input(cell, sequences):
    """`branch_sum(w_s ⊙ x_t[routing])` for every step: `(B, T, branches)`."""
    x = ops.cast(sequences, "float32")
    if cell.uses_routing:
        # One 2-D matmul: an einsum here becomes a slow `bmm` on torch.
        shape = ops.shape(x)
        flat = ops.reshape(x, (-1, cell.input_dim))
        branches = ops.matmul(flat, ops.transpose(routing_matrix(cell)))
        return ops.reshape(branches, (shape[0], shape[1], -1))
    weighted = x * elm_math.synapse_weight(cell.synapse_weight_raw)
    if cell.synapses_per_branch == 1:
        return weighted
    return cell.branch_sum(weighted)


def branch_traces(
    cell, sequences, initial_trace, mask=None, need_final=True, *, core
):
    """The branch input `b_t` of the MLP for all steps, and the final trace.

    The synapses of a branch share τ_s, so the branch sum of the synapse
    traces is the trace of the branch sum: one `x @ R` and a trace per
    branch, in both versions.

    Args:
        cell: the built `ELMCell`.
        sequences: `(B, T, inputs)` inputs.
        initial_trace: the trace state `(B, trace_size)`.
        mask: optional bool `(B, T)`.
        need_final: whether to return the final trace state.
        core: the backend's core module (its `linear_trace`).

    Returns:
        `(branches, final_trace)`: `(B, T, branches)` and the trace state
        after the last step (`None` unless `need_final`).
    """
    initial_branches = (
        cell.branch_sum(initial_trace) if cell.version == 1 else initial_trace
    )
    branches = linear_trace(
        branch_input(cell, sequences),
        cell.branch_decay(),
        initial_branches,
        mask,
        core=core,
    )
    if not need_final:
        return branches, None
    if cell.version == 1:
        return branches, final_synapse_trace(
            cell, sequences, initial_trace, mask
        )
    return branches, branches[:, -1]


def token_drive(
    layer, tokens, initial_trace, mask=None, need_final=True, *, core
):
    """The MLP's first-layer drive for one-hot tokens, by row lookup.

    `one_hot(x) @ W` is `W[x]`. The branch input of a one-hot token is a
    row of `M = branch_input(I)`, and, with one trace decay κ shared by all
    branches, the trace commutes with the first layer's product:
    `trace(M[x]) @ K = trace((M @ K)[x])`. So the drive is the trace of
    rows of the `(num_tokens, hidden)` table `M @ K`, and no
    `(B, T, num_tokens)` tensor is built.

    Args:
        layer: an `ELM` with `num_tokens` set.
        tokens: int32 `(B, T)`; out-of-range tokens read as zeros.
        initial_trace: the trace state `(B, trace_size)`.
        mask: optional bool `(B, T)`.
        need_final: whether to return the final trace state.
        core: the backend's core module (its `linear_trace`).

    Returns:
        `(drive, final_trace)`: float32 `(B, T, hidden)` (bias included),
        and the trace state after the last step (None unless `need_final`).
    """
    cell = layer.cell
    num_tokens = layer.num_tokens
    num_branches = cell.resolved_num_branches
    first_kernel = ops.cast(cell.mlp_kernels[0], "float32")[:num_branches]
    rows = branch_input(cell, ops.eye(num_tokens, dtype="float32")[None])[0]
    table = ops.matmul(rows, first_kernel)  # (num_tokens, hidden)
    valid = ops.logical_and(tokens >= 0, tokens < num_tokens)
    safe = ops.where(valid, tokens, ops.zeros_like(tokens))
    looked_up = ops.take(table, safe, axis=0)
    looked_up = ops.where(
        ops.expand_dims(valid, -1), looked_up, ops.zeros_like(looked_up)
    )
    initial_branches = (
        cell.branch_sum(initial_trace) if cell.version == 1 else initial_trace
    )
    # One decay for all: the layer builds `trace_tau` from one number.
    decay = ops.broadcast_to(cell.branch_decay()[:1], ops.shape(table)[1:])
    drive = linear_trace(
        looked_up,
        decay,
        ops.matmul(initial_branches, first_kernel),
        mask,
        core=core,
    ) + ops.cast(cell.mlp_biases[0], "float32")
    if not need_final:
        return drive, None
    inputs = layer.one_hot(tokens)
    if cell.version == 1:
        return drive, final_synapse_trace(cell, inputs, initial_trace, mask)
    branches = linear_trace(
        branch_input(cell, inputs),
        cell.branch_decay(),
        initial_trace,
        mask,
        core=core,
    )
    return drive, branches[:, -1]


def memory_inputs(
    layer, sequences, initial_trace, mask=None, need_final=True, *, core
):
    """Everything the memory core reads, for the whole sequence at once.

    Args:
        layer: the `ELM` layer (its cell built).
        sequences: `(B, T, features)` inputs, or `(B, T)` integer tokens for
            a layer with `num_tokens`, in the order the loop reads them.
        initial_trace: the trace state `(B, trace_size)`.
        mask: optional bool `(B, T)`.
        need_final: whether to return the final trace state.
        core: the backend's core module (its `linear_trace`).

    Returns:
        `(drive, weights, final_trace)`: the first layer's pre-activation
        without the memory term, float32 `(B, T, H)`; the arguments of
        `memory_scan` between `memory0` and `activation` (`recurrent_kernel`
        with κ_m folded in, `hidden_kernels`, `hidden_biases`,
        `output_kernel`, `output_bias`, `kappa_m`, `gain`), float32; and the
        trace state after the last step (None unless `need_final`).
    """
    cell = layer.cell
    kappa_m, gain = cell.memory_coefficients()
    num_branches = cell.resolved_num_branches
    first_kernel = ops.cast(cell.mlp_kernels[0], "float32")
    float32 = lambda v: ops.cast(v, "float32")  # noqa: E731
    if layer.num_tokens is not None and not layer.uses_token_lookup:
        sequences = layer.one_hot(sequences)
    if layer.uses_token_lookup:
        drive, final_trace = token_drive(
            layer,
            sequences,
            initial_trace,
            mask,
            need_final=need_final,
            core=core,
        )
    else:
        branches, final_trace = branch_traces(
            cell,
            sequences,
            initial_trace,
            mask,
            need_final=need_final,
            core=core,
        )
        drive = ops.matmul(branches, first_kernel[:num_branches]) + float32(
            cell.mlp_biases[0]
        )
    recurrent_kernel = (
        ops.expand_dims(kappa_m, -1) * first_kernel[num_branches:]
    )
    weights = (
        recurrent_kernel,
        [float32(k) for k in cell.mlp_kernels[1:-1]],
        [float32(b) for b in cell.mlp_biases[1:-1]],
        float32(cell.mlp_kernels[-1]),
        float32(cell.mlp_biases[-1]),
        kappa_m,
        gain,
    )
    return drive, weights, final_trace


def combine_linear_steps(left, right):
    """Composes two steps `b -> κ b + a` of a linear recurrence.

    The operator of an associative scan over `(decays, values)` pairs: the
    step `left` then the step `right` is one step with decay `κ_l κ_r` and
    value `κ_r a_l + a_r`.

    Args:
        left: `(κ_l, a_l)`, the earlier step.
        right: `(κ_r, a_r)`, the later step.

    Returns:
        `(κ, a)` of the composed step.

    Example:

    >>> combine_linear_steps((0.5, 1.0), (0.5, 2.0))
    (0.25, 2.5)
    """
    decay_l, value_l = left
    decay_r, value_r = right
    return decay_l * decay_r, decay_r * value_l + value_r


def linear_trace(inputs, decay, initial, mask=None, *, core):
    """`b_t = κ ⊙ b_{t-1} + a_t` for all t, by the backend's linear trace.

    Args:
        inputs: `a`, float32 `(B, T, C)`.
        decay: `κ`, float32 `(C,)`.
        initial: `b_{-1}`, float32 `(B, C)`.
        mask: optional bool `(B, T)`; a masked step leaves `b` unchanged.
        core: the backend's core module; its `linear_trace(decays, inputs,
            initial)` runs the loop.

    Returns:
        `(B, T, C)` traces.
    """
    decays = ops.broadcast_to(decay, ops.shape(inputs))
    if mask is not None:
        # Selects, not products: `0 * nan` would let padding through.
        keep = ops.expand_dims(ops.cast(mask, "bool"), -1)
        decays = ops.where(keep, decays, ops.ones_like(decays))
        inputs = ops.where(keep, inputs, ops.zeros_like(inputs))
    # Each backend's own loop or scan: Keras's TensorFlow associative_scan
    # fails under XLA, and its torch one makes CPU tensors. The reshape
    # restores the static shape that TensorFlow's compiled loop loses.
    traces = core.linear_trace(decays, inputs, initial)
    return ops.reshape(traces, ops.shape(inputs))


def final_synapse_trace(cell, sequences, initial_trace, mask=None):
    """The version-1 per-synapse trace after the last step, `(B, synapses)`.

    `s_T = κ^T ⊙ s_0 + w_s ⊙ Σ_t κ^(T-t) x_t[routing]`, evaluated per branch
    decay and gathered once per synapse (not once per step).
    """
    x = ops.cast(sequences, "float32")
    log_decay = -cell.delta_t / cell.trace_tau  # (branches,)
    steps = ops.shape(x)[1]
    batch = ops.shape(x)[0]
    if mask is None:
        keep = ops.ones((batch, steps, 1), "float32")
    else:
        keep = ops.expand_dims(ops.cast(mask, "float32"), -1)
    # Weight of step t in s_T: product of the decays of the kept steps after t.
    kept_after = (
        ops.flip(ops.cumsum(ops.flip(keep, axis=1), axis=1), axis=1) - keep
    )
    weights = keep * ops.exp(kept_after * log_decay)  # (B, T, branches)
    accumulated = ops.einsum(
        "btk,bti->bki", weights, x
    )  # (B, branches, inputs)
    total_decay = ops.exp(ops.sum(keep, axis=1) * log_decay)  # (B, branches)
    branches_of_synapses = branch_of_synapse(cell)
    if cell.uses_routing:
        inputs_of_synapse = cell.routing_indices
        connected = cell.routing_mask
    else:
        inputs_of_synapse = np.arange(cell.num_synapses, dtype="int32")
        connected = 1.0
    flat = ops.reshape(accumulated, (batch, -1))
    # `ops.add`, not `+`: NumPy's `+` would turn the routing variable into a
    # NumPy array, which fails inside `jit` and `tf.function`.
    picked = ops.take(
        flat,
        ops.add(inputs_of_synapse, branches_of_synapses * cell.input_dim),
        axis=1,
    )
    weights_s = elm_math.synapse_weight(cell.synapse_weight_raw) * connected
    decay_s = ops.take(total_decay, branches_of_synapses, axis=1)
    return decay_s * initial_trace + weights_s * picked
