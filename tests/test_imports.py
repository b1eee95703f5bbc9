"""Importing keras_elm and building its layers imports no backend but the
one in use (TensorFlow alone costs seconds and log lines at every start)."""

import os
import subprocess
import sys

import keras
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = """
import sys
import numpy as np
import keras
import keras_elm
from keras_elm import models
for activation in ("relu", "silu", "tanh"):
    cell = keras_elm.ELMCell(4, mlp_activation=activation)
    assert cell.mlp_activation_name == activation, cell.mlp_activation_name
model = keras.Sequential([keras.Input((5, 3)), keras_elm.ELM(4)])
model.predict(np.zeros((2, 5, 3), "float32"), verbose=0)
models.listops(20, units=4)
# keras_elm.tuning imports, of keras_elm.tasks, the registry and the
# training recipe only: not the flags' parsing (`tasks.cli`), nor the
# reports and figure (`tasks.reporting`, matplotlib). keras-tuner is a
# stand-in here (the real one imports TensorFlow, and takes seconds).
import types
tuner = types.ModuleType("keras_tuner")
tuner.HyperModel = type("HyperModel", (), {"__init__": lambda self, **k: None})
sys.modules["keras_tuner"] = tuner
before = set(sys.modules)
import keras_elm.tuning
print(sorted(m for m in sys.modules if m.startswith("keras_elm.tasks")))
print(sorted(m for m in set(sys.modules) - before if "matplotlib" in m))
print("tensorflow" in sys.modules)
"""

TASKS_MODULES = [
    "keras_elm.tasks",
    "keras_elm.tasks.registry",
    "keras_elm.tasks.training",
]


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_no_tensorflow_import_on_other_backends(backend):
    """Nor `tasks.cli`, `tasks.reporting` or matplotlib by `tuning`."""
    if keras.backend.backend() != "torch":
        pytest.skip("runs in the torch test process")
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KERAS_BACKEND": backend},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    tasks_modules, matplotlib, tensorflow = lines[-3:]
    assert tensorflow == "False"
    assert tasks_modules == str(TASKS_MODULES)
    assert matplotlib == "[]"
