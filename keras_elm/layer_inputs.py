"""What `keras_elm.ELM` is called with: tokens, masks and initial states.

Each function checks one call input of the layer and returns it in the
form the loops read (int32 tokens, a bool `(batch, timesteps)` mask), with
messages that name the argument instead of a backend op deep in a loop.
The last two give masked steps their outputs.
"""

import numpy as np
from keras import ops


def numpy_tokens(tokens, num_tokens):
    """NumPy integer tokens as int32, those out of range as -1.

    Checked before Keras converts them: JAX (without x64) would cut an
    int64 token such as `2**32 + 3` to the valid token 3. Anything else
    (a backend tensor, floats) is returned as it is.

    Args:
        tokens: the layer's input.
        num_tokens: the vocabulary size.

    Returns:
        An int32 NumPy array, or `tokens` unchanged.

    Example:

    >>> numpy_tokens(np.array([3, 2**32 + 3, -2]), 4).tolist()
    [3, -1, -1]
    """
    if not isinstance(tokens, (np.ndarray, np.generic, list, tuple)):
        return tokens
    array = np.asarray(tokens)
    if not np.issubdtype(array.dtype, np.integer):
        return tokens
    valid = (array >= 0) & (array < num_tokens)
    checked = np.full(array.shape, -1, "int32")
    checked[valid] = array[valid]
    return checked


def check_tokens(tokens, num_tokens):
    """The tokens as an int32 tensor; any outside `[0, num_tokens)` is -1.

    The range is checked in the tokens' own dtype, so that an int64 token
    `2**32 + 3` (or `2**40`) does not wrap to a valid token (or to the
    padding 0) when it is cast.

    Args:
        tokens: integer tokens `(batch, timesteps)`.
        num_tokens: the vocabulary size.

    Returns:
        An int32 tensor of the same shape.

    Raises:
        TypeError: the tokens are not integers.

    Example:

    >>> tokens = check_tokens(np.array([[0, 5, 1]]), 4)
    >>> ops.convert_to_numpy(tokens).tolist()
    [[0, -1, 1]]
    """
    tokens = ops.convert_to_tensor(tokens)
    if "int" not in str(tokens.dtype):
        raise TypeError(
            "`ELM(num_tokens=...)` expects integer tokens. Received "
            f"dtype {tokens.dtype} (input shape {tuple(tokens.shape)})."
        )
    valid = ops.logical_and(tokens >= 0, tokens < num_tokens)
    return ops.where(valid, ops.cast(tokens, "int32"), -1)


def one_hot(tokens, num_tokens):
    """The one-hot float32 inputs that tokens stand for.

    Args:
        tokens: integer tokens of any shape.
        num_tokens: the vocabulary size.

    Returns:
        float32 `tokens.shape + (num_tokens,)`; a token outside
        `[0, num_tokens)` is all zeros, on every backend.

    Example:

    >>> ops.convert_to_numpy(one_hot(np.array([1, -1]), 3)).tolist()
    [[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    """
    valid = ops.logical_and(tokens >= 0, tokens < num_tokens)
    safe = ops.where(valid, tokens, ops.zeros_like(tokens))
    encoded = ops.one_hot(safe, num_tokens, dtype="float32")
    return encoded * ops.expand_dims(ops.cast(valid, "float32"), -1)


def standardize_mask(mask, sequences):
    """The mask as bool `(batch, timesteps)`; `(B, T, 1)` is squeezed.

    Args:
        mask: a mask `(batch, timesteps)` or `(batch, timesteps, 1)`.
        sequences: the inputs it masks, `(batch, timesteps, ...)`.

    Returns:
        A bool tensor `(batch, timesteps)`.

    Raises:
        ValueError: the mask's shape does not fit the sequences'.

    Example:

    >>> mask = standardize_mask(np.ones((2, 5, 1)), np.zeros((2, 5, 3)))
    >>> tuple(mask.shape), str(ops.convert_to_numpy(mask).dtype)
    ((2, 5), 'bool')
    """
    mask = ops.convert_to_tensor(mask)
    shape = tuple(mask.shape)
    if len(shape) == 3 and shape[-1] == 1:
        mask = ops.squeeze(mask, axis=-1)
        shape = shape[:2]
    expected = tuple(sequences.shape[:2])
    fits = len(shape) == 2 and all(
        a is None or b is None or a == b for a, b in zip(shape, expected)
    )
    if not fits:
        raise ValueError(
            "Argument `mask` of `ELM` must have shape (batch, timesteps) "
            f"= {expected} (or (batch, timesteps, 1)) for an input of "
            f"shape {tuple(sequences.shape)}. Received mask shape {shape}."
        )
    return ops.cast(mask, "bool")


def padding_mask(tokens, mask):
    """The mask of `mask_zero`: token 0 is padding, combined with `mask`.

    Args:
        tokens: int32 tokens `(batch, timesteps)`.
        mask: None, or a mask as `standardize_mask` takes it.

    Returns:
        A bool tensor `(batch, timesteps)`, False at padding steps.

    Example:

    >>> mask = padding_mask(np.array([[3, 0, 1]]), None)
    >>> ops.convert_to_numpy(mask).tolist()
    [[True, False, True]]
    """
    padding = ops.not_equal(tokens, 0)
    if mask is None:
        return padding
    return ops.logical_and(standardize_mask(mask, tokens), padding)


def check_initial_state(initial_state, sequences, state_size):
    """Raises unless `[memory, trace]` fit the sequences and state sizes.

    Shape checks that name `initial_state` instead of a loop op.

    Args:
        initial_state: the two state tensors `[memory, trace]`.
        sequences: the layer's inputs, `(batch, timesteps, ...)`.
        state_size: `[units, trace_size]` (a size may be None: unknown).

    Raises:
        ValueError: a state of the wrong rank, batch size or width, naming
            the one that does not fit.

    Example:

    >>> state = [np.zeros((2, 4)), np.zeros((2, 6))]
    >>> check_initial_state(state, np.zeros((2, 5, 6)), [4, 6])
    """
    batch = sequences.shape[0]
    names = ("memory", "trace")
    expected = [(batch, size) for size in state_size]
    received = [tuple(s.shape) for s in initial_state]
    for name, state, (_, size) in zip(names, received, expected):
        wrong = len(state) != 2 or (
            state[1] is not None and size is not None and state[1] != size
        )
        if not wrong and batch is not None and state[0] is not None:
            wrong = state[0] != batch
        if wrong:
            raise ValueError(
                "Argument `initial_state` of `ELM` must be [memory, "
                "trace] with shapes [(batch, units), (batch, "
                f"trace_size)] = {expected} for an input of shape "
                f"{tuple(sequences.shape)}. Received shapes {received}: "
                f"the {name} does not fit."
            )


def check_stateful_batch_size(states, sequences):
    """Raises unless the sequences have the batch size of stateful states.

    Args:
        states: the layer's state variables (None before they exist).
        sequences: the layer's inputs.

    Raises:
        ValueError: both batch sizes are known and differ.

    Example:

    >>> check_stateful_batch_size([np.zeros((2, 4))], np.zeros((2, 5, 3)))
    """
    expected = None if states is None else states[0].shape[0]
    received = sequences.shape[0]
    if expected is not None and received is not None and received != expected:
        raise ValueError(
            "If an RNN is stateful, the batch size of the input "
            "sequences must be the same as the batch size of the "
            f"initial state. Expected batch size: {expected}. Received "
            f"batch size: {received} (input shape {sequences.shape}). "
            "Call `reset_state()` after a rebuild, or keep the batch "
            "size fixed (`drop_remainder`, `batch_size=` on `Input`)."
        )


def with_state_batch_size(states, sequences, mask):
    """The sequences (and mask) with the stateful batch size, static.

    A state of batch 1 updated from sequences of unknown batch (as `fit`
    feeds them on TensorFlow) would change its static shape in
    TensorFlow's compiled loop, which fails.

    Args:
        states: the layer's state variables.
        sequences: the layer's inputs.
        mask: None, or a bool mask `(batch, timesteps)`.

    Returns:
        `(sequences, mask)`, reshaped to the states' batch size where the
        sequences' is unknown.

    Example:

    >>> x, _ = with_state_batch_size([np.zeros((2, 4))], np.zeros((2, 5)), None)
    >>> tuple(x.shape)
    (2, 5)
    """
    batch = states[0].shape[0]
    if sequences.shape[0] is not None or batch is None:
        return sequences, mask
    sequences = ops.reshape(sequences, (batch, -1, *sequences.shape[2:]))
    if mask is not None:
        mask = ops.reshape(mask, (batch, -1))
    return sequences, mask


def carry_initial_memory(
    last_output, outputs, mask, memory0, go_backwards, return_sequences
):
    """Outputs `m_0` at the masked steps before a sample's first step.

    The output of an ELM is its memory, which a masked step leaves
    unchanged, so a leading masked step outputs the initial memory (as the
    fast path and Keras's JAX loop do); Keras's TensorFlow and torch loops
    output zeros there.

    Args:
        last_output: the loop's last output `(batch, units)`.
        outputs: the loop's outputs `(batch, timesteps, units)`.
        mask: bool `(batch, timesteps)`, in input order.
        memory0: the initial memory `(batch, units)`.
        go_backwards: whether the loop ran backwards (its outputs then
            come in processing order).
        return_sequences: whether `outputs` is used.

    Returns:
        `(last_output, outputs)`.

    Example:

    >>> last, _ = carry_initial_memory(np.zeros((1, 2)), None,
    ...     np.array([[False, False]]), np.ones((1, 2)), False, False)
    >>> ops.convert_to_numpy(last).tolist()
    [[1.0, 1.0]]
    """
    if go_backwards:
        mask = ops.flip(mask, axis=1)
    started = ops.cumsum(ops.cast(mask, "int32"), axis=1) > 0
    memory0 = ops.cast(memory0, last_output.dtype)
    last_output = ops.where(started[:, -1:], last_output, memory0)
    if return_sequences:
        outputs = ops.where(
            ops.expand_dims(started, -1), outputs, memory0[:, None, :]
        )
    return last_output, outputs


def zero_masked_readout(output, mask, go_backwards, return_sequences):
    """Zeros at masked steps also after the readout (`b_y` otherwise).

    Args:
        output: the readout's output, `(batch, timesteps, units)` or
            `(batch, units)`.
        mask: bool `(batch, timesteps)`, in input order.
        go_backwards: whether outputs come last input step first.
        return_sequences: whether `output` holds every step.

    Returns:
        `output` with zeros at the masked steps.

    Example:

    >>> out = zero_masked_readout(ops.ones((1, 2, 1)),
    ...     np.array([[True, False]]), False, True)
    >>> ops.convert_to_numpy(out)[..., 0].tolist()
    [[1.0, 0.0]]
    """
    mask = ops.cast(mask, output.dtype)
    if go_backwards:
        mask = ops.flip(mask, axis=1)
    if return_sequences:
        return output * ops.expand_dims(mask, -1)
    return output * mask[:, -1:]
