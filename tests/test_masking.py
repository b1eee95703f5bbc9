"""Masks, initial states, padding and tiny shapes, on both loops.

The whole class of each behaviour, not one instance: every mask pattern
(leading, trailing, middle, all, none) with zero and non-zero initial
states, garbage (NaN, inf) at the masked steps, batch 1 and one step, both
`go_backwards` directions, the readout and `zero_output_for_mask`. Each case
is checked three ways: the fast path gives the generic loop's outputs and
gradients; nothing is non-finite; and the outputs and final states equal an
independent oracle, the unmasked generic loop run on each sample's kept
steps alone.
"""

import keras
import numpy as np
import pytest

import keras_elm
from tests.helpers import assert_close
from tests.helpers import outputs_and_gradients
from tests.helpers import to_numpy

FEATURES = 4
UNITS = 3
GARBAGE = {
    "zero": 0.0,
    "nan": np.nan,
    "inf": np.inf,
    "-inf": -np.inf,
    "huge": 1e30,
}


def _layer_kwargs(version, output_units, mlp_layers, **flags):
    return dict(
        units=UNITS,
        num_branches=2,
        synapses_per_branch=2,
        version=version,
        output_units=output_units,
        mlp_layers=mlp_layers,
        mlp_units=5,
        memory_tau_max=20.0,
        **flags,
    )


def _randomize(layer, seed):
    rng = np.random.default_rng(seed)
    for variable in layer.weights:
        value = to_numpy(variable)
        if value.dtype.kind == "f" and "routing" not in variable.path:
            variable.assign(
                value + 0.3 * rng.standard_normal(value.shape).astype("float32")
            )


def _models(layer_kwargs, batch, steps, seed=0):
    """Generic-loop and fast-path models with the same weights.

    Each takes `[x, mask, memory0, trace0]`. Also returns the generic layer.
    """
    layers, models = [], []
    for use_fast_path in (False, True):
        layer = keras_elm.ELM(use_fast_path=use_fast_path, **layer_kwargs)
        layer.build((batch, steps, FEATURES))
        x = keras.Input((steps, FEATURES), batch_size=batch)
        mask = keras.Input((steps,), batch_size=batch, dtype="bool")
        m0 = keras.Input((UNITS,), batch_size=batch)
        s0 = keras.Input((layer.state_size[1],), batch_size=batch)
        y = layer(x, mask=mask, initial_state=[m0, s0])
        layers.append(layer)
        models.append(keras.Model([x, mask, m0, s0], y))
    _randomize(layers[0], seed)
    layers[1].set_weights(layers[0].get_weights())
    return models[0], models[1], layers[0]


def _oracle_layer(layer):
    """The generic loop, unmasked, with every output and the final states."""
    config = {
        **layer.get_config(),
        "return_sequences": True,
        "return_state": True,
        "zero_output_for_mask": False,
        "stateful": False,
        "use_fast_path": False,
    }
    oracle = keras_elm.ELM.from_config(config)
    oracle.build((1, 1, FEATURES))
    oracle.set_weights(layer.get_weights())
    return oracle


def _expected(layer, x, mask, m0, s0):
    """Outputs and final states from each sample's kept steps alone.

    A masked step leaves the memory and trace unchanged, and outputs the
    memory carried so far (its readout), `m0` before the first kept step;
    zeros with `zero_output_for_mask`.
    """
    oracle = _oracle_layer(layer)
    batch, steps, _ = x.shape
    order = list(range(steps))[:: -1 if layer.go_backwards else 1]
    outputs, memories, traces = [], [], []
    for b in range(batch):
        kept = np.flatnonzero(mask[b])
        m, s = m0[b], s0[b]
        if kept.size:
            y, m, s = (
                to_numpy(v)[0]
                for v in oracle(
                    x[b, kept][None],
                    initial_state=[m0[b : b + 1], s0[b : b + 1]],
                )
            )
        carried = to_numpy(oracle.readout(m0[b : b + 1]))[0]
        sequence, seen = [], 0
        for t in order:
            if mask[b, t]:
                carried = y[seen]
                seen += 1
                sequence.append(carried)
            elif layer.zero_output_for_mask:
                sequence.append(np.zeros_like(carried))
            else:
                sequence.append(carried)
        outputs.append(np.stack(sequence))
        memories.append(m)
        traces.append(s)
    outputs = np.stack(outputs)
    if not layer.return_sequences:
        outputs = outputs[:, -1]
    return outputs, np.stack(memories), np.stack(traces)


def _mask(kinds, steps, rng):
    """One row per sample: all kept, leading, trailing, middle gap, none
    kept, or random."""
    rows = []
    for kind in kinds:
        row = np.ones(steps, bool)
        cut = int(rng.integers(1, steps + 1))
        if kind == "leading":
            row[:cut] = False
        elif kind == "trailing":
            row[steps - cut :] = False
        elif kind == "middle":
            row[steps // 3 : max(steps // 3 + 1, 2 * steps // 3)] = False
        elif kind == "none":
            row[:] = False
        elif kind == "random":
            row = rng.random(steps) < 0.5
        rows.append(row)
    return np.stack(rows)


def _case(batch, steps, kinds, nonzero_state, garbage, trace_size, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, steps, FEATURES)).astype("float32")
    mask = _mask(kinds, steps, rng)
    x[~mask] = GARBAGE[garbage]
    scale = 0.7 if nonzero_state else 0.0
    m0 = (scale * rng.standard_normal((batch, UNITS))).astype("float32")
    s0 = (scale * rng.standard_normal((batch, trace_size))).astype("float32")
    return x, mask, m0, s0


MASK_KINDS = ["all", "leading", "trailing", "middle", "none", "random"]


# A covering design instead of random draws (was 12 Hypothesis examples,
# which promised none of this): batch 1, 2 and 3, one, two and five steps,
# every mask kind, every garbage value, zero and non-zero initial states,
# and every pair of the seven two-valued factors in all four combinations.
# Columns: batch, steps, kinds (one per sample), nonzero_state, garbage,
# version, output_units, mlp_layers, go_backwards, return_sequences,
# zero_output_for_mask.
MASKED_CASES = [
    (1, 1, "leading", True, "nan", 1, None, 1, False, True, False),
    (2, 5, "trailing none", False, "inf", 2, 2, 2, True, False, True),
    (3, 5, "middle random all", True, "-inf", 1, 2, 1, True, True, True),
    (3, 2, "none all middle", False, "huge", 2, None, 2, False, True, False),
    (2, 2, "all middle", True, "zero", 1, None, 2, True, False, False),
    (1, 5, "random", False, "nan", 2, 2, 1, False, False, True),
    (3, 1, "all none leading", True, "inf", 2, None, 1, True, True, True),
    (2, 5, "leading trailing", False, "nan", 1, 2, 2, False, True, False),
]


@pytest.mark.parametrize(
    "batch, steps, kinds, nonzero_state, garbage, version, output_units, "
    "mlp_layers, go_backwards, return_sequences, zero_output_for_mask",
    MASKED_CASES,
)
def test_masked_steps_on_both_loops(
    batch,
    steps,
    kinds,
    nonzero_state,
    garbage,
    version,
    output_units,
    mlp_layers,
    go_backwards,
    return_sequences,
    zero_output_for_mask,
):
    kwargs = _layer_kwargs(
        version,
        output_units,
        mlp_layers,
        go_backwards=go_backwards,
        return_sequences=return_sequences,
        zero_output_for_mask=zero_output_for_mask,
    )
    generic, fast, layer = _models(kwargs, batch, steps)
    x, mask, m0, s0 = _case(
        batch,
        steps,
        kinds.split(),
        nonzero_state,
        garbage,
        layer.state_size[1],
        seed=steps,
    )
    inputs = [x, mask, m0, s0]

    expected, _, _ = _expected(layer, x, mask, m0, s0)
    r = np.random.default_rng(1).standard_normal(expected.shape)
    y_generic, w_generic, in_generic = outputs_and_gradients(
        generic, inputs, r, wrt=(0, 2, 3)
    )
    y_fast, w_fast, in_fast = outputs_and_gradients(
        fast, inputs, r, wrt=(0, 2, 3)
    )
    for name, y in (("generic", y_generic), ("fast", y_fast)):
        assert_close(y, expected, 1e-5, f"{name} output")
    names = [v.path for v in generic.trainable_variables]
    names += ["grad_x", "grad_memory0", "grad_trace0"]
    for name, a, b in zip(names, w_fast + in_fast, w_generic + in_generic):
        assert np.all(np.isfinite(a)) and np.all(np.isfinite(b)), name
        assert_close(a, b, 1e-4, name)
    for name, grad_x in (("generic", in_generic[0]), ("fast", in_fast[0])):
        assert not np.any(grad_x[~mask]), f"{name}: gradient at padding"


@pytest.mark.parametrize(
    "use_fast_path", [False, True], ids=["generic", "fast"]
)
@pytest.mark.parametrize("version", [1, 2])
def test_final_states_with_masks_and_initial_states(use_fast_path, version):
    batch, steps = 4, 5
    kwargs = _layer_kwargs(
        version, 2, 1, return_sequences=True, return_state=True
    )
    layer = keras_elm.ELM(use_fast_path=use_fast_path, **kwargs)
    layer.build((batch, steps, FEATURES))
    _randomize(layer, 0)
    x, mask, m0, s0 = _case(
        batch,
        steps,
        ["leading", "none", "middle", "trailing"],
        True,
        "nan",
        layer.state_size[1],
        seed=3,
    )
    y, m, s = (to_numpy(v) for v in layer(x, mask=mask, initial_state=[m0, s0]))
    want_y, want_m, want_s = _expected(layer, x, mask, m0, s0)
    assert_close(y, want_y, 1e-5, "output")
    assert_close(m, want_m, 1e-5, "memory")
    assert_close(s, want_s, 1e-5, "trace")
    # A sample with nothing kept keeps its initial states exactly.
    np.testing.assert_array_equal(m[1], m0[1])
    np.testing.assert_array_equal(s[1], s0[1])


@pytest.mark.parametrize(
    "use_fast_path", [False, True], ids=["generic", "fast"]
)
@pytest.mark.parametrize("output_units", [None, 2])
def test_stateful_streaming_equals_one_pass(use_fast_path, output_units):
    """Chunks through a stateful layer give the one-pass outputs, also when
    a chunk starts with masked steps (the carried memory is not zero)."""
    batch, steps, chunk = 2, 9, 3
    kwargs = _layer_kwargs(1, output_units, 1, return_sequences=True)
    stateful = keras_elm.ELM(
        stateful=True, use_fast_path=use_fast_path, **kwargs
    )
    stateful.build((batch, chunk, FEATURES))
    _randomize(stateful, 1)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((batch, steps, FEATURES)).astype("float32")
    mask = np.ones((batch, steps), bool)
    mask[0, 3:5] = False  # The second chunk starts masked.
    mask[1, 6:] = False  # The last chunk is all padding.
    x[~mask] = np.nan
    streamed = np.concatenate(
        [
            to_numpy(stateful(x[:, i : i + chunk], mask=mask[:, i : i + chunk]))
            for i in range(0, steps, chunk)
        ],
        axis=1,
    )
    m0 = np.zeros((batch, UNITS), "float32")
    s0 = np.zeros((batch, stateful.state_size[1]), "float32")
    expected, _, _ = _expected(stateful, x, mask, m0, s0)
    assert np.all(np.isfinite(streamed))
    assert_close(streamed, expected, 1e-5)


@pytest.mark.parametrize(
    "use_fast_path", [False, True], ids=["generic", "fast"]
)
def test_mask_with_a_trailing_axis_of_one(use_fast_path):
    layer = keras_elm.ELM(
        UNITS, return_sequences=True, use_fast_path=use_fast_path
    )
    x, mask, _, _ = _case(
        3, 5, ["leading", "middle", "trailing"], False, "nan", 1, seed=5
    )
    flat = to_numpy(layer(x, mask=mask))
    assert np.all(np.isfinite(flat))
    assert_close(to_numpy(layer(x, mask=mask[..., None])), flat, 1e-6)


@pytest.mark.parametrize(
    "use_fast_path", [False, True], ids=["generic", "fast"]
)
@pytest.mark.parametrize(
    "shape",
    [(3, 4), (2, 5), (3, 5, 2), (3,), (3, 5, 1, 1)],
    ids=["short", "batch", "axis2", "rank1", "rank4"],
)
def test_misshaped_mask_is_rejected(use_fast_path, shape):
    layer = keras_elm.ELM(UNITS, use_fast_path=use_fast_path)
    x = np.zeros((3, 5, FEATURES), "float32")
    with pytest.raises(ValueError, match=r"`mask`.*\(batch, timesteps\)"):
        layer(x, mask=np.ones(shape, bool))
