"""Data-parallel training: `keras_elm.distribute` and `--distribute`.

Two virtual CPU devices stand in for two GPUs: XLA's
`--xla_force_host_platform_device_count=2` on JAX, two logical CPUs
(`tf.config.set_logical_device_configuration`) on TensorFlow. Both must be
set before the backend starts, so those checks run in subprocesses, each in
the test process of its own backend.
"""

import contextlib
import json
import os
import subprocess
import sys

import keras
import pytest

from keras_elm import distribute
from keras_elm import tasks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKEND = keras.backend.backend()
MULTI_DEVICE = ("jax", "tensorflow")

# `python -c LAUNCHER script args...`: runs the script on two devices.
LAUNCHER = """
import os, runpy, sys
if os.environ["KERAS_BACKEND"] == "tensorflow":
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""

# One model, one global batch of 8, trained without a distribution and on
# two devices; prints what the tests compare as JSON.
CHILD = """
import contextlib, io, json
import keras
import numpy as np
import keras_elm
from keras_elm import distribute, scan, tasks

BACKEND = keras.backend.backend()
fast_path_replicas = []
fast_inner_loop = scan.fast_inner_loop


def recording_fast_inner_loop(*args, **kwargs):
    # TensorFlow traces the step once in each replica (and Keras's build
    # once across replicas, with no replica context).
    if BACKEND == "tensorflow":
        import tensorflow as tf
        replica = tf.distribute.get_replica_context()
        if replica is not None:
            fast_path_replicas.append(int(tf.get_static_value(
                replica.replica_id_in_sync_group)))
    else:
        fast_path_replicas.append("traced")
    return fast_inner_loop(*args, **kwargs)


scan.fast_inner_loop = recording_fast_inner_loop


def train(parallel):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 12, 3)).astype("float32")
    y = rng.integers(0, 2, 32)
    with parallel:
        model = keras.Sequential([
            keras.Input((12, 3)),
            keras_elm.ELM(8, use_fast_path=True),
            keras.layers.Dense(2),
        ])
        model.compile(
            keras.optimizers.Adam(0.01),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    losses = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: losses.append(logs["loss"]))
    start = model.get_weights()
    del fast_path_replicas[:]
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0,
              callbacks=[record])
    return model, np.array(losses, "float64"), start


def current(parallel):
    if BACKEND == "jax":
        return keras.distribution.distribution() is parallel.distribution
    import tensorflow as tf
    return tf.distribute.get_strategy() is parallel.strategy


def max_diff(a, b):
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b))


one, one_losses, _ = train(contextlib.nullcontext())
parallel = distribute.data_parallel(batch_size=8)
two, two_losses, two_start = train(parallel)
result = {
    "num_replicas": parallel.num_replicas,
    "steps": len(two_losses),
    "loss_diff": float(np.abs(one_losses - two_losses).max()),
    "weight_diff": max_diff(one.get_weights(), two.get_weights()),
    "weights_moved": max_diff(two_start, two.get_weights()),
    "fast_path_replicas": sorted(set(fast_path_replicas)),
    "use_fast_path": two.layers[0].use_fast_path,
}
if BACKEND == "jax":
    result["weight_devices"] = len(
        two.trainable_variables[0].value.sharding.device_set)
result["in_force_after_block"] = current(parallel)
with parallel:
    keras.backend.clear_session()
    result["after_clear_session"] = current(parallel)
    parallel.activate()
    result["after_activate"] = current(parallel)
try:
    distribute.data_parallel(batch_size=7)
except ValueError as error:
    result["batch_error"] = str(error)
task = tasks.get("listops")
stderr = io.StringIO()
try:
    with contextlib.redirect_stderr(stderr):
        tasks.parse_args(tasks.parser(task), task,
                         ["--distribute", "--batch-size", "5"])
except SystemExit as exit:
    result["flag_error"] = [exit.code, stderr.getvalue()]
print("RESULT " + json.dumps(result))
"""


def _skip_unless_multi_device():
    if BACKEND not in MULTI_DEVICE:
        pytest.skip(
            f"data parallelism runs on jax and tensorflow, not {BACKEND}"
        )


def _start_on_two_devices(folder, name, script, *args):
    """Starts `python script args...` with the host split into two devices.

    Its output goes to `<folder>/<name>.out`.
    """
    env = {**os.environ, "KERAS_BACKEND": BACKEND, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if BACKEND == "jax":
        env["XLA_FLAGS"] = (
            env.get("XLA_FLAGS", "")
            + " --xla_force_host_platform_device_count=2"
        )
    with open(folder / f"{name}.out", "w") as output:
        return subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, str(script), *args],
            cwd=folder,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )


def _finish(process, folder, name, timeout=300):
    """Waits for `process`; its output, which must end with exit code 0."""
    process.wait(timeout=timeout)
    output = (folder / f"{name}.out").read_text()
    assert process.returncode == 0, output[-5000:]
    return output


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The CHILD and a `--smoke --distribute` example, started together.

    They run at the same time (one core each) to keep the test time down.
    """
    _skip_unless_multi_device()
    folder = tmp_path_factory.mktemp("distribute")
    (folder / "child.py").write_text(CHILD)
    processes = {
        "example": _start_on_two_devices(
            folder,
            "example",
            os.path.join(ROOT, "examples", "listops.py"),
            "--smoke",
            "--distribute",
            "--output-dir",
            str(folder / "run"),
        ),
        "child": _start_on_two_devices(folder, "child", folder / "child.py"),
    }
    yield folder, processes
    for process in processes.values():
        if process.poll() is None:
            process.kill()


@pytest.fixture(scope="module")
def two_devices(runs):
    """The CHILD's results on this backend."""
    folder, processes = runs
    output = _finish(processes["child"], folder, "child")
    line = [x for x in output.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


def test_two_devices_train_like_one_through_the_fast_path(two_devices):
    assert two_devices["num_replicas"] == 2
    assert two_devices["steps"] == 8
    # Not trivially equal: training moved the weights from their start.
    assert two_devices["weights_moved"] > 1e-3
    assert two_devices["loss_diff"] < 1e-5, two_devices
    assert two_devices["weight_diff"] < 1e-5, two_devices
    # `use_fast_path=True` raises where the fast path cannot run; the
    # recording wrapper shows that it did run.
    assert two_devices["use_fast_path"] is True
    assert two_devices["fast_path_replicas"]


def test_the_batch_is_split_over_both_devices(two_devices):
    if BACKEND == "jax":
        assert two_devices["weight_devices"] == 2
    else:  # each replica ran the XLA-compiled loops
        assert two_devices["fast_path_replicas"] == [0, 1]


def test_the_distribution_outlives_the_block_on_jax_only(two_devices):
    assert two_devices["in_force_after_block"] is (BACKEND == "jax")


def test_activate_restores_the_distribution_after_clear_session(two_devices):
    assert two_devices["after_clear_session"] is False
    assert two_devices["after_activate"] is True


def test_a_batch_that_does_not_split_is_a_clear_error(two_devices):
    message = two_devices["batch_error"]
    for part in ("batch_size=7", "--batch-size", "2 devices", "6 or 8"):
        assert part in message, message
    code, stderr = two_devices["flag_error"]
    assert code == 2
    assert "batch_size=5" in stderr and "4 or 6" in stderr, stderr


def test_an_example_runs_with_smoke_and_distribute(runs):
    folder, processes = runs
    output = _finish(processes["example"], folder, "example")
    assert "data-parallel over 2 devices" in output
    assert "test accuracy" in output and "chance" in output
    assert (folder / "run" / "model.keras").exists()


def test_check_batch_size():
    distribute.check_batch_size(8, 2)
    with pytest.raises(ValueError, match="such as 8 or 12"):
        distribute.check_batch_size(10, 4)
    with pytest.raises(ValueError, match="such as 4"):
        distribute.check_batch_size(3, 4)


def test_without_the_flag_the_examples_use_no_distribution():
    task = tasks.get("listops")
    args = tasks.parser(task).parse_args(["--smoke"])
    assert args.distribute is False
    assert isinstance(tasks.distribution(args), contextlib.nullcontext)


def _only_torch():
    if BACKEND != "torch":
        pytest.skip("runs in the torch test process")


def test_torch_has_no_data_parallel_fit():
    _only_torch()
    for call in (distribute.data_parallel, distribute.list_devices):
        with pytest.raises(ValueError) as error:
            call()
        message = str(error.value)
        for part in (
            "model.fit",
            "torch",
            "examples/torch_ddp.py",
            "Several devices",
        ):
            assert part in message, message


def test_torch_example_with_distribute_exits_saying_why(tmp_path):
    _only_torch()
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "examples", "listops.py"),
            "--smoke",
            "--distribute",
            "--output-dir",
            str(tmp_path),
        ],
        cwd=tmp_path,
        env={
            **os.environ,
            "KERAS_BACKEND": "torch",
            "TF_CPP_MIN_LOG_LEVEL": "3",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "examples/torch_ddp.py" in result.stderr
    assert "Several devices" in result.stderr
    assert "Traceback" not in result.stderr
