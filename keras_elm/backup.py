"""`Backup`: the training state after every epoch, and resuming from it.

`Backup` writes the weights and optimizer state after each epoch, each file
whole or not at all, and restores the newest backup that loads when the
same run starts again. Nothing is backed up (or saved by
`keras_elm.callbacks.BestModel`) from weights that are not finite:
`check_finite` stops such a run with `TrainingDiverged`. The callbacks
module imports all of them, so `keras_elm.callbacks.Backup` works as
before.
"""

import contextlib
import json
import math
import os
import shutil
import sys

import keras
import numpy as np

from keras_elm.checks import check_positive_int
from keras_elm.data import files


class TrainingDiverged(SystemExit):
    """Exits non-zero: the loss or the weights became NaN or infinite."""

    def __init__(self, message):
        super().__init__(
            f"error: {message} Nothing of it was saved: best.keras and the "
            "backup are those of the last epoch with finite weights. Lower "
            "--learning-rate, or check the data."
        )


def check_finite(model, where, logs=None):
    """Raises `TrainingDiverged` unless the losses and weights are finite.

    Called before anything is saved, so that no file holds NaN weights.

    Args:
        model: the model whose trainable weights are checked.
        where: when, for the message (`"after epoch 3"`).
        logs: the epoch's logs; every entry whose name ends in `loss` is
            checked (None: none).

    Raises:
        TrainingDiverged: a loss or a weight is NaN or infinite.

    Example:

    ```python
    import keras

    from keras_elm.backup import check_finite

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    check_finite(model, "after epoch 1", {"loss": 0.5, "val_loss": 0.7})
    ```
    """
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
    import tempfile

    import keras
    import numpy as np

    from keras_elm import callbacks

    x, y = np.zeros((8, 3)), np.zeros((8, 1))
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    folder = tempfile.mkdtemp()
    best = callbacks.BestModel(f"{folder}/best.keras", "val_loss")
    backup = callbacks.Backup(f"{folder}/backup", best)
    model.fit(
        x,
        y,
        validation_data=(x, y),
        epochs=2,
        verbose=0,
        callbacks=[best, backup],
    )
    ```
    """

    STATE = "state.json"

    def __init__(self, backup_dir, best_model=None, keep=2, config=None):
        super().__init__()
        self.backup_dir = backup_dir
        self.best_model = best_model
        self.keep = check_positive_int("keep", keep)
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
        check_finite(self.model, f"after epoch {epoch + 1}", logs)
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
