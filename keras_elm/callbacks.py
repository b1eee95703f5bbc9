"""Callbacks that make a training run safe to kill and rerun.

A long run (hours, days) is killed sooner or later: by a job scheduler's
time limit, a preempted machine, a user's Ctrl-C. With these callbacks the
same command run again continues where the killed one stopped, and no
kill leaves a damaged file:

- `Backup` (from `keras_elm.backup`) saves the weights and optimizer
  state after every epoch (each file whole or not at all) and resumes
  from the newest one that loads.
- `BestModel` keeps the best model so far, across resumed runs.
- `StopOnNaN` stops a diverged run with an error before anything is saved
  from NaN weights (`TrainingDiverged`).
- `TimeLimit` ends training on time, at the end of a step, so that the
  epoch counts as finished; `StepTimer` says early how long an epoch takes.
- `StopOnInterrupt` makes Ctrl-C stop training at the end of the step,
  keeping the backup of the last finished epoch, and exit with status 130
  (`Interrupted`); a second Ctrl-C quits at once.
- `save_model` is `model.save`, whole or not at all.

`keras_elm.tasks.callbacks` puts them together for the examples.

Example:

```python
import tempfile

import keras
import numpy as np

from keras_elm import callbacks

x, y = np.zeros((8, 3)), np.zeros((8, 1))
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
model.compile("sgd", "mse")
folder = tempfile.mkdtemp()
best = callbacks.BestModel(f"{folder}/best.keras", "val_loss")
model.fit(
    x,
    y,
    validation_data=(x, y),
    epochs=2,
    verbose=0,
    callbacks=[
        callbacks.StopOnNaN(),
        best,
        callbacks.Backup(f"{folder}/backup", best),
        callbacks.TimeLimit(45),
    ],
)
```
"""

import contextlib
import math
import os
import signal
import sys
import threading
import time

import keras
import numpy as np

from keras_elm.backup import Backup  # noqa: F401
from keras_elm.backup import BackupOfAnotherRun  # noqa: F401
from keras_elm.backup import TrainingDiverged
from keras_elm.backup import check_finite as _check_finite
from keras_elm.checks import check_choice
from keras_elm.checks import check_positive_float
from keras_elm.checks import check_positive_int
from keras_elm.data import files


class StepTimer(keras.callbacks.Callback):
    """Prints the measured time of the first steps and the epoch it implies.

    The first step compiles, so it is timed apart; the estimate uses the
    steps after it.

    Args:
        steps_per_epoch: training steps in one epoch.
        timed_steps: steps timed after the first.
    """

    def __init__(self, steps_per_epoch, timed_steps=3):
        super().__init__()
        self.steps_per_epoch = check_positive_int(
            "steps_per_epoch", steps_per_epoch
        )
        self.timed_steps = check_positive_int("timed_steps", timed_steps)
        self.times = []
        self.reported = False

    def on_train_batch_begin(self, batch, logs=None):
        if not self.reported:
            self.times.append(time.perf_counter())

    def on_train_batch_end(self, batch, logs=None):
        if self.reported:
            return
        self.times.append(time.perf_counter())
        steps = len(self.times) // 2
        if steps < min(self.steps_per_epoch, 1 + self.timed_steps):
            return
        first = self.times[1] - self.times[0]
        later = [
            self.times[2 * i + 1] - self.times[2 * i] for i in range(1, steps)
        ]
        per_step = float(np.mean(later)) if later else first
        epoch = first + per_step * (self.steps_per_epoch - 1)
        print(
            f"\n[timing] first step {first:.2f} s (compiles), then "
            f"{per_step:.3f} s a step: about {epoch / 60:.1f} min an epoch",
            flush=True,
        )
        self.reported = True


class TimeLimit(keras.callbacks.Callback):
    """Stops training once `minutes` of wall time have passed since it began.

    Checked after every training step; the epoch in progress ends there, so
    checkpoints and backups see it as finished.

    Args:
        minutes: the training budget, in minutes (> 0).

    Example:

    ```python
    import keras
    import numpy as np

    from keras_elm import callbacks

    x, y = np.zeros((8, 3)), np.zeros((8, 1))
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.TimeLimit(45)])
    ```
    """

    def __init__(self, minutes):
        super().__init__()
        self.minutes = check_positive_float("minutes", minutes)
        self.start = None
        self.stopped_at = None

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()
        self.stopped_at = None

    def on_train_batch_end(self, batch, logs=None):
        elapsed = time.perf_counter() - self.start
        if elapsed >= 60 * self.minutes and self.stopped_at is None:
            self.stopped_at = elapsed
            self.model.stop_training = True
            print(
                f"\n[time limit] {self.minutes:g} min reached after "
                f"{elapsed / 60:.1f} min: stopping",
                flush=True,
            )


class Interrupted(SystemExit):
    """Exits with status 130 (as a shell's Ctrl-C): training was stopped.

    `StopOnInterrupt` prints why before raising it, since a `SystemExit`
    prints nothing with a numeric status.
    """

    def __init__(self):
        super().__init__(130)


class StopOnInterrupt(keras.callbacks.Callback):
    """Ctrl-C stops training at the end of the step, and the run exits 130.

    Python's own Ctrl-C (a `KeyboardInterrupt` raised wherever the program
    is) can be lost: on JAX it often lands while Keras waits for the step's
    results, inside a bare `except` of Keras's log handling, and training
    goes on. While training runs, this callback's SIGINT handler only notes
    the Ctrl-C (and says so at once); at the end of the step training stops
    with `Interrupted` (a `SystemExit` of status 130), so the epoch in
    progress is not counted as finished: no checkpoint or backup is written
    from it, nothing is evaluated, no final model is saved, and `Backup`
    keeps the last finished epoch for the same command to continue from. A
    Ctrl-C that lands after the last step of an epoch (while validating)
    stops once that epoch is saved, one after the last epoch before the
    script goes on. A second Ctrl-C quits at once (Python's
    default action for SIGINT, or the handler that was there before, such
    as a notebook's).

    The handler is installed when training begins and the one before it
    restored when training ends or stops; outside the main thread, where
    Python cannot install one, the callback does nothing. An error that
    ends `fit` otherwise (Keras calls no `on_train_end` then) leaves it
    installed until the next Ctrl-C, which it passes on as above.

    Args:
        backup: the run's `Backup`, named in the message (None: none).

    Example:

    ```python
    import keras
    import numpy as np

    from keras_elm import callbacks

    x, y = np.zeros((8, 3)), np.zeros((8, 1))
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    stop = callbacks.StopOnInterrupt()
    model.fit(x, y, epochs=2, verbose=0, callbacks=[stop])
    ```
    """

    def __init__(self, backup=None):
        super().__init__()
        self.backup = backup
        self.interrupted = False
        self.previous = None
        self.installed = False
        self.epoch = 0

    def handle(self, signum=signal.SIGINT, frame=None):
        """The SIGINT handler: notes the Ctrl-C, and lets the next one quit.

        It writes straight to the file descriptor of stderr: a `print`
        landing inside another write to the same stream (Keras's progress
        bar) would raise.
        """
        # Only noted: setting `model.stop_training` here could end training
        # as if finished (evaluated, saved) when the Ctrl-C lands between
        # an epoch's end and Keras's check of the flag.
        self.interrupted = True
        then = self.previous
        if then is None or then is signal.default_int_handler:
            then = signal.SIG_DFL  # quits at once; KeyboardInterrupt may not
        signal.signal(signal.SIGINT, then)
        with contextlib.suppress(OSError):
            os.write(
                2,
                b"\n[interrupt] Ctrl-C: stopping at the end of this "
                b"step (Ctrl-C again quits at once)\n",
            )

    def on_train_begin(self, logs=None):
        self.interrupted = False
        if threading.current_thread() is not threading.main_thread():
            return
        self.previous = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, self.handle)
        self.installed = True

    def restore(self):
        """Puts back the SIGINT handler of before training."""
        if self.installed:
            self.installed = False
            signal.signal(
                signal.SIGINT,
                self.previous if self.previous is not None else signal.SIG_DFL,
            )

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self._stop_if_interrupted(f"before epoch {epoch + 1}")

    def on_train_batch_end(self, batch, logs=None):
        self._stop_if_interrupted(
            f"at step {batch + 1} of epoch {self.epoch + 1}, which is not "
            "counted as finished"
        )

    def on_epoch_end(self, epoch, logs=None):
        self._stop_if_interrupted(f"after epoch {epoch + 1}")

    def on_train_end(self, logs=None):
        self.restore()
        self._stop_if_interrupted("after the last epoch")

    def _stop_if_interrupted(self, where):
        if not self.interrupted:
            return
        self.restore()
        self.model.stop_training = True
        backup = self.backup
        if backup is not None and backup.backups:
            then = (
                f"the backup in {backup.backup_dir} keeps epoch "
                f"{backup.epoch}: run the same command again to "
                "continue from it"
            )
        elif backup is not None:
            then = "no epoch had finished: there is no backup to continue from"
        else:
            then = "nothing was saved from the epoch in progress"
        print(
            f"\n[interrupt] training stopped by Ctrl-C {where}; {then}",
            file=sys.stderr,
            flush=True,
        )
        raise Interrupted()


def save_model(model, path):
    """`model.save(path)`, whole or not at all.

    The model goes to a temporary `.keras` file in the same folder, which
    is renamed over `path` once complete: a run killed while saving leaves
    the previous file as it was.

    Args:
        model: the model to save.
        path: the `.keras` file.

    Returns:
        `path`.

    Example:

    ```python
    import tempfile

    import keras
    import numpy as np

    from keras_elm import callbacks

    x, y = np.zeros((8, 3)), np.zeros((8, 1))
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    folder = tempfile.mkdtemp()
    callbacks.save_model(model, f"{folder}/model.keras")
    ```
    """
    with files.atomic_path(path) as temporary:
        model.save(temporary)
    return path


class StopOnNaN(keras.callbacks.Callback):
    """Stops training at the first step whose loss is NaN or infinite.

    Unlike `keras.callbacks.TerminateOnNaN`, it stops at once with an error
    (a `TrainingDiverged`, a `SystemExit` whose status is 1): the epoch in
    progress does not end, so no checkpoint or backup is written from
    diverged weights, and the script ends non-zero saying why.

    Example:

    ```python
    import keras
    import numpy as np

    from keras_elm import callbacks

    x, y = np.zeros((8, 3)), np.zeros((8, 1))
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.StopOnNaN()])
    ```
    """

    def __init__(self):
        super().__init__()
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingDiverged(
                f"the loss became {float(loss)} at step {batch + 1} of epoch "
                f"{self.epoch + 1}: training stopped."
            )


class BestModel(keras.callbacks.Callback):
    """Saves the model whenever the monitored value is the best so far.

    As `keras.callbacks.ModelCheckpoint(save_best_only=True)`, with two
    differences: each save is whole or nothing (`save_model`), and the best
    value can be given (`best`), so that a resumed run keeps the best model
    of the runs before it (`Backup` restores it).

    Args:
        filepath: the `.keras` file.
        monitor: the metric of the epoch's logs, e.g. `"val_accuracy"`.
        mode: `"max"`, `"min"`, or `"auto"` (min for a loss, else max).
        best: the best value so far (None: none yet).

    Example:

    ```python
    import tempfile

    import keras
    import numpy as np

    from keras_elm import callbacks

    x, y = np.zeros((8, 3)), np.zeros((8, 1))
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    folder = tempfile.mkdtemp()
    best = callbacks.BestModel(f"{folder}/best.keras", "val_loss")
    model.fit(
        x, y, validation_data=(x, y), epochs=2, verbose=0, callbacks=[best]
    )
    ```
    """

    def __init__(
        self, filepath, monitor="val_accuracy", mode="auto", best=None
    ):
        super().__init__()
        check_choice("mode", mode, ("min", "max", "auto"))
        if mode == "auto":
            mode = "min" if "loss" in monitor else "max"
        self.filepath = filepath
        self.monitor = monitor
        self.mode = mode
        self.best = best
        self.warned = False

    def improves(self, value):
        """Whether `value` beats the best so far (NaN never does)."""
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def on_train_begin(self, logs=None):
        files.remove_stale_temporaries(
            os.path.dirname(os.path.abspath(self.filepath))
        )

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            if not self.warned:
                print(
                    f"warning: no {self.monitor} in the epoch's logs "
                    f"({', '.join(logs or {})}): {self.filepath} is not "
                    "saved",
                    file=sys.stderr,
                    flush=True,
                )
                self.warned = True
            return
        if self.improves(float(value)):
            _check_finite(self.model, f"after epoch {epoch + 1}", logs)
            save_model(self.model, self.filepath)
            self.best = float(value)
