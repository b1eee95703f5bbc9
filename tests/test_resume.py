"""Training runs never lose work: kills at every write, resumes, NaN stops.

A tiny Dense model trained without shuffling is deterministic, so a run
that is interrupted and run again must end with the weights of a run that
was never interrupted.
"""

import argparse
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_elm import callbacks
from keras_elm import tasks
from tests.helpers import EpochsSeen

TASK = tasks.get("pathfinder")
BACKEND = keras.backend.backend()
EPOCHS = 3
STEPS = 2  # 8 samples, batch 4


class Killed(BaseException):
    """Stands for a SIGKILL: nothing catches it."""


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((8, 3)).astype("float32"), rng.integers(0, 2, 8)


def _model(args):
    keras.utils.set_random_seed(0)  # the same start in every run
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    # Eager steps: what is tested is the files, and compiling each run's
    # model would cost more than its training.
    return tasks.compile_model(model, TASK, args, STEPS, run_eagerly=True)


def _args(folder, **flags):
    flags = {
        **dict(learning_rate=0.05, epochs=EPOCHS, max_minutes=None),
        **flags,
    }
    return argparse.Namespace(output_dir=str(folder), **flags)


class _KillAt(keras.callbacks.Callback):
    """Kills the run at the end of epoch `epoch` (after the saves)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise Killed


def _fit(args, extra=(), epochs=EPOCHS):
    """One run of the example's `fit`; returns the model and its epochs."""
    model = _model(args)
    seen = EpochsSeen()
    x, y = _data()
    try:
        model.fit(
            x,
            y,
            validation_data=_data(1),
            epochs=epochs,
            batch_size=4,
            shuffle=False,
            verbose=0,
            callbacks=tasks.callbacks(args, STEPS) + [seen, *extra],
        )
    except Killed:
        pass
    return model, seen.seen


def _weights(model):
    return [
        keras.ops.convert_to_numpy(v)
        for v in model.weights + model.optimizer.variables
    ]


def _assert_same(a, b):
    for x, y in zip(_weights(a), _weights(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    model, seen = _fit(_args(tmp_path_factory.mktemp("whole")))
    assert seen == [0, 1, 2]
    return model


def _torch_only():
    """The kinds of damage to the files run in one backend's process: what
    they test is the files, which every backend writes with the same code
    (the resume itself is tested in every backend)."""
    if BACKEND != "torch":
        pytest.skip("runs in the torch test process")


def _dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_rerun_ends_with_the_weights_of_a_run_never_interrupted(
    tmp_path, uninterrupted, capsys
):
    args = _args(tmp_path)
    _, seen = _fit(args, [_KillAt(1)])
    assert seen == [0, 1]
    model, seen = _fit(args)
    assert seen == [2]
    _assert_same(model, uninterrupted)
    assert "resuming after epoch 2" in capsys.readouterr().out
    assert not (tmp_path / "backup").exists()  # all epochs done


def _kill_in(monkeypatch, method, after_bytes=100):
    """`keras.Model.<method>` writes part of its file, then the run dies."""
    original = getattr(keras.Model, method)
    kills = []

    def dying(self, filepath, *args, **kwargs):
        original(self, filepath, *args, **kwargs)
        with open(filepath, "r+b") as f:
            f.truncate(after_bytes)
        kills.append(filepath)
        raise Killed

    monkeypatch.setattr(keras.Model, method, dying)
    return kills


@pytest.mark.parametrize("write", ["backup", "best"])
def test_a_kill_during_a_save_leaves_a_rerun_that_continues(
    write, tmp_path, uninterrupted, monkeypatch
):
    _torch_only()
    args = _args(tmp_path)
    _fit(args, [_KillAt(0)])  # a good backup and best.keras of epoch 1
    state_path = tmp_path / "backup" / "state.json"
    if write == "best":  # epoch 2 is then the best: best.keras is saved
        state = json.loads(state_path.read_text())
        state["backups"][0]["best"] = -1.0
        state_path.write_text(json.dumps(state))
    best = (tmp_path / "best.keras").read_bytes()
    with monkeypatch.context() as patch:
        kills = _kill_in(patch, "save_weights" if write == "backup" else "save")
        _fit(args, [_KillAt(1)])
    assert kills, "no save was killed"
    # What a SIGKILL leaves besides: a half-written temporary of a dead
    # process, in each folder the runs write.
    pid = _dead_pid()
    for folder, name in (
        (tmp_path / "backup", "epoch-2.weights.h5"),
        (tmp_path, "best.keras"),
    ):
        suffix = ".weights.h5" if name.endswith(".h5") else ".keras"
        (folder / f".{name}.{pid}.0a1b.tmp{suffix}").write_bytes(b"HDF\x00")
    # The killed save of epoch 2 left the files of epoch 1 (best.keras
    # is saved before the backup: a better epoch 2 may be in it, whole).
    state = json.loads(state_path.read_text())
    assert [b["epoch"] for b in state["backups"]] == [1]
    if write == "best":
        assert (tmp_path / "best.keras").read_bytes() == best
    keras.saving.load_model(tmp_path / "best.keras")
    model, seen = _fit(args)
    assert seen == [1, 2]
    _assert_same(model, uninterrupted)
    assert not list(tmp_path.rglob(".*.tmp*")), "stale temporaries"
    keras.saving.load_model(tmp_path / "best.keras")
    if write == "best":  # saved again by the rerun
        assert (tmp_path / "best.keras").read_bytes() != best


def test_a_kill_while_saving_the_final_model_keeps_the_old_one(
    tmp_path, monkeypatch
):
    _torch_only()
    args = _args(tmp_path)
    model = _model(args)
    path = tmp_path / "model.keras"
    callbacks.save_model(model, path)
    before = path.read_bytes()
    model.layers[-1].kernel.assign(np.ones((3, 2)))
    with monkeypatch.context() as patch:
        _kill_in(patch, "save")
        with pytest.raises(Killed):
            callbacks.save_model(model, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.keras"]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "delete"])
def test_a_damaged_backup_falls_back_to_the_one_before(
    damage, tmp_path, uninterrupted, capsys
):
    _torch_only()
    args = _args(tmp_path)
    _fit(args, [_KillAt(1)])  # backups of epochs 1 and 2
    newest = tmp_path / "backup" / "epoch-2.weights.h5"
    if damage == "truncate":
        newest.write_bytes(newest.read_bytes()[:300])
    elif damage == "garbage":
        newest.write_bytes(os.urandom(2000))
    elif damage == "empty":
        newest.write_bytes(b"")
    else:
        newest.unlink()
    model, seen = _fit(args)
    assert seen == [1, 2]
    _assert_same(model, uninterrupted)
    err = capsys.readouterr().err
    assert f"the backup {newest} cannot be restored" in err
    assert "trying the backup before it" in err


def test_no_backup_that_loads_means_starting_over_with_a_warning(
    tmp_path, uninterrupted, capsys
):
    _torch_only()
    args = _args(tmp_path)
    _fit(args, [_KillAt(1)])
    backup = tmp_path / "backup"
    for path in backup.glob("*.weights.h5"):
        path.write_bytes(b"not hdf5")
    model, seen = _fit(args)
    assert seen == [0, 1, 2]
    _assert_same(model, uninterrupted)
    err = capsys.readouterr().err
    assert "starting over from epoch 1" in err and str(backup) in err


@pytest.mark.parametrize(
    "text",
    [
        '{"backups": [{"epoch": ',
        "[]",
        "",
        '{"backups": [{"epoch": -1, "weights": 3}]}',
    ],
)
def test_a_state_file_that_cannot_be_read_is_named_and_ignored(
    text, tmp_path, capsys
):
    (tmp_path / "state.json").write_text(text)
    assert callbacks.Backup(str(tmp_path)).read_backups() == []
    assert str(tmp_path / "state.json") in capsys.readouterr().err


def test_a_backup_of_keras_backup_and_restore_is_continued(
    tmp_path, uninterrupted
):
    """An output folder of a run before `callbacks.Backup` (Keras's layout)."""
    _torch_only()
    args = _args(tmp_path)
    model = _model(args)
    with pytest.raises(Killed):
        model.fit(
            *_data(),
            validation_data=_data(1),
            epochs=EPOCHS,
            batch_size=4,
            shuffle=False,
            verbose=0,
            callbacks=[
                keras.callbacks.BackupAndRestore(str(tmp_path / "backup")),
                _KillAt(1),
            ],
        )
    assert (tmp_path / "backup" / "latest.weights.h5").exists()
    model, seen = _fit(args)
    assert seen == [2]
    _assert_same(model, uninterrupted)


def test_a_backup_of_another_model_is_not_restored(tmp_path, capsys):
    _torch_only()
    args = _args(tmp_path)
    _fit(args, [_KillAt(0)])
    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,))
    other = keras.Model(inputs, keras.layers.Dense(5)(inputs))
    tasks.compile_model(other, TASK, args, STEPS)
    start = _weights(other)
    seen = EpochsSeen()
    with pytest.raises(Killed):
        other.fit(
            *_data(),
            epochs=1,
            batch_size=4,
            verbose=0,
            callbacks=[
                callbacks.Backup(str(tmp_path / "backup")),
                seen,
                _KillAt(0),
            ],
        )
    assert seen.seen == [0]  # from the start
    assert "cannot be restored" in capsys.readouterr().err
    assert not np.allclose(start[0], _weights(other)[0])  # it trained


def test_a_time_limit_keeps_the_backup_and_the_rerun_continues(
    tmp_path, uninterrupted, capsys
):
    args = _args(tmp_path, max_minutes=1e-9)
    model, seen = _fit(args)
    assert seen == [0]  # stopped after its first step
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 1
    out = capsys.readouterr().out
    assert "[time limit]" in out and "backup" in out and "is kept" in out
    state = json.loads((tmp_path / "backup" / "state.json").read_text())
    assert state["backups"][0]["epoch"] == 1
    args.max_minutes = None
    model, seen = _fit(args)
    assert seen == [1, 2]  # the next epoch, not epoch 1 again
    # One step of epoch 1, then two whole epochs.
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 5
    assert not (tmp_path / "backup").exists()


def test_best_model_survives_a_resume(tmp_path):
    args = _args(tmp_path)
    _fit(args, [_KillAt(0)])
    state_path = tmp_path / "backup" / "state.json"
    state = json.loads(state_path.read_text())
    state["backups"][0]["best"] = 2.0  # better than any accuracy
    state_path.write_text(json.dumps(state))
    best = (tmp_path / "best.keras").read_bytes()
    model = _model(args)
    checkpoints = tasks.callbacks(args, STEPS)
    model.fit(
        *_data(),
        validation_data=_data(1),
        epochs=EPOCHS,
        batch_size=4,
        verbose=0,
        callbacks=checkpoints,
    )
    assert (tmp_path / "best.keras").read_bytes() == best
    best_model = next(
        c for c in checkpoints if isinstance(c, callbacks.BestModel)
    )
    assert best_model.best == 2.0


@pytest.mark.parametrize(
    "mode, values, saved",
    [
        ("max", [0.5, 0.4, 0.6, float("nan")], [0, 2]),
        ("min", [0.5, 0.4, 0.6, float("inf")], [0, 1]),
    ],
)
def test_best_model_saves_only_improvements(
    mode, values, saved, tmp_path, monkeypatch
):
    calls = []
    monkeypatch.setattr(
        callbacks, "save_model", lambda model, path: calls.append(epoch)
    )
    best = callbacks.BestModel(str(tmp_path / "best.keras"), "score", mode=mode)
    best.set_model(_model(_args(tmp_path)))
    for epoch, value in enumerate(values):
        best.on_epoch_end(epoch, {"score": value})
    assert calls == saved
    best = callbacks.BestModel("b.keras", "val_loss", best=0.1)
    assert best.mode == "min" and not best.improves(0.2)


def test_a_nan_loss_stops_the_run_with_an_error_and_saves_nothing(tmp_path):
    args = _args(tmp_path)
    _fit(args, [_KillAt(0)])
    best = (tmp_path / "best.keras").read_bytes()
    state = (tmp_path / "backup" / "state.json").read_text()

    class Poison(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            kernel = self.model.layers[-1].kernel
            kernel.assign(np.full(kernel.shape, np.nan))

    with pytest.raises(callbacks.TrainingDiverged) as error:
        _fit(args, [Poison()])
    assert error.value.code != 0
    assert "loss became nan at step 1 of epoch 2" in str(error.value.code)
    assert (tmp_path / "best.keras").read_bytes() == best
    assert (tmp_path / "backup" / "state.json").read_text() == state


def test_weights_that_are_not_finite_are_never_saved(tmp_path):
    model = _model(_args(tmp_path))
    model.layers[-1].bias.assign(np.array([np.inf, 0.0]))
    splits = {split: _data() for split in ("train", "val", "test")}
    with pytest.raises(callbacks.TrainingDiverged, match="holds NaN or inf"):
        tasks.report(TASK, model, splits, _args(tmp_path, batch_size=4))
    assert not (tmp_path / "model.keras").exists()
    backup = callbacks.Backup(str(tmp_path / "backup"))
    backup.set_model(model)
    with pytest.raises(callbacks.TrainingDiverged, match="after epoch 3"):
        backup.on_epoch_end(2, {"loss": 0.5})
    assert not (tmp_path / "backup").exists()


def test_files_written_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        args = _args(tmp_path)
        _fit(args, [_KillAt(0)])
        for path in (
            tmp_path / "best.keras",
            tmp_path / "backup" / "state.json",
            tmp_path / "backup" / "epoch-1.weights.h5",
        ):
            assert (os.stat(path).st_mode & 0o777) == 0o644, path
    finally:
        os.umask(old)


# --- a backup of a run with other flags ---------------------------------------


def test_a_backup_of_other_flags_stops_the_run_and_is_kept(tmp_path, capsys):
    args = _args(tmp_path, seed=0, smoke=False, dt=0.002)
    _fit(args, [_KillAt(0)])
    state = (tmp_path / "backup" / "state.json").read_text()
    assert json.loads(state)["config"] == dict(seed=0, smoke=False, dt=0.002)
    other = _args(tmp_path, seed=0, smoke=True, dt=0.02)
    with pytest.raises(callbacks.BackupOfAnotherRun) as error:
        _fit(other)
    message = error.value.code
    assert message.startswith("error: ") and "\n" not in message
    assert str(tmp_path / "backup") in message
    assert "--dt 0.002 there, 0.02 now" in message
    assert "--smoke off there, on now" in message and "--seed" not in message
    assert "another --output-dir" in message
    assert (tmp_path / "backup" / "state.json").read_text() == state
    # What does not change the model or data may change: it continues.
    model, seen = _fit(
        _args(
            tmp_path,
            seed=0,
            smoke=False,
            dt=0.002,
            learning_rate=0.01,
            batch_size=2,
            max_minutes=100.0,
        )
    )
    assert seen == [1, 2]
    assert "resuming after epoch 1 of 3" in capsys.readouterr().out


@pytest.mark.parametrize(
    "saved, config, differs",
    [
        (None, {"seed": 1}, False),  # a backup of before configurations
        ({"seed": 1}, None, False),  # a Backup given none
        ({"seed": 1}, {"seed": 1}, False),
        ({"seed": 1, "max_length": 60}, {"seed": 1}, True),  # a flag gone
        ({"data_dir": None}, {"data_dir": "/d"}, True),
    ],
)
def test_config_mismatch(saved, config, differs, tmp_path):
    _torch_only()
    state = {"backups": [{"epoch": 1, "weights": "epoch-1.weights.h5"}]}
    if saved is not None:
        state["config"] = saved
    (tmp_path / "state.json").write_text(json.dumps(state))
    message = callbacks.Backup(str(tmp_path), config=config).config_mismatch()
    assert (message is not None) == differs
    if differs:
        assert "unset there" in message or "unset now" in message
    assert (
        callbacks.Backup(
            str(tmp_path / "none"), config=config
        ).config_mismatch()
        is None
    )
