"""Ctrl-C stops training at the end of the step, keeps the backup, exits 130.

In process, `signal.raise_signal` stands for the Ctrl-C; one subprocess
per backend process (JAX, where Keras's log handling used to swallow the
KeyboardInterrupt, and torch) gets a real SIGINT.
"""

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time

import keras
import numpy as np
import pytest

from keras_elm import callbacks
from keras_elm import tasks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKEND = keras.backend.backend()
TASK = tasks.get("pathfinder")


def _args(folder, epochs=3):
    return argparse.Namespace(
        output_dir=str(folder),
        learning_rate=0.05,
        epochs=epochs,
        max_minutes=None,
        seed=0,
    )


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((8, 3)).astype("float32"), rng.integers(0, 2, 8)


def _model(args):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    return tasks.compile_model(model, TASK, args, 4, run_eagerly=True)


class _CtrlC(keras.callbacks.Callback):
    """Sends this process a SIGINT at one step of one epoch, or while
    validating after that epoch's last step (`step=None`)."""

    def __init__(self, epoch, step):
        super().__init__()
        self.at = (epoch, step)
        self.epoch = 0
        self.seen = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.seen.append(epoch)

    def on_train_batch_end(self, batch, logs=None):
        if self.at == (self.epoch, batch):
            signal.raise_signal(signal.SIGINT)

    def on_test_batch_end(self, batch, logs=None):
        if self.at == (self.epoch, None) and batch == 0:
            signal.raise_signal(signal.SIGINT)


def _fit(args, extra=()):
    """The examples' `fit` (4 steps an epoch); the extra callbacks first."""
    return _model(args).fit(
        *_data(),
        validation_data=_data(1),
        epochs=args.epochs,
        batch_size=2,
        shuffle=False,
        verbose=0,
        callbacks=[*extra, *tasks.callbacks(args, 4)],
    )


def _backup_epoch(folder):
    state = json.loads((folder / "backup" / "state.json").read_text())
    return state["backups"][0]["epoch"]


@pytest.mark.parametrize(
    "epoch, step, kept, where",
    [
        (1, 1, 1, "at step 2 of epoch 2, which is not counted as finished"),
        (1, None, 2, "after epoch 2"),  # while validating: the epoch had ended
        (0, 0, None, "at step 1 of epoch 1"),
    ],
)
def test_ctrl_c_stops_at_the_step_keeps_the_backup_and_a_rerun_continues(
    epoch, step, kept, where, tmp_path, capfd
):
    args = _args(tmp_path)
    before = signal.getsignal(signal.SIGINT)
    ctrl_c = _CtrlC(epoch, step)
    with pytest.raises(callbacks.Interrupted) as stop:
        _fit(args, [ctrl_c])
    assert stop.value.code == 130
    assert signal.getsignal(signal.SIGINT) is before  # restored
    assert ctrl_c.seen == list(range(epoch + 1))
    err = capfd.readouterr().err
    assert "[interrupt] Ctrl-C: stopping at the end of this step" in err
    assert f"training stopped by Ctrl-C {where}" in err
    assert not (tmp_path / "model.keras").exists()
    if kept is None:
        assert "no epoch had finished" in err
        assert not (tmp_path / "backup").exists()
        return
    assert f"keeps epoch {kept}: run the same command again" in err
    assert _backup_epoch(tmp_path) == kept
    seen = _CtrlC(None, None)
    _fit(args, [seen])  # the same command again
    assert seen.seen == list(range(kept, 3))
    assert f"resuming after epoch {kept} of 3" in capfd.readouterr().out
    assert not (tmp_path / "backup").exists()  # all epochs done


def test_every_example_fit_stops_on_ctrl_c(tmp_path):
    """`tasks.callbacks` (every example's `fit`) ends with the handler,
    after the saves of the epoch."""
    steps = tasks.callbacks(_args(tmp_path), 4)
    assert isinstance(steps[-1], callbacks.StopOnInterrupt)
    assert steps[-1].backup is next(
        c for c in steps if isinstance(c, callbacks.Backup)
    )


def test_a_ctrl_c_after_the_last_check_of_an_epoch_still_stops(tmp_path, capfd):
    """Before: Keras saw the flag after the epoch's end and finished as if
    training were done, then evaluated and saved the model."""
    if BACKEND != "torch":
        pytest.skip("the callbacks do not depend on the backend: torch only")

    class Late(keras.callbacks.Callback):  # after every check of the epoch
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                signal.raise_signal(signal.SIGINT)

    args = _args(tmp_path, epochs=2)
    model = _model(args)
    with pytest.raises(callbacks.Interrupted):
        model.fit(
            *_data(),
            validation_data=_data(1),
            epochs=2,
            batch_size=2,
            verbose=0,
            callbacks=tasks.callbacks(args, 4) + [Late()],
        )
    assert "training stopped by Ctrl-C after the last epoch" in (
        capfd.readouterr().err
    )


@pytest.mark.parametrize(
    "previous, second",
    [
        (signal.default_int_handler, signal.SIG_DFL),  # a script: quits at once
        (signal.SIG_DFL, signal.SIG_DFL),
        ("custom", "custom"),  # a notebook's own handler gets the second Ctrl-C
    ],
)
def test_a_second_ctrl_c_goes_to_the_default_or_the_handler_before(
    previous, second
):
    if BACKEND != "torch":
        pytest.skip("signals do not depend on the backend: torch only")

    def custom(signum, frame):
        pass

    previous = custom if previous == "custom" else previous
    second = custom if second == "custom" else second
    old = signal.signal(signal.SIGINT, previous)
    try:
        stop = callbacks.StopOnInterrupt()
        stop.set_model(_model(_args("unused")))
        stop.on_train_begin()
        assert signal.getsignal(signal.SIGINT) == stop.handle
        stop.handle()
        assert stop.interrupted and not stop.model.stop_training
        assert signal.getsignal(signal.SIGINT) == second
        with pytest.raises(callbacks.Interrupted):
            stop.on_train_batch_end(0)
        assert stop.model.stop_training
        assert signal.getsignal(signal.SIGINT) == previous
        stop.on_train_begin()  # a run that ends normally restores it too
        stop.on_train_end()
        assert signal.getsignal(signal.SIGINT) == previous
    finally:
        signal.signal(signal.SIGINT, old)


def test_outside_the_main_thread_nothing_is_installed():
    if BACKEND != "torch":
        pytest.skip("signals do not depend on the backend: torch only")
    stop = callbacks.StopOnInterrupt()
    before = signal.getsignal(signal.SIGINT)
    thread = threading.Thread(target=stop.on_train_begin)
    thread.start()
    thread.join()
    assert not stop.installed and signal.getsignal(signal.SIGINT) is before
    stop.on_train_end()
    assert signal.getsignal(signal.SIGINT) is before


_SCRIPT = textwrap.dedent("""
    import argparse, sys, time

    import keras
    import numpy as np

    from keras_elm import tasks

    class Slow(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(0.02)

        def on_epoch_end(self, epoch, logs=None):
            print(f"epoch {epoch + 1} done", flush=True)

    args = argparse.Namespace(output_dir=sys.argv[1], learning_rate=0.05,
                              epochs=1000, max_minutes=None, seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3)).astype("float32")
    y = rng.integers(0, 2, 8)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    tasks.compile_model(model, tasks.get("pathfinder"), args, 4)
    model.fit(x, y, validation_data=(x, y), epochs=args.epochs, batch_size=2,
              verbose=2, callbacks=tasks.callbacks(args, 4) + [Slow()])
    print("evaluated and saved", flush=True)
""")


def test_a_real_ctrl_c_stops_a_training_script_promptly(tmp_path, capsys):
    if BACKEND not in ("jax", "torch"):
        pytest.skip("runs in the jax and torch test processes")
    script = tmp_path / "train.py"
    script.write_text(_SCRIPT)
    out = tmp_path / "out"
    env = {
        **os.environ,
        "KERAS_BACKEND": BACKEND,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    process = subprocess.Popen(
        [sys.executable, str(script), str(out)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = queue.Queue()
    reader = threading.Thread(
        target=lambda: [lines.put(line) for line in process.stdout], daemon=True
    )
    reader.start()
    output = []
    try:
        deadline = time.monotonic() + 120
        while "epoch 2 done\n" not in output:
            assert process.poll() is None, "".join(output)
            output.append(lines.get(timeout=deadline - time.monotonic()))
        process.send_signal(signal.SIGINT)
        sent = time.monotonic()
        status = process.wait(timeout=30)
        stopped_after = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    reader.join(timeout=5)
    while not lines.empty():
        output.append(lines.get())
    text = "".join(output)
    assert status == 130, text[-3000:]
    assert stopped_after < 10, (stopped_after, text[-3000:])
    assert "training stopped by Ctrl-C" in text
    assert "evaluated and saved" not in text and "Traceback" not in text
    kept = _backup_epoch(out)
    assert kept >= 2 and f"keeps epoch {kept}" in text
    # The same run again, here: it continues from the backup.
    args = _args(out, epochs=kept + 1)
    seen = _CtrlC(None, None)
    _fit(args, [seen])
    assert seen.seen == [kept]
    assert (
        f"resuming after epoch {kept} of {kept + 1}" in capsys.readouterr().out
    )
