"""Callbacks that make a training run safe to kill and rerun.

A long run (hours, days) is killed sooner or later: by a job scheduler's
time limit, a preempted machine, a user's Ctrl-C. With these callbacks the
same command run again continues where the killed one stopped, and no
kill leaves a damaged file:

- `Backup` saves the weights and optimizer state after every epoch (each
  file whole or not at all) and resumes from the newest one that loads.
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
from keras_elm import callbacks

best = callbacks.BestModel("runs/x/best.keras", "val_accuracy")
model.fit(x, y, validation_data=(x_val, y_val), epochs=100,
          callbacks=[callbacks.StopOnNaN(), best,
                     callbacks.Backup("runs/x/backup", best),
                     callbacks.TimeLimit(45)])
```
"""

import contextlib
import json
import math
import os
import shutil
import signal
import sys
import threading
import time

import keras
import numpy as np

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
        self.steps_per_epoch = steps_per_epoch
        self.timed_steps = timed_steps
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
    model.fit(x, y, epochs=100, callbacks=[callbacks.TimeLimit(45)])
    ```
    """

    def __init__(self, minutes):
        super().__init__()
        if isinstance(minutes, bool) or not isinstance(
            minutes, (int, float, np.integer, np.floating)
        ):
            raise TypeError(
                f"`minutes` must be a number. Received: minutes={minutes!r} "
                f"of type {type(minutes).__name__}"
            )
        if not (math.isfinite(minutes) and minutes > 0):
            raise ValueError(
                f"`minutes` must be a finite number > 0. Received: "
                f"minutes={minutes!r}"
            )
        self.minutes = float(minutes)
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
    model.fit(x, y, epochs=100, callbacks=[callbacks.StopOnInterrupt()])
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
    callbacks.save_model(model, "runs/listops/model.keras")
    ```
    """
    with files.atomic_path(path) as temporary:
        model.save(temporary)
    return path


class TrainingDiverged(SystemExit):
    """Exits non-zero: the loss or the weights became NaN or infinite."""

    def __init__(self, message):
        super().__init__(
            f"error: {message} Nothing of it was saved: best.keras and the "
            "backup are those of the last epoch with finite weights. Lower "
            "--learning-rate, or check the data."
        )


def _check_finite(model, where, logs=None):
    """Raises `TrainingDiverged` if the epoch's losses or the weights are
    not finite."""
    for name, value in (logs or {}).items():
        if (
            name.endswith("loss")
            and value is not None
            and not math.isfinite(float(value))
        ):
            raise TrainingDiverged(f"the {name} is {float(value)} {where}.")
    for weight in model.trainable_weights:
        if not np.isfinite(keras.ops.convert_to_numpy(weight)).all():
            raise TrainingDiverged(
                f"the weight {weight.path} holds NaN or inf {where}."
            )


class StopOnNaN(keras.callbacks.Callback):
    """Stops training at the first step whose loss is NaN or infinite.

    Unlike `keras.callbacks.TerminateOnNaN`, it stops at once with an error
    (a `TrainingDiverged`, a `SystemExit` whose status is 1): the epoch in
    progress does not end, so no checkpoint or backup is written from
    diverged weights, and the script ends non-zero saying why.

    Example:

    ```python
    model.fit(x, y, epochs=10, callbacks=[callbacks.StopOnNaN()])
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
    model.fit(x, y, validation_data=(x_val, y_val), epochs=10,
              callbacks=[callbacks.BestModel("best.keras", "val_accuracy")])
    ```
    """

    def __init__(
        self, filepath, monitor="val_accuracy", mode="auto", best=None
    ):
        super().__init__()
        if mode == "auto":
            mode = "min" if "loss" in monitor else "max"
        if mode not in ("min", "max"):
            raise ValueError(
                f"`mode` must be 'min', 'max' or 'auto'. "
                f"Received: mode={mode!r}"
            )
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


class Backup(keras.callbacks.Callback):
    """Backs up the training state after every epoch, and resumes from it.

    Keras's `BackupAndRestore`, made safe to kill. After each epoch the
    weights and optimizer state go to `epoch-<N>.weights.h5`, written under
    a temporary name and renamed, then `state.json` (written the same way)
    names it, with the epoch and the best value of `best_model`; the
    previous backup is kept too. A kill at any moment leaves a complete
    backup. When training starts again, the newest backup that loads is
    restored (the epoch to go on from, the weights, the optimizer, the
    best value); one that does not load is named in a warning and the one
    before it is tried, or training starts over.

    The backup is deleted when training has run all its epochs; a run
    stopped early (`TimeLimit`, Ctrl-C with `StopOnInterrupt`, a kill)
    keeps it, so the same command run again continues.

    With `config` (the settings the model and data follow, e.g. the
    example's flags), the backup remembers it: a backup of another
    configuration is never restored, and training stops at once with
    `BackupOfAnotherRun`, naming what differs (`config_mismatch` says the
    same before any work). It is not deleted: pass another folder, or
    delete it to start over.

    Args:
        backup_dir: the folder, for this callback only.
        best_model: a `BestModel` whose best value is backed up and
            restored with the rest (None: none).
        keep: backups kept (2: the newest and the one before it).
        config: a dict of JSON values, stored with the backup and
            compared on resuming (None: none, anything is restored that
            loads).

    Example:

    ```python
    best = callbacks.BestModel("runs/x/best.keras")
    model.fit(x, y, validation_data=(x_val, y_val), epochs=10,
              callbacks=[best, callbacks.Backup("runs/x/backup", best)])
    ```
    """

    STATE = "state.json"

    def __init__(self, backup_dir, best_model=None, keep=2, config=None):
        super().__init__()
        self.backup_dir = backup_dir
        self.best_model = best_model
        self.keep = keep
        # Through JSON, as it will be read back.
        self.config = None if config is None else json.loads(json.dumps(config))
        self.backups = []
        self.epoch = 0

    @property
    def state_path(self):
        return os.path.join(self.backup_dir, self.STATE)

    def read_backups(self):
        """The backups listed in `state.json`, newest first ([] if none).

        A `state.json` that cannot be read is named in a warning, and Keras's
        own `latest.weights.h5` (of a run before this callback) is listed
        where there is one.
        """
        try:
            with open(self.state_path, encoding="utf-8") as f:
                backups = json.load(f)["backups"]
            if not all(
                isinstance(b["epoch"], int)
                and b["epoch"] >= 0
                and isinstance(b["weights"], str)
                for b in backups
            ):
                raise ValueError("an entry without a valid epoch and file")
            return backups
        except FileNotFoundError:
            return self._keras_backup()
        except (OSError, ValueError, KeyError, TypeError) as error:
            _warn(
                f"the backup state {self.state_path} cannot be read "
                f"({error}): it is ignored"
            )
            return []

    def config_mismatch(self):
        """What differs between `config` and the backup's, or None.

        Returns:
            None when there is no backup, it holds no configuration (one
            of a run before configurations were stored), or the same one;
            else a one-line message naming the folder and each differing
            setting (as a flag: `--dt 0.002 there, 0.02 now`) and saying
            what to do.
        """
        if self.config is None:
            return None
        try:
            with open(self.state_path, encoding="utf-8") as f:
                saved = json.load(f).get("config")
        except (OSError, ValueError, AttributeError):
            return None  # no backup, or one `read_backups` will name
        if not isinstance(saved, dict) or saved == self.config:
            return None
        differences = "; ".join(
            f"--{name.replace('_', '-')} {_flag_value(saved.get(name))} "
            f"there, {_flag_value(self.config.get(name))} now"
            for name in sorted(set(saved) | set(self.config))
            if saved.get(name) != self.config.get(name)
        )
        return (
            f"the backup in {self.backup_dir} is of a run with other "
            f"settings ({differences}), so it is not restored: pass "
            "another --output-dir, or delete that folder to start over"
        )

    def _keras_backup(self):
        try:
            with open(
                os.path.join(self.backup_dir, "training_metadata.json")
            ) as f:
                epoch = json.load(f)["epoch"]
        except (OSError, ValueError, KeyError, TypeError):
            return []
        return [dict(epoch=int(epoch), weights="latest.weights.h5")]

    def _variables(self):
        optimizer = self.model.optimizer
        return list(self.model.weights) + (
            list(optimizer.variables) if optimizer is not None else []
        )

    def on_train_begin(self, logs=None):
        self.epoch = 0
        self.backups = []
        mismatch = self.config_mismatch()
        if mismatch is not None:
            raise BackupOfAnotherRun(mismatch)
        files.remove_stale_temporaries(self.backup_dir)
        backups = self.read_backups()
        if not backups:
            return
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        variables = self._variables()
        start = [keras.ops.convert_to_numpy(v) for v in variables]
        for index, backup in enumerate(backups):
            path = os.path.join(self.backup_dir, backup["weights"])
            try:
                self.model.load_weights(path)
            except Exception as error:  # h5py's, Keras's: any unreadable file
                for variable, value in zip(variables, start):
                    variable.assign(value)  # undo a partial load
                then = (
                    "trying the backup before it"
                    if index + 1 < len(backups)
                    else "starting over from epoch 1"
                )
                _warn(
                    f"the backup {path} cannot be restored "
                    f"({type(error).__name__}: {_first_line(error)}); "
                    f"{then}"
                )
                continue
            self.backups = backups[index:]
            self.epoch = backup["epoch"]
            best = backup.get("best")
            if self.best_model is not None and best is not None:
                self.best_model.best = float(best)
            # `_initial_epoch` is private to Keras, but it is where Keras's
            # own `BackupAndRestore` sets the epoch to go on from (`fit`
            # reads it after `on_train_begin`); no public API does this.
            self.model._initial_epoch = self.epoch
            print(
                f"resuming after epoch {self.epoch} of "
                f"{self.params.get('epochs')} from the backup {path}"
                + (
                    f" (best {self.best_model.monitor} so far {best:.4g})"
                    if self.best_model is not None and best is not None
                    else ""
                ),
                flush=True,
            )
            return

    def on_epoch_end(self, epoch, logs=None):
        _check_finite(self.model, f"after epoch {epoch + 1}", logs)
        self.epoch = epoch + 1
        os.makedirs(self.backup_dir, exist_ok=True)
        name = f"epoch-{self.epoch}.weights.h5"
        with files.atomic_path(
            os.path.join(self.backup_dir, name)
        ) as temporary:
            self.model.save_weights(temporary)
        best = getattr(self.best_model, "best", None)
        entry = dict(
            epoch=self.epoch,
            weights=name,
            best=best if best is not None and math.isfinite(best) else None,
        )
        self.backups = [entry] + [
            b for b in self.backups if b["weights"] != name
        ][: self.keep - 1]
        state = {"backups": self.backups}
        if self.config is not None:
            state["config"] = self.config
        with files.atomic_write(self.state_path, "w", encoding="utf-8") as f:
            json.dump(state, f, indent=1)
        kept = {self.STATE, *(b["weights"] for b in self.backups)}
        for old in os.listdir(self.backup_dir):
            if old not in kept and not files.is_temporary(old):
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(self.backup_dir, old))

    def on_train_end(self, logs=None):
        epochs = self.params.get("epochs")
        if epochs is not None and self.epoch >= epochs:
            shutil.rmtree(self.backup_dir, ignore_errors=True)
        elif self.backups:
            print(
                f"training stopped after epoch {self.epoch} of {epochs}: "
                f"the backup in {self.backup_dir} is kept, and the same "
                "command run again continues from it",
                flush=True,
            )


class BackupOfAnotherRun(SystemExit):
    """Exits non-zero: the backup is of a run with other settings."""

    def __init__(self, message):
        super().__init__(f"error: {message}")


def _flag_value(value):
    """A flag's value as a message shows it: on/off, unset, or the value."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return "unset" if value is None else str(value)


def _first_line(error, limit=200):
    """An error's message, cut to its first line (Keras's can be pages)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return text if len(text) <= limit else text[:limit] + "..."


def _warn(message):
    print(f"warning: {message}", file=sys.stderr, flush=True)
