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

        triton_check.check("cuda")
        return
    # On the CPU, Triton's interpreter runs the kernels; it must be switched
    # on before Triton is imported, hence a fresh process.
    env = dict(os.environ, TRITON_INTERPRET="1", KERAS_BACKEND="torch")
    env["PYTHONPATH"] = os.pathsep.join(
        [ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p]
    )
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tests", "triton_check.py"), "cpu",
         "--quick"],
        env=env, capture_output=True, text=True, timeout=600,
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
