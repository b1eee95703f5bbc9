"""The fast path gives the generic loop's outputs, states and gradients."""

import ast
import pathlib

import keras
import numpy as np
import pytest

import keras_elm
from tests.helpers import assert_close
from tests.helpers import to_numpy
from tests.helpers import value_and_grads

FEATURES = 6
STEPS = 7
BATCH = 3


def _pair(layer_kwargs, masking=False, features=FEATURES, seed=0):
    """Two models with the same weights: generic loop and fast path."""
    models = []
    for use_fast_path in (False, True):
        keras.utils.set_random_seed(seed)
        inputs = keras.Input((STEPS, features))
        x = keras.layers.Masking(0.0)(inputs) if masking else inputs
        layer = keras_elm.ELM(use_fast_path=use_fast_path, **layer_kwargs)
        models.append(keras.Model(inputs, layer(x)))
    rng = np.random.default_rng(seed)
    generic, fast = models
    # Move every weight away from its initial value, the same in both.
    for wg, wf in zip(generic.weights, fast.weights):
        value = to_numpy(wg)
        if value.dtype.kind == "f" and "routing" not in wg.path:
            value = value + 0.1 * rng.standard_normal(value.shape).astype(
                value.dtype
            )
        wg.assign(value)
        wf.assign(value)
    return generic, fast


def _inputs(rng, masking, features=FEATURES):
    x = rng.standard_normal((BATCH, STEPS, features)).astype("float32")
    if masking:
        # Masked steps (all zero): one at the start, a gap, a padded tail,
        # and one sample fully visible.
        x[0, 0] = 0.0
        x[1, 2:4] = 0.0
        x[2, 5:] = 0.0
    return x


def _assert_same(generic, fast, x, rng):
    # The outputs come from `value_and_grads` itself: a separate forward
    # call of each model would only trace (on JAX: compile) them again.
    shape = (x.shape[0], *generic.output.shape[1:])
    r = rng.standard_normal(shape).astype("float32")
    y_generic, g_generic, gx_generic = value_and_grads(generic, x, r)
    y_fast, g_fast, gx_fast = value_and_grads(fast, x, r)
    assert_close(y_fast, y_generic, 1e-5, "output")
    assert_close(gx_fast, gx_generic, 1e-4, "grad_x")
    for variable, a, b in zip(generic.trainable_weights, g_fast, g_generic):
        assert_close(a, b, 1e-4, variable.path)


ROUTINGS = {
    "none": dict(),
    "branches": dict(num_branches=3, synapses_per_branch=2),
    "random": dict(
        num_branches=4, synapses_per_branch=3, routing="random", routing_seed=1
    ),
    "neuronio": dict(num_branches=2, synapses_per_branch=4, routing="neuronio"),
}


# A covering design instead of random draws (was 12 Hypothesis examples,
# which promised neither): every routing with both versions, every
# activation, and every pair of the seven two-valued factors in all four
# combinations (an orthogonal array of 8 rows). Columns: version, routing,
# mlp_layers, activation, learn_memory_tau, go_backwards, masking,
# return_sequences, output_units.
EQUIVALENCE_CASES = [
    (1, "none", 1, "relu", False, False, False, False, None),
    (1, "branches", 2, "silu", True, False, True, True, None),
    (1, "random", 2, "tanh", False, True, False, True, 2),
    (1, "neuronio", 1, "relu", True, True, True, False, 2),
    (2, "none", 2, "silu", False, True, True, False, None),
    (2, "branches", 1, "tanh", True, True, False, True, None),
    (2, "random", 1, "relu", False, False, True, True, 2),
    (2, "neuronio", 2, "silu", True, False, False, False, 2),
]


@pytest.mark.parametrize(
    "version, routing, mlp_layers, activation, learn_memory_tau, "
    "go_backwards, masking, return_sequences, output_units",
    EQUIVALENCE_CASES,
)
def test_fast_path_equals_generic(
    version,
    routing,
    mlp_layers,
    activation,
    learn_memory_tau,
    go_backwards,
    masking,
    return_sequences,
    output_units,
):
    kwargs = dict(
        units=4,
        output_units=output_units,
        version=version,
        mlp_layers=mlp_layers,
        mlp_units=5,
        mlp_activation=activation,
        learn_memory_tau=learn_memory_tau,
        memory_tau_max=50.0,
        go_backwards=go_backwards,
        return_sequences=return_sequences,
        **ROUTINGS[routing],
    )
    generic, fast = _pair(kwargs, masking=masking)
    rng = np.random.default_rng(1)
    _assert_same(generic, fast, _inputs(rng, masking), rng)


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("zero_output_for_mask", [False, True])
def test_fast_path_states_and_masked_outputs(version, zero_output_for_mask):
    kwargs = dict(
        units=4,
        num_branches=3,
        synapses_per_branch=2,
        version=version,
        return_sequences=True,
        return_state=True,
        zero_output_for_mask=zero_output_for_mask,
    )
    generic, fast = _pair(kwargs, masking=True)
    x = _inputs(np.random.default_rng(2), masking=True)
    for a, b in zip(fast(x), generic(x)):
        assert_close(to_numpy(a), to_numpy(b), 1e-5)


@pytest.mark.parametrize("version", [1, 2])
def test_fast_path_with_a_different_tau_per_branch(version):
    kwargs = dict(
        units=4,
        num_branches=3,
        synapses_per_branch=2,
        version=version,
        return_sequences=True,
    )
    generic, fast = _pair(kwargs)
    tau = np.array([2.0, 9.0, 30.0], "float32")
    for model in (generic, fast):
        model.layers[-1].cell.trace_tau.assign(tau)
    rng = np.random.default_rng(3)
    _assert_same(generic, fast, _inputs(rng, False), rng)


def test_fast_path_initial_state_and_stateful():
    kwargs = dict(
        units=4, num_branches=3, synapses_per_branch=2, return_sequences=True
    )
    generic, fast = _pair(kwargs)
    x = _inputs(np.random.default_rng(6), False)
    memory = np.full((BATCH, 4), 0.3, "float32")
    trace = np.full((BATCH, 6), 0.2, "float32")
    outputs = [
        to_numpy(m.layers[-1](x, initial_state=[memory, trace]))
        for m in (generic, fast)
    ]
    assert_close(outputs[1], outputs[0], 1e-5)
    assert not np.allclose(outputs[1], to_numpy(fast(x)))

    results = []
    for use_fast_path in (False, True):
        keras.utils.set_random_seed(0)
        layer = keras_elm.ELM(
            stateful=True, use_fast_path=use_fast_path, **kwargs
        )
        layer.build((BATCH, STEPS, FEATURES))
        first = to_numpy(layer(x[:, :3]))
        second = to_numpy(layer(x[:, 3:]))
        results.append(np.concatenate([first, second], axis=1))
    assert_close(results[1], results[0], 1e-5)


def test_use_fast_path_true_fails_loudly_where_it_cannot_run():
    layer = keras_elm.ELM(
        4, mlp_activation=lambda v: v * 2.0, use_fast_path=True
    )
    with pytest.raises(ValueError, match="use_fast_path"):
        layer(np.zeros((2, 3, 5), "float32"))
    auto = keras_elm.ELM(4, mlp_activation=lambda v: v * 2.0)
    assert to_numpy(auto(np.ones((2, 3, 5), "float32"))).shape == (2, 4)


def test_named_activation_without_a_fast_core_falls_back_or_fails():
    x = np.ones((2, 3, 5), "float32")
    with pytest.raises(ValueError, match="hard_sigmoid"):
        keras_elm.ELM(4, mlp_activation="hard_sigmoid", use_fast_path=True)(x)
    keras.utils.set_random_seed(0)
    auto = keras_elm.ELM(4, mlp_activation="hard_sigmoid")(x)
    keras.utils.set_random_seed(0)
    generic = keras_elm.ELM(
        4, mlp_activation="hard_sigmoid", use_fast_path=False
    )(x)
    assert_close(to_numpy(auto), to_numpy(generic), 1e-6)


def test_use_fast_path_rejects_unknown_values():
    with pytest.raises(ValueError, match="use_fast_path"):
        keras_elm.ELM(4, use_fast_path="always")


@pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="rematerialisation is JAX-only"
)
def test_jax_remat_chunks_give_the_same_gradients():
    kwargs = dict(
        units=4, num_branches=3, synapses_per_branch=2, return_sequences=True
    )
    _, plain = _pair(kwargs)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((STEPS, FEATURES))
    remat = keras.Model(
        inputs, keras_elm.ELM(remat_chunk_size=3, **kwargs)(inputs)
    )
    remat.set_weights(plain.get_weights())
    rng = np.random.default_rng(7)
    _assert_same(plain, remat, _inputs(rng, False), rng)


@pytest.mark.skipif(
    keras.backend.backend() == "jax", reason="rematerialisation is JAX-only"
)
def test_remat_chunk_size_is_rejected_off_jax():
    with pytest.raises(ValueError, match="remat_chunk_size"):
        keras_elm.ELM(4, remat_chunk_size=16)


@pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="the JAX core's custom VJP"
)
@pytest.mark.parametrize("remat_chunk", [None, 5])
def test_jax_hand_written_backward_matches_autodiff_of_the_scan(remat_chunk):
    import jax
    import jax.numpy as jnp

    from keras_elm.math import SCALED_TANH_GAIN
    from keras_elm.math import SCALED_TANH_SLOPE
    from keras_elm.scan import jax_core

    keys = jax.random.split(jax.random.PRNGKey(1), 6)
    batch, steps, units, hidden = 3, 12, 5, 8
    args = (
        jax.random.normal(keys[0], (batch, steps, hidden)),
        jax.random.normal(keys[1], (batch, units)) * 0.3,
        jax.random.normal(keys[2], (units, hidden)) * 0.3,
        jax.random.normal(keys[3], (hidden, units)) * 0.3,
        jnp.full((units,), 0.1),
        jnp.full((units,), 0.9),
        jnp.full((units,), 0.2),
    )
    mask = jax.random.uniform(keys[4], (batch, steps)) > 0.3
    weights = jax.random.normal(keys[5], (batch, steps, units))

    def fast(drive, m0, kernel, out_kernel, out_bias, kappa, gain):
        out = jax_core.memory_scan(
            drive,
            m0,
            kernel,
            [],
            [],
            out_kernel,
            out_bias,
            kappa,
            gain,
            "silu",
            mask=mask,
            remat_chunk=remat_chunk,
        )
        return jnp.sum(weights * out)

    def recorded(drive, m0, kernel, out_kernel, out_bias, kappa, gain):
        def step(m, xs):
            drive_t, keep_t = xs
            h = jax.nn.silu(drive_t + m @ kernel)
            th = jnp.tanh(SCALED_TANH_SLOPE * (h @ out_kernel + out_bias))
            new = kappa * m + gain * SCALED_TANH_GAIN * th
            new = jnp.where(keep_t[:, None], new, m)
            return new, new

        _, out = jax.lax.scan(
            step, m0, (jnp.swapaxes(drive, 0, 1), jnp.swapaxes(mask, 0, 1))
        )
        return jnp.sum(weights * jnp.swapaxes(out, 0, 1))

    argnums = tuple(range(len(args)))
    got = jax.grad(fast, argnums)(*args)
    want = jax.grad(recorded, argnums)(*args)
    for g, w in zip(got, want):
        assert_close(np.asarray(g), np.asarray(w), 1e-5)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="TensorFlow's XLA"
)
@pytest.mark.parametrize("masking", [False, True])
def test_tensorflow_fast_path_under_xla(masking):
    """Inside `jit_compile=True` the fast path gives the eager generic loop's
    outputs and gradients, and `compile(jit_compile=True)` trains like it."""
    import tensorflow as tf

    kwargs = dict(
        units=4,
        output_units=2,
        num_branches=3,
        synapses_per_branch=2,
        return_sequences=True,
    )
    generic, fast = _pair(kwargs, masking=masking)
    rng = np.random.default_rng(5)
    x = _inputs(rng, masking)
    r = rng.standard_normal((BATCH, STEPS, 2)).astype("float32")

    def grads(model):
        with tf.GradientTape() as tape:
            y = model(tf.constant(x))
            loss = tf.reduce_sum(y * r)
        return [y] + tape.gradient(loss, model.trainable_variables)

    expected = grads(generic)
    compiled = tf.function(lambda: grads(fast), jit_compile=True)()
    for name, a, b in zip(
        ["output"] + [v.path for v in generic.trainable_variables],
        compiled,
        expected,
    ):
        assert_close(to_numpy(a), to_numpy(b), 1e-4, name)

    y = rng.standard_normal((BATCH, STEPS, 2)).astype("float32")
    generic.compile(keras.optimizers.SGD(0.1), "mse", jit_compile=False)
    fast.compile(keras.optimizers.SGD(0.1), "mse", jit_compile=True)
    generic.train_on_batch(x, y)
    fast.train_on_batch(x, y)
    for variable, a, b in zip(
        generic.weights, fast.get_weights(), generic.get_weights()
    ):
        assert_close(a, b, 1e-4, variable.path)


SCAN = pathlib.Path(keras_elm.__file__).parent / "scan"
CORES = ("jax", "tensorflow", "torch")


def _scan_imports(path):
    """The `keras_elm` modules that a source file imports, anywhere in it."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] != "keras_elm":
                continue
            for alias in node.names:
                # `from keras_elm.scan import hoist` imports a module.
                sub = f"{node.module}.{alias.name}"
                names.add(sub if _module_file(sub) else node.module)
    return {name for name in names if name.split(".")[0] == "keras_elm"}


def _module_file(name):
    """The source file of `keras_elm` module `name`, or None."""
    base = pathlib.Path(keras_elm.__file__).parent.joinpath(
        *name.split(".")[1:]
    )
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def test_scan_package_has_no_import_cycle():
    if keras.backend.backend() != "torch":
        pytest.skip("parses sources only: runs in the torch process")
    modules = {
        "keras_elm.scan"
        if path.name == "__init__.py"
        else f"keras_elm.scan.{path.stem}": path
        for path in SCAN.glob("*.py")
    }
    graph = {name: _scan_imports(path) for name, path in modules.items()}
    # The memory-independent part imports no core.
    assert not {
        name
        for name in graph["keras_elm.scan.hoist"]
        if name.startswith("keras_elm.scan.")
    }
    # No path of imports leads from a scan module back to itself.
    for start in graph:
        seen, todo = set(), list(graph[start])
        while todo:
            name = todo.pop()
            assert name != start, f"{start} imports itself back via {seen}"
            if name in graph and name not in seen:
                seen.add(name)
                todo.extend(graph[name])
    # The rest of keras_elm that scan reads never imports scan back.
    for name in set().union(*graph.values()) - set(graph):
        back = _scan_imports(_module_file(name))
        assert not {n for n in back if n.startswith("keras_elm.scan")}, name


def test_every_core_takes_options_and_says_what_it_supports():
    # The contract, read from every core's source (any backend).
    for backend in CORES:
        tree = ast.parse((SCAN / f"{backend}_core.py").read_text("utf-8"))
        functions = {
            node.name: node
            for node in tree.body
            if isinstance(node, ast.FunctionDef)
        }
        for name in ("memory_scan", "supports", "linear_trace"):
            assert name in functions, (backend, name)
        for name in ("memory_scan", "supports"):
            assert functions[name].args.kwarg is not None, (backend, name)
        assigned = {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        assert "SUPPORTED_ACTIVATIONS" in assigned, backend
    # This backend's core: it answers, and every core's options run on it.
    from keras_elm import scan

    core = scan.backend_core()
    assert scan.ACTIVATIONS == core.SUPPORTED_ACTIVATIONS
    options = dict(unroll=None, remat_chunk=2)
    for name in core.SUPPORTED_ACTIVATIONS:
        assert core.supports(activation=name, **options)
    assert not core.supports(activation="hard_sigmoid", **options)
    rng = np.random.default_rng(0)
    b, t, d, h = 2, 3, 2, 4
    args = [
        rng.standard_normal(shape).astype("float32")
        for shape in ((b, t, h), (b, d), (d, h))
    ]
    args += [[], [], rng.standard_normal((h, d)).astype("float32")]
    args += [np.zeros(d, "float32"), np.full(d, 0.9, "float32")]
    args += [np.full(d, 0.1, "float32")]
    args = [
        a if isinstance(a, list) else keras.ops.convert_to_tensor(a)
        for a in args
    ]
    plain = core.memory_scan(*args, "tanh")
    with_options = core.memory_scan(*args, "tanh", **options)
    assert_close(to_numpy(with_options), to_numpy(plain), 1e-6)


def test_the_dispatch_asks_the_core_what_it_supports(monkeypatch):
    from keras_elm import scan

    core = scan.backend_core()
    monkeypatch.setattr(core, "SUPPORTED_ACTIVATIONS", ("relu",))
    monkeypatch.setattr(
        core, "supports", lambda activation, **options: activation == "relu"
    )
    tanh = keras_elm.ELM(4, mlp_activation="tanh")
    tanh.build((2, 3, 5))
    assert "'tanh' (it has relu)" in tanh.fast_path_reason
    relu = keras_elm.ELM(4, mlp_activation="relu")
    relu.build((2, 3, 5))
    assert relu.fast_path_reason is None
