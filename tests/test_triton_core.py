"""The fused Triton loops of the PyTorch core (GPU; CPU via the interpreter)."""

import importlib.util
import os
import subprocess
import sys

import keras
import pytest

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "torch", reason="the Triton kernels are torch's"
)

HAS_TRITON = importlib.util.find_spec("triton") is not None
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.skipif(not HAS_TRITON, reason="Triton is not installed")
def test_fused_loops_match_per_step_autograd():
    import torch

    if torch.cuda.is_available():
        sys.path.insert(0, os.path.dirname(__file__))
        import triton_check

        triton_check.check("cuda", quick=True)
        return
    # On the CPU, Triton's interpreter runs the kernels; it must be switched
    # on before Triton is imported, hence a fresh process.
    env = dict(os.environ, TRITON_INTERPRET="1", KERAS_BACKEND="torch")
    env["PYTHONPATH"] = os.pathsep.join(
        [ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p]
    )
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "tests", "triton_check.py"),
            "cpu",
            "--quick",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "cases match" in result.stdout


def test_fused_loops_only_where_they_apply():
    import torch

    from keras_elm.scan import triton_core

    x = torch.zeros(2, 3)
    if os.environ.get("TRITON_INTERPRET") != "1":
        # Never on the CPU outside the interpreter: the TorchScript loops run.
        assert not triton_core.usable(x, "relu", 1)
    if torch.cuda.is_available() and HAS_TRITON:
        on_gpu = x.cuda()
        assert triton_core.usable(on_gpu, "relu", 1)
        assert not triton_core.usable(on_gpu, "relu", 2)
        assert not triton_core.usable(on_gpu.double(), "relu", 1)
        assert not triton_core.usable(on_gpu, "hard_sigmoid", 1)


@pytest.mark.skipif(not HAS_TRITON, reason="Triton is not installed")
def test_a_kernel_too_large_for_the_gpu_falls_back():
    from triton.runtime.errors import OutOfResources

    from keras_elm.scan import triton_core

    class TooLarge:
        calls = 0

        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                TooLarge.calls += 1
                raise OutOfResources(540672, 232448, "shared memory")

            return launch

    key = ("test", 1, 2)
    assert not triton_core._launch(TooLarge(), key, 4)
    # Remembered: not compiled and refused again.
    assert not triton_core._launch(TooLarge(), key, 4)
    assert TooLarge.calls == 1
    triton_core._TOO_LARGE.discard(key)


def _compiled_shared_memory(kernel, signature, constexprs):
    import triton
    from triton.backends.compiler import GPUTarget

    source = triton.compiler.ASTSource(
        fn=kernel, signature=signature, constexprs=constexprs
    )
    # Compiled ahead of time for Hopper (sm_90) with Triton's bundled
    # ptxas: no GPU needed.
    compiled = triton.compile(
        source, target=GPUTarget("cuda", 90, 32), options={"num_warps": 4}
    )
    return compiled.metadata.shared


@pytest.mark.skipif(
    not HAS_TRITON or os.environ.get("TRITON_INTERPRET") == "1",
    reason="compiles the kernels with Triton",
)
def test_kernels_fit_in_shared_memory_at_neuronio_size():
    from keras_elm.scan import triton_core

    units, hidden = 100, 200
    blocks = dict(
        BB=triton_core.BLOCK_ROWS,
        DP=triton_core._block(units),
        HP=triton_core._block(hidden),
        HC=min(triton_core.HIDDEN_CHUNK, triton_core._block(hidden)),
    )
    pointers = [
        "pre_ptr",
        "post_ptr",
        "memory_ptr",
        "tanh_ptr",
        "kernel_ptr",
        "out_kernel_ptr",
        "out_bias_ptr",
        "decay_ptr",
        "gain_ptr",
    ]
    scalars = ["steps", "batch", "units", "hidden"]
    forward = _compiled_shared_memory(
        triton_core._forward_kernel,
        {
            **{p: "*fp32" for p in pointers},
            "skip_ptr": "*i8",
            **{s: "i32" for s in scalars},
            **{
                c: "constexpr"
                for c in [
                    "ACT",
                    "IN_PLACE",
                    "KEEP",
                    "PER_STEP",
                    "MASKED",
                    *blocks,
                ]
            },
        },
        dict(
            ACT=5,
            IN_PLACE=False,
            KEEP=True,
            PER_STEP=True,
            MASKED=True,
            **blocks,
        ),
    )
    backward = _compiled_shared_memory(
        triton_core._backward_kernel,
        {
            **{
                p: "*fp32"
                for p in [
                    "d_memory_ptr",
                    "d_out_ptr",
                    "d_pre_ptr",
                    "out_kernel_ptr",
                    "kernel_ptr",
                    "decay_ptr",
                ]
            },
            **{s: "i32" for s in scalars},
            **{c: "constexpr" for c in ["SCALED", "PER_STEP", *blocks]},
        },
        dict(SCALED=True, PER_STEP=True, **blocks),
    )
    # 99 KB is the most a block may use on sm_86/sm_89 GPUs (H100: 227 KB).
    assert forward <= 99 * 1024, forward
    assert backward <= 99 * 1024, backward
