"""Input-to-synapse routing of the ELM neuron.

A routing is a pair of NumPy arrays of length `num_synapses`: `indices`
(which input channel each synapse reads) and `mask` (1.0 where the synapse is
connected, 0.0 where it is padding and reads nothing).
"""

import math

import numpy as np

ROUTINGS = ("random", "neuronio")


def neuronio_routing(num_inputs, num_branches, synapses_per_branch):
    """The routing the authors used for NeuronIO.

    The first and second halves of the inputs (excitatory and inhibitory
    presynaptic neurons) are interleaved; branch `k` then reads the
    `synapses_per_branch` consecutive interleaved channels starting at
    `k * ceil(num_inputs / num_branches)`. Windows overlap; positions past
    the end are masked out (and point at the last channel).

    Args:
        num_inputs: number of input channels.
        num_branches: number of dendritic branches.
        synapses_per_branch: synapses on each branch.

    Returns:
        A tuple `(indices, mask)`: int32 and float32 arrays of length
        `num_branches * synapses_per_branch`.
    """
    half = num_inputs // 2
    interleaved = np.stack(
        [np.arange(half), np.arange(half, 2 * half)], axis=1
    ).reshape(-1)
    # An odd channel count leaves one channel; it goes last.
    interleaved = np.concatenate([interleaved, np.arange(2 * half, num_inputs)])
    stride = math.ceil(num_inputs / num_branches)
    positions = (
        np.arange(num_branches)[:, None] * stride
        + np.arange(synapses_per_branch)[None, :]
    ).reshape(-1)
    valid = positions < num_inputs
    indices = interleaved[np.minimum(positions, num_inputs - 1)]
    return indices.astype("int32"), valid.astype("float32")


def random_routing(num_inputs, num_synapses, seed=None):
    """Each synapse reads one input channel drawn uniformly, once.

    Args:
        num_inputs: number of input channels.
        num_synapses: number of synapses.
        seed: integer seed of the draw, for a reproducible routing.

    Returns:
        A tuple `(indices, mask)` as for `neuronio_routing`, all connected.
    """
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, num_inputs, size=num_synapses)
    return indices.astype("int32"), np.ones(num_synapses, "float32")


def check_routing(routing, num_branches, synapses_per_branch):
    """A routing argument, checked before the input is known, or raises.

    Args:
        routing: None, `"random"`, `"neuronio"`, or a 1-D sequence of
            integer input indices of length
            `num_branches * synapses_per_branch`.
        num_branches: the number of branches (required with a routing).
        synapses_per_branch: synapses on each branch.

    Returns:
        None, the routing's name, or the indices as a list of Python ints
        (JSON, for the layer's config).

    Raises:
        TypeError: `routing` is neither None, a string nor an array of
            integers (a scalar, floats: `int()` would truncate 1.7 to 1).
        ValueError: an unknown name; indices that are not 1-D or of the
            wrong length; a routing without `num_branches`.

    Example:

    >>> check_routing([2, 0, 1, 1], num_branches=2, synapses_per_branch=2)
    [2, 0, 1, 1]
    >>> check_routing("neuronio", None, 1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Argument `num_branches` is required when `routing` is set. ...
    """
    if routing is None:
        return None
    if isinstance(routing, str):
        if routing not in ROUTINGS:
            raise ValueError(
                "Argument `routing` must be None, one of "
                f"{ROUTINGS} or an array of input "
                f"indices. Received: routing={routing!r}"
            )
    else:
        try:
            indices = np.asarray(routing)
        except ValueError as error:  # A ragged nested sequence.
            raise ValueError(
                "Argument `routing` given as indices must be a 1-D "
                f"array of integers. Received: routing={routing!r}"
            ) from error
        if indices.ndim == 0 or (
            indices.size and not np.issubdtype(indices.dtype, np.integer)
        ):
            # int() would silently truncate 1.7 to 1.
            raise TypeError(
                "Argument `routing` given as indices must be an array of "
                f"integers. Received dtype {indices.dtype}, shape "
                f"{indices.shape}: routing={routing!r}"
            )
        if indices.ndim != 1:
            # A nested list would otherwise be flattened silently.
            raise ValueError(
                "Argument `routing` given as indices must be a 1-D "
                f"array of integers. Received shape {indices.shape}: "
                f"routing={routing!r}"
            )
        routing = [int(i) for i in indices]
    if num_branches is None:
        raise ValueError(
            "Argument `num_branches` is required when `routing` is "
            f"set. Received: routing={routing!r}, num_branches=None"
        )
    if not isinstance(routing, str) and len(routing) != (
        num_branches * synapses_per_branch
    ):
        raise ValueError(
            "Argument `routing` given as indices must have length "
            "num_branches * synapses_per_branch = "
            f"{num_branches * synapses_per_branch}. "
            f"Received length {len(routing)}."
        )
    return routing


def make_routing(
    routing, num_inputs, num_branches, synapses_per_branch, seed=None
):
    """Resolves a routing argument into `(indices, mask)`.

    Args:
        routing: `"random"`, `"neuronio"`, or a sequence of input indices of
            length `num_branches * synapses_per_branch`.
        num_inputs: number of input channels.
        num_branches: number of branches.
        synapses_per_branch: synapses on each branch.
        seed: seed for `"random"`.

    Returns:
        A tuple `(indices, mask)` of NumPy arrays.
    """
    num_synapses = num_branches * synapses_per_branch
    if isinstance(routing, str):
        if routing == "neuronio":
            return neuronio_routing(
                num_inputs, num_branches, synapses_per_branch
            )
        if routing == "random":
            return random_routing(num_inputs, num_synapses, seed)
        raise ValueError(
            f"Argument `routing` must be None, one of {ROUTINGS} or an array "
            f"of input indices. Received: routing={routing!r}"
        )
    indices = np.asarray(routing)
    if indices.ndim != 1 or indices.shape[0] != num_synapses:
        raise ValueError(
            "Argument `routing` given as indices must be a 1-D array of "
            f"length num_branches * synapses_per_branch = {num_synapses}. "
            f"Received shape {indices.shape}."
        )
    if not np.issubdtype(indices.dtype, np.integer):
        raise TypeError(
            "Argument `routing` given as indices must hold integers. "
            f"Received dtype {indices.dtype}."
        )
    if indices.size and (indices.min() < 0 or indices.max() >= num_inputs):
        raise ValueError(
            f"Argument `routing` has indices out of range [0, {num_inputs}) "
            f"for an input with {num_inputs} channels. Received min "
            f"{indices.min()}, max {indices.max()}."
        )
    return indices.astype("int32"), np.ones(num_synapses, "float32")
