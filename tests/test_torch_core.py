"""The PyTorch memory core against the per-step autograd reference."""

import keras
import pytest

if keras.backend.backend() != "torch":
    pytest.skip("needs the torch backend", allow_module_level=True)

torch = pytest.importorskip("torch")

from keras_elm.scan import torch_core  # noqa: E402

ACTIVATIONS = [
    "relu",
    "silu",
    "tanh",
    "sigmoid",
    "gelu",
    "elu",
    "softplus",
    "linear",
]
NAMES = [
    "drive",
    "memory0",
    "recurrent_kernel",
    "output_kernel",
    "output_bias",
    "kappa_m",
    "gain",
]


def make_problem(
    batch=3, steps=7, units=4, hidden=6, num_hidden=1, dtype=None, seed=0
):
    """Random inputs of `memory_scan` as a dict; all require grad."""
    gen = torch.Generator().manual_seed(seed)
    dtype = dtype or torch.float32

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, generator=gen) * scale).to(dtype)

    problem = {
        "drive": rand(batch, steps, hidden),
        "memory0": rand(batch, units),
        "recurrent_kernel": rand(units, hidden, scale=units**-0.5),
        "hidden_kernels": [
            rand(hidden, hidden, scale=hidden**-0.5) for _ in range(num_hidden)
        ],
        "hidden_biases": [rand(hidden, scale=0.5) for _ in range(num_hidden)],
        "output_kernel": rand(hidden, units, scale=hidden**-0.5),
        "output_bias": rand(units, scale=0.5),
        "kappa_m": torch.rand(units, generator=gen).to(dtype),
        "gain": torch.rand(units, generator=gen).to(dtype),
    }
    for value in leaves(problem):
        value.requires_grad_(True)
    return problem


def leaves(problem):
    return (
        [problem[name] for name in NAMES]
        + list(problem["hidden_kernels"])
        + list(problem["hidden_biases"])
    )


def edge_mask(batch=3, steps=7):
    """A mask with masked first and last steps and a fully masked row."""
    mask = torch.ones(batch, steps, dtype=torch.bool)
    mask[0, 0] = False
    mask[0, -1] = False
    mask[0, 3] = False
    mask[1] = False
    if batch > 2:
        mask[2, 1:3] = False
    return mask


def run_with_grads(fn, problem, activation, mask, weights):
    out = fn(**problem, activation=activation, mask=mask)
    inputs = [x for x in leaves(problem) if x.requires_grad]
    grads = torch.autograd.grad((out * weights).sum(), inputs)
    return out, grads


@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
@pytest.mark.parametrize("num_hidden", [0, 1, 2])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_matches_reference(activation, num_hidden, masked):
    problem = make_problem(num_hidden=num_hidden, seed=num_hidden)
    mask = edge_mask() if masked else None
    weights = torch.randn(3, 7, 4, generator=torch.Generator().manual_seed(1))
    out, grads = run_with_grads(
        torch_core.memory_scan, problem, activation, mask, weights
    )
    ref_out, ref_grads = run_with_grads(
        torch_core.memory_scan_reference, problem, activation, mask, weights
    )
    torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-5)
    names = (
        NAMES
        + [f"hidden_kernel_{i}" for i in range(num_hidden)]
        + [f"hidden_bias_{i}" for i in range(num_hidden)]
    )
    assert len(grads) == len(names)
    for name, grad, ref_grad in zip(names, grads, ref_grads):
        torch.testing.assert_close(
            grad, ref_grad, rtol=1e-5, atol=1e-5, msg=lambda m: f"{name}: {m}"
        )


@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "grad"])
def test_masked_steps_keep_memory(grad):
    problem = make_problem()
    mask = edge_mask()
    # Whatever a masked step holds, even nan, must not reach the memory.
    with torch.no_grad():
        problem["drive"][~mask] = float("nan")
    with torch.set_grad_enabled(grad):
        out = torch_core.memory_scan(**problem, activation="relu", mask=mask)
    out = out.detach()
    memory0 = problem["memory0"].detach()
    assert torch.isfinite(out).all()
    # The fully masked row never moves from m_0.
    torch.testing.assert_close(out[1], memory0[1].expand(7, 4), rtol=0, atol=0)
    torch.testing.assert_close(out[0, 0], memory0[0], rtol=0, atol=0)
    torch.testing.assert_close(out[0, -1], out[0, -2], rtol=0, atol=0)


def test_forward_without_grad_matches_reference():
    # Without gradients the forward uses scratch buffers instead of keeping
    # every step.
    problem = make_problem(num_hidden=2)
    with torch.no_grad():
        for activation in ("relu", "gelu"):
            out = torch_core.memory_scan(**problem, activation=activation)
            ref = torch_core.memory_scan_reference(
                **problem, activation=activation
            )
            torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_gradients_of_some_inputs_match_reference():
    problem = make_problem(num_hidden=1)
    for name in NAMES:
        if name not in ("drive", "gain"):
            problem[name].requires_grad_(False)
    problem["hidden_biases"][0].requires_grad_(False)
    weights = torch.randn(3, 7, 4, generator=torch.Generator().manual_seed(2))
    mask = edge_mask()
    _, grads = run_with_grads(
        torch_core.memory_scan, problem, "silu", mask, weights
    )
    _, ref_grads = run_with_grads(
        torch_core.memory_scan_reference, problem, "silu", mask, weights
    )
    assert len(grads) == 3  # drive, gain, the hidden kernel.
    for grad, ref_grad in zip(grads, ref_grads):
        torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-5)


def test_stride_zero_upstream_gradient():
    # `out.sum()` hands the backward pass a stride-0 gradient.
    problem = make_problem(num_hidden=0)
    inputs = leaves(problem)
    out = torch_core.memory_scan(**problem, activation="tanh")
    grads = torch.autograd.grad(out.sum(), inputs)
    ref = torch_core.memory_scan_reference(**problem, activation="tanh")
    ref_grads = torch.autograd.grad(ref.sum(), inputs)
    for grad, ref_grad in zip(grads, ref_grads):
        torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-5)


def test_zero_steps_give_empty_output_and_zero_gradients():
    problem = make_problem(steps=0)
    out = torch_core.memory_scan(**problem, activation="relu")
    assert out.shape == (3, 0, 4)
    grads = torch.autograd.grad(out.sum(), leaves(problem), allow_unused=True)
    for grad in grads:
        assert grad is None or not torch.any(grad)


@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
def test_float64_gradcheck(masked):
    problem = make_problem(
        batch=2, steps=4, units=3, hidden=4, num_hidden=1, dtype=torch.float64
    )
    mask = edge_mask(batch=2, steps=4) if masked else None
    num_hidden = len(problem["hidden_kernels"])

    def fn(*tensors):
        named = dict(zip(NAMES, tensors[:7]))
        return torch_core.memory_scan(
            hidden_kernels=tensors[7 : 7 + num_hidden],
            hidden_biases=tensors[7 + num_hidden :],
            activation="silu",
            mask=mask,
            **named,
        )

    assert torch.autograd.gradcheck(fn, tuple(leaves(problem)))


def test_unknown_activation_raises_not_implemented():
    problem = make_problem()
    with pytest.raises(NotImplementedError, match="swish_custom"):
        torch_core.memory_scan(**problem, activation="swish_custom")


@pytest.mark.parametrize(
    "options", [dict(unroll=True), dict(remat_chunk=2, unroll=None)]
)
def test_options_of_other_cores_are_ignored(options):
    # One contract for every core: JAX's options change nothing here.
    problem = make_problem()
    plain = torch_core.memory_scan(**problem, activation="relu")
    with_options = torch_core.memory_scan(
        **problem, activation="relu", **options
    )
    torch.testing.assert_close(with_options, plain, rtol=0, atol=0)
    assert torch_core.supports(activation="relu", **options)


def test_caller_thread_count_is_restored():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        problem = make_problem()
        out = torch_core.memory_scan(**problem, activation="relu")
        assert torch.get_num_threads() == 2
        out.sum().backward()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def test_linear_trace_matches_a_recorded_loop():
    from keras_elm.scan import torch_core

    g = torch.Generator().manual_seed(3)
    decays = (torch.rand(2, 6, 3, generator=g) * 0.9).requires_grad_(True)
    inputs = torch.randn(2, 6, 3, generator=g).requires_grad_(True)
    initial = torch.randn(2, 3, generator=g).requires_grad_(True)
    weights = torch.randn(2, 6, 3, generator=g)
    results = []
    for method in ("loop", "doubling", "recorded"):
        leaves = [
            t.detach().clone().requires_grad_(True)
            for t in (decays, inputs, initial)
        ]
        if method == "loop":
            out = torch_core.linear_trace(*leaves)
        elif method == "doubling":
            # What runs on a GPU.
            out = torch_core._doubling_trace(*leaves)
        else:
            b, outs = leaves[2], []
            for t in range(6):
                b = leaves[0][:, t] * b + leaves[1][:, t]
                outs.append(b)
            out = torch.stack(outs, 1)
        (out * weights).sum().backward()
        results.append([out.detach()] + [leaf.grad for leaf in leaves])
    for loop, doubling, recorded in zip(*results):
        torch.testing.assert_close(loop, recorded, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(doubling, recorded, rtol=1e-5, atol=1e-6)


def test_loops_run_the_same_without_torchscript(monkeypatch):
    from keras_elm.scan import torch_steps

    g = torch.Generator().manual_seed(5)
    args = [
        torch.randn(3, 6, 8, generator=g),
        torch.randn(3, 4, generator=g),
        torch.randn(4, 8, generator=g) * 0.3,
        [],
        [],
        torch.randn(8, 4, generator=g) * 0.3,
        torch.zeros(4),
        torch.full((4,), 0.9),
        torch.full((4,), 0.2),
    ]
    mask = torch.rand(3, 6, generator=g) > 0.3
    results = []
    for scripted in (True, False):
        if not scripted:
            monkeypatch.setattr(
                torch_steps,
                "_SCRIPTED",
                {
                    f.__name__: f
                    for f in (
                        torch_steps.forward_steps,
                        torch_steps.backward_steps,
                        torch_steps.trace_steps,
                    )
                },
            )
        leaves = [
            a.clone().requires_grad_(True) if isinstance(a, torch.Tensor) else a
            for a in args
        ]
        out = torch_core.memory_scan(*leaves, "silu", mask=mask)
        out.sum().backward()
        results.append(
            [out.detach()]
            + [a.grad for a in leaves if isinstance(a, torch.Tensor)]
        )
    for scripted, plain in zip(*results):
        torch.testing.assert_close(scripted, plain, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("steps", [8, 9, 13])
@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
def test_backward_with_the_helper_thread_matches_reference(
    monkeypatch, steps, masked
):
    # The reverse loop in chunks, the weight gradients of each chunk on a
    # helper thread: forced on here with chunks of 3 steps (the last one
    # partial), whatever the machine's cores.
    from keras_elm.scan import torch_backward

    monkeypatch.setattr(torch_backward, "OVERLAP_CHUNK_STEPS", 3)
    monkeypatch.setattr(torch_backward, "_can_overlap", lambda steps: True)
    problem = make_problem(steps=steps, num_hidden=2, seed=steps)
    mask = edge_mask(steps=steps) if masked else None
    weights = torch.randn(
        3, steps, 4, generator=torch.Generator().manual_seed(2)
    )
    out, grads = run_with_grads(
        torch_core.memory_scan, problem, "relu", mask, weights
    )
    ref_out, ref_grads = run_with_grads(
        torch_core.memory_scan_reference, problem, "relu", mask, weights
    )
    torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-5)
    for grad, ref_grad in zip(grads, ref_grads):
        torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-5)
