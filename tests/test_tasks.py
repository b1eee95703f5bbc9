"""The task registry and the examples' plumbing: flags, resuming, reports."""

import argparse
import json
import os
import stat
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_elm import callbacks
from keras_elm import flags
from keras_elm import tasks
from keras_elm.data import files
from tests.helpers import EpochsSeen


def test_registry_has_the_image_tasks():
    for name in ("pathfinder", "pathfinder_x", "image"):
        task = tasks.get(name)
        assert task.name == name and task.learning_rate == 2e-4
    assert tasks.get("pathfinder_x").batch_size == 768
    assert tasks.get("image").chance == 0.1
    with pytest.raises(ValueError, match="Unknown task 'pathfindr'"):
        tasks.get("pathfindr")


def test_no_flags_mean_the_paper_recipe():
    task = tasks.get("pathfinder")
    args = tasks.parse_args(tasks.parser(task, num_samples=200_000), task, [])
    assert (args.epochs, args.batch_size, args.num_samples) == (
        300,
        384,
        200_000,
    )
    assert tasks.model_overrides(task, args) == {}


def test_smoke_flags():
    task = tasks.get("image")
    args = tasks.parse_args(
        tasks.parser(task), task, ["--smoke", "--epochs", "2"]
    )
    assert args.epochs == 2 and args.batch_size == tasks.SMOKE["batch_size"]
    assert tasks.model_overrides(task, args) == tasks.SMOKE_ELM


def test_bad_flag_values_exit_with_a_message(capsys):
    task = tasks.get("image")
    with pytest.raises(SystemExit):
        tasks.parse_args(tasks.parser(task), task, ["--batch-size", "0"])
    assert (
        "argument --batch-size: must be an integer >= 1"
        in capsys.readouterr().err
    )


def test_image_without_data_says_which_files(tmp_path):
    task = tasks.get("image")
    args = tasks.parse_args(
        tasks.parser(task), task, ["--output-dir", str(tmp_path)]
    )
    with pytest.raises(SystemExit, match="--data-dir.*data_batch_1") as error:
        task.load_data(args)
    assert error.value.code != 0


def _tiny_model():
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(2)(inputs))


class _Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt


def test_an_interrupted_run_resumes_after_its_last_epoch(tmp_path):
    args = argparse.Namespace(
        output_dir=str(tmp_path), learning_rate=0.01, epochs=4
    )
    task = tasks.get("pathfinder")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 3)), rng.integers(0, 2, 8)

    def run(extra):
        model = tasks.compile_model(_tiny_model(), task, args, 2)
        epochs = EpochsSeen()
        try:
            model.fit(
                x,
                y,
                validation_data=(x, y),
                epochs=4,
                batch_size=4,
                verbose=0,
                callbacks=tasks.callbacks(args, 2) + [epochs] + extra,
            )
        except KeyboardInterrupt:
            pass
        return model, epochs.seen

    _, first = run([_Interrupt()])
    assert first == [0, 1]
    model, second = run([])
    assert second == [2, 3]
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 8
    assert (tmp_path / "best.keras").exists()


def test_step_timer_reports_an_epoch_estimate(capsys):
    timer = callbacks.StepTimer(steps_per_epoch=10, timed_steps=2)
    for batch in range(4):
        timer.on_train_batch_begin(batch)
        timer.on_train_batch_end(batch)
    out = capsys.readouterr().out
    assert out.count("[timing]") == 1 and "min an epoch" in out


def test_time_limit_stops_training_and_the_flag_adds_it(tmp_path, capsys):
    task = tasks.get("pathfinder")
    args = tasks.parse_args(
        tasks.parser(task),
        task,
        [
            "--output-dir",
            str(tmp_path),
            "--max-minutes",
            "1e-9",
            "--learning-rate",
            "0.01",
            "--epochs",
            "5",
        ],
    )
    limits = [
        c
        for c in tasks.callbacks(args, 2)
        if isinstance(c, callbacks.TimeLimit)
    ]
    assert len(limits) == 1
    model = tasks.compile_model(_tiny_model(), task, args, 2)
    epochs = EpochsSeen()
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 3)), rng.integers(0, 2, 8)
    model.fit(
        x, y, epochs=5, batch_size=4, verbose=0, callbacks=limits + [epochs]
    )
    assert epochs.seen == [0]  # stopped after the first step's epoch
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 1
    assert "[time limit]" in capsys.readouterr().out
    # Without the flag, no limit.
    args = tasks.parse_args(
        tasks.parser(task), task, ["--output-dir", str(tmp_path)]
    )
    assert not any(
        isinstance(c, callbacks.TimeLimit) for c in tasks.callbacks(args, 2)
    )


@pytest.mark.parametrize("value", ["0", "-3", "nan", "inf"])
def test_max_minutes_must_be_positive(value, capsys):
    task = tasks.get("pathfinder")
    with pytest.raises(SystemExit):
        tasks.parse_args(tasks.parser(task), task, ["--max-minutes", value])
    assert (
        "argument --max-minutes: must be a finite number > 0"
        in capsys.readouterr().err
    )
    with pytest.raises(ValueError, match="`minutes`"):
        callbacks.TimeLimit(float(value))


@pytest.mark.parametrize("value", ["5", None, True, [5]])
def test_time_limit_minutes_of_another_type(value):
    with pytest.raises(TypeError, match="`minutes` must be a number"):
        callbacks.TimeLimit(value)


def test_majority_accuracy():
    splits = {
        "train": (None, np.array([3, 3, 1, 3])),
        "test": (None, np.array([3, 1, 1, 0])),
    }
    assert tasks.majority_accuracy(splits) == 0.25


@pytest.mark.parametrize("distribute", [False, True])
def test_splits_are_cut_to_a_multiple_of_the_devices_under_distribute(
    distribute, monkeypatch, capsys
):
    monkeypatch.setattr(
        tasks.distribute, "list_devices", lambda: ["a", "b", "c"]
    )
    pairs = [np.arange(10), np.arange(10) + 100]
    load = tasks.even_over_devices(
        lambda args: {
            "train": (np.arange(12), np.arange(12)),
            "val": (pairs, np.arange(10)),
            "test": (np.arange(7)[:, None], np.arange(7)),
        }
    )
    splits = load(argparse.Namespace(distribute=distribute))
    sizes = {name: len(y) for name, (_, y) in splits.items()}
    if not distribute:
        assert sizes == {"train": 12, "val": 10, "test": 7}
        return
    assert sizes == {"train": 12, "val": 9, "test": 6}
    (a, b), _ = splits["val"]
    np.testing.assert_array_equal(b, np.arange(9) + 100)
    assert splits["test"][0].shape == (6, 1)
    out = capsys.readouterr().out
    assert "val split keeps 9 of its 10" in out and "test split keeps 6" in out
    assert "train split" not in out


def test_a_split_smaller_than_the_devices_is_an_error(monkeypatch):
    monkeypatch.setattr(tasks.distribute, "list_devices", lambda: ["a", "b"])
    load = tasks.even_over_devices(
        lambda args: {"test": (np.zeros((1, 3)), np.zeros(1))}
    )
    with pytest.raises(ValueError, match="test split has 1 samples.*2 devices"):
        load(argparse.Namespace(distribute=True))


@pytest.mark.parametrize("name", sorted(tasks.TASKS))
def test_every_array_task_cuts_its_splits_under_distribute(name, monkeypatch):
    """`tasks.load_data` (as the examples) trims every task on arrays."""
    import dataclasses

    monkeypatch.setattr(
        tasks.distribute, "list_devices", lambda: ["a", "b", "c"]
    )
    task = tasks.get(name)

    def data(data_dir=None, *, seed=0, cache_dir=None, smoke=False):
        return {"train": (np.zeros((10, 2)), np.arange(10))}

    task = dataclasses.replace(task, data=data)
    args = argparse.Namespace(
        distribute=True, data_dir=None, seed=0, output_dir="x", smoke=True
    )
    rows = len(tasks.load_data(task, args)["train"][1])
    assert rows == (10 if name == "neuronio" else 9)  # NeuronIO streams


def test_trim_to_devices_leaves_a_run_on_one_device_alone(monkeypatch):
    monkeypatch.setattr(tasks.distribute, "list_devices", lambda: ["a", "b"])
    splits = {"train": (np.zeros((3, 1)), np.arange(3))}
    assert tasks.trim_to_devices(splits, False) is splits
    assert len(tasks.trim_to_devices(splits, True)["train"][1]) == 2


def test_a_missing_file_exits_with_its_message():
    with pytest.raises(tasks.MissingDataError) as error:
        with tasks.exit_on_missing_data():
            raise FileNotFoundError("no shd_train.h5 in ~/data")
    assert error.value.code == "error: no shd_train.h5 in ~/data"


# --- every flag checked before any work --------------------------------------

# Values no numeric flag takes, by kind: (value, what the message says).
_BAD = {
    "float": ["nan", "inf", "-inf", "0", "-1", "abc", ""],
    "int": ["0", "-1", "1.5", "nan", "inf", "abc", "2**3"],
    "seed": ["-1", "1.5", "nan", "abc"],
}
_FLAGS = {
    "--learning-rate": "float",
    "--max-minutes": "float",
    "--dt": "float",
    "--epochs": "int",
    "--batch-size": "int",
    "--num-samples": "int",
    "--max-length": "int",
    "--min-length": "int",
    "--steps-per-epoch": "int",
    "--seed": "seed",
}
_CASES = [
    (name, flag, value)
    for name, task in sorted(tasks.TASKS.items())
    for flag, kind in _FLAGS.items()
    if flag in tasks.parser(task)._option_string_actions
    for value in _BAD[kind]
]


@pytest.mark.parametrize("name, flag, value", _CASES)
def test_every_numeric_flag_is_checked_by_the_parser(name, flag, value, capsys):
    task = tasks.get(name)
    with pytest.raises(SystemExit) as exit:
        tasks.parse_args(tasks.parser(task), task, [f"{flag}={value}"])
    assert exit.value.code == 2
    assert f"argument {flag}: must be" in capsys.readouterr().err


def test_every_task_has_its_numeric_flags_checked():
    """The table above covers every flag that takes a number."""
    for task in tasks.TASKS.values():
        for action in tasks.parser(task)._actions:
            if action.type in (int, float):
                pytest.fail(
                    f"{task.name} {action.option_strings}: a bare "
                    f"{action.type.__name__}, unchecked"
                )


def _error(task, argv, capsys, p=None):
    with pytest.raises(SystemExit) as exit:
        tasks.parse_args(p or tasks.parser(task), task, argv)
    assert exit.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    "name, argv, message",
    [
        (
            "listops",
            ["--min-length", "300", "--max-length", "200"],
            "--min-length 300 must be <= --max-length 200",
        ),
        (
            "listops",
            ["--min-length", "199", "--max-length", "200"],
            "cannot be generated",
        ),
        ("listops", ["--max-length", "3"], "cannot be generated"),
        ("listops", ["--num-samples", "2"], "--num-samples 2 is too few"),
        ("pathfinder", ["--num-samples", "9"], "--num-samples 9 is too few"),
        (
            "pathfinder_x",
            ["--num-samples", "5", "--smoke"],
            "--num-samples 5 is too few",
        ),
        ("shd", ["--dt", "0.003"], "--dt 0.003"),
        ("shd_adding", ["--dt", "3"], "--dt 3"),
        ("shd", ["--num-samples", "1", "--smoke"], "split empty"),
    ],
)
def test_flags_that_cannot_work_together_are_refused(
    name, argv, message, capsys, tmp_path
):
    task = tasks.get(name)
    err = _error(task, [*argv, "--output-dir", str(tmp_path / "out")], capsys)
    assert message in err
    assert not (tmp_path / "out").exists()  # nothing done


def test_the_smallest_generated_sets_that_split_are_accepted(tmp_path):
    for name, samples in (("listops", 3), ("pathfinder", 10), ("neuronio", 1)):
        task = tasks.get(name)
        args = tasks.parse_args(
            tasks.parser(task),
            task,
            ["--num-samples", str(samples), "--output-dir", str(tmp_path)],
        )
        assert args.num_samples == samples
    # With --data-dir nothing is generated: the count does not matter.
    task = tasks.get("listops")
    tasks.parse_args(
        tasks.parser(task),
        task,
        [
            "--num-samples",
            "1",
            "--data-dir",
            str(tmp_path),
            "--output-dir",
            str(tmp_path),
        ],
    )


@pytest.mark.parametrize("name", sorted(tasks.TASKS))
def test_a_missing_data_dir_is_refused_naming_it(name, capsys, tmp_path):
    task = tasks.get(name)
    missing = str(tmp_path / "nowhere")
    err = _error(task, ["--data-dir", missing], capsys)
    assert f"argument --data-dir: the folder {missing!r} does not exist" in err
    assert task.data_help in err
    (tmp_path / "afile").write_text("x")
    err = _error(task, ["--data-dir", str(tmp_path / "afile")], capsys)
    assert "is a file" in err


@pytest.mark.parametrize("where", ["file", "under_file"])
def test_an_output_dir_that_cannot_be_written_is_refused(
    where, capsys, tmp_path
):
    (tmp_path / "afile").write_text("x")
    path = tmp_path / "afile" / ("sub" if where == "under_file" else "")
    task = tasks.get("listops")
    err = _error(task, ["--output-dir", str(path).rstrip("/")], capsys)
    assert "argument --output-dir" in err and "afile" in err


def test_parse_args_creates_nothing(tmp_path):
    task = tasks.get("listops")
    tasks.parse_args(
        tasks.parser(task), task, ["--output-dir", str(tmp_path / "a" / "b")]
    )
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize(
    "text, expected", [("best", "best"), ("15", 15), ("100", 100)]
)
def test_pretrained_neuron_flag(text, expected):
    assert flags.pretrained_neuron(text) == expected


@pytest.mark.parametrize("text", ["abc", "16", "1.5", "", "-1", "Best"])
def test_pretrained_neuron_flag_refuses_other_values(text):
    with pytest.raises(argparse.ArgumentTypeError, match="'best' or one of"):
        flags.pretrained_neuron(text)


def test_smoke_changes_only_the_flags_not_given():
    task = tasks.get("listops")
    args = tasks.parse_args(
        tasks.parser(task),
        task,
        [
            "--smoke",
            "--num-samples",
            "7",
            "--batch-size",
            "2",
            "--max-length",
            "80",
        ],
    )
    assert (args.num_samples, args.batch_size, args.max_length) == (7, 2, 80)
    args = tasks.parse_args(tasks.parser(task), task, ["--smoke"])
    assert args.num_samples == task.smoke_samples
    args = tasks.parse_args(tasks.parser(task), task, [])
    assert args.num_samples == task.num_samples


# --- smoke data, keyed by what it depends on ---------------------------------

_SMOKE_TASKS = ["pathfinder", "image", "listops", "text", "retrieval", "shd"]


def _smoke_args(name, tmp_path, *argv):
    task = tasks.get(name)
    if name == "pathfinder":  # its fewest: the images take their time
        argv = ("--num-samples", "10", *argv)
    return task, tasks.parse_args(
        tasks.parser(task),
        task,
        ["--smoke", "--output-dir", str(tmp_path), *argv],
    )


def _first_input(splits):
    x = splits["train"][0]
    return np.asarray(x[0] if isinstance(x, list) else x)


@pytest.mark.parametrize("name", _SMOKE_TASKS)
def test_smoke_data_of_another_seed_is_its_own(name, tmp_path, monkeypatch):
    if keras.backend.backend() != "torch":
        pytest.skip("the data do not depend on the backend: torch only")
    task, args = _smoke_args(name, tmp_path)
    first = task.load_data(args)
    task, args = _smoke_args(name, tmp_path, "--seed", "1")
    second = task.load_data(args)  # text: FileExistsError before
    folders = sorted(os.listdir(tmp_path / "smoke_data"))
    assert len([f for f in folders if not f.startswith(".")]) == 2, folders
    if name != "shd":  # SHD's synthetic digits do not follow the seed
        assert not np.array_equal(_first_input(first), _first_input(second))
    # The same settings again: the folder is reused, not written again.
    stamps = {
        p: p.stat().st_mtime_ns
        for p in (tmp_path / "smoke_data").rglob("*")
        if p.is_file()
    }
    task, args = _smoke_args(name, tmp_path)
    again = task.load_data(args)
    np.testing.assert_array_equal(_first_input(again), _first_input(first))
    assert stamps == {
        p: p.stat().st_mtime_ns
        for p in (tmp_path / "smoke_data").rglob("*")
        if p.is_file()
    }


def test_a_killed_smoke_writer_leaves_nothing_a_rerun_trusts(tmp_path):
    if keras.backend.backend() != "torch":
        pytest.skip("the data do not depend on the backend: torch only")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    task, args = _smoke_args("listops", tmp_path)
    smoke = tmp_path / "smoke_data"
    key = "listops-min_length15-max_length60-n40-seed0"
    half = smoke / f".{key}.{dead.pid}.abc123.tmp"
    half.mkdir(parents=True)
    (half / "basic_train.tsv").write_text("Source\tTarget\n")
    splits = task.load_data(args)
    assert len(splits["train"][1]) > 1
    assert not half.exists()
    assert (smoke / key).is_dir()


def test_smoke_data_folders_follow_the_umask(tmp_path):
    if keras.backend.backend() != "torch":
        pytest.skip("the data do not depend on the backend: torch only")
    old = os.umask(0o022)
    try:
        path = files.made_once(
            str(tmp_path), lambda folder: None, num_samples=4, seed=0, image=""
        )
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o755  # mkdtemp's 0700 before


@pytest.mark.parametrize("name", sorted(tasks.TASKS))
def test_a_data_dir_without_the_files_exits_naming_them(name, tmp_path):
    """The same clean exit for every task: status 1, 'error: ...'."""
    task = tasks.get(name)
    args = tasks.parse_args(
        tasks.parser(task),
        task,
        ["--data-dir", str(tmp_path), "--output-dir", str(tmp_path / "out")],
    )
    with pytest.raises(tasks.MissingDataError) as error:
        task.load_data(args)
    assert error.value.code.startswith("error: ")
    assert str(tmp_path) in error.value.code


# --- runs of other kinds never share a folder ---------------------------------


@pytest.mark.parametrize("name", sorted(tasks.TASKS))
def test_smoke_runs_have_their_own_default_output_dir(
    name, tmp_path, monkeypatch
):
    """Before: a full run's backup in runs/shd broke `shd.py --smoke`."""
    monkeypatch.chdir(tmp_path)
    task = tasks.get(name)
    full = tasks.parse_args(tasks.parser(task), task, [])
    smoke = tasks.parse_args(tasks.parser(task), task, ["--smoke"])
    assert full.output_dir == os.path.join("runs", name)
    assert smoke.output_dir == os.path.join("runs", name, "smoke")
    given = tasks.parse_args(
        tasks.parser(task), task, ["--smoke", "--output-dir", "mine"]
    )
    assert given.output_dir == "mine"
    p = tasks.parser(task)  # torch_ddp.py's: runs/<task>/ddp
    p.output_dir_default = os.path.join("runs", name, "ddp")
    assert tasks.parse_args(p, task, ["--smoke"]).output_dir == os.path.join(
        "runs", name, "ddp", "smoke"
    )
    assert not os.listdir(tmp_path)  # nothing made


def _backup_of(name, folder, argv):
    """A backup in `folder` of a run of `name` with the flags `argv`."""
    task = tasks.get(name)
    args = tasks.parse_args(
        tasks.parser(task), task, ["--output-dir", str(folder), *argv]
    )
    (folder / "backup").mkdir(parents=True)
    state = {
        "backups": [{"epoch": 1, "weights": "epoch-1.weights.h5"}],
        "config": tasks.run_config(args),
    }
    (folder / "backup" / "state.json").write_text(json.dumps(state))


@pytest.mark.parametrize(
    "name, before, now, differs",
    [
        ("shd", [], ["--smoke"], "--smoke off there, on now"),
        ("shd", ["--dt", "0.01"], [], "--dt 0.01 there, 0.002 now"),
        (
            "listops",
            ["--max-length", "80"],
            ["--max-length", "100"],
            "--max-length 80 there, 100 now",
        ),
        ("pathfinder", [], ["--seed", "1"], "--seed 0 there, 1 now"),
        (
            "pathfinder",
            [],
            ["--difficulty", "easy"],
            "--difficulty hard there, easy now",
        ),
        ("image", ["--data-dir", "."], [], "--data-dir "),
    ],
)
def test_a_backup_of_other_flags_is_refused_before_any_work(
    name, before, now, differs, tmp_path, capsys, monkeypatch
):
    if keras.backend.backend() != "torch":
        pytest.skip("parsing does not depend on the backend: torch only")
    monkeypatch.chdir(tmp_path)
    _backup_of(name, tmp_path / "out", before)
    task = tasks.get(name)
    with pytest.raises(SystemExit) as error:
        tasks.parse_args(
            tasks.parser(task),
            task,
            ["--output-dir", str(tmp_path / "out"), *now],
        )
    assert error.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert differs in message, message
    assert str(tmp_path / "out" / "backup") in message
    assert "pass another --output-dir, or delete that folder" in message
    assert (tmp_path / "out" / "backup" / "state.json").exists()  # kept


def test_flags_that_leave_model_and_data_alone_may_change_on_resuming(tmp_path):
    if keras.backend.backend() != "torch":
        pytest.skip("parsing does not depend on the backend: torch only")
    _backup_of("listops", tmp_path, ["--smoke"])
    task = tasks.get("listops")
    args = tasks.parse_args(
        tasks.parser(task),
        task,
        [
            "--smoke",
            "--output-dir",
            str(tmp_path),
            "--epochs",
            "7",
            "--batch-size",
            "3",
            "--learning-rate",
            "0.1",
            "--max-minutes",
            "5",
        ],
    )
    config = tasks.run_config(args)
    assert not set(config) & tasks.RESUMABLE_FLAGS
    assert {
        "smoke",
        "seed",
        "max_length",
        "min_length",
        "data_dir",
        "num_samples",
    } <= set(config)


# --- what the run prints and draws --------------------------------------------


def test_the_plan_counts_trainable_and_fixed_parameters_apart(tmp_path, capsys):
    task = tasks.get("pathfinder")
    args = tasks.parse_args(
        tasks.parser(task), task, ["--smoke", "--output-dir", str(tmp_path)]
    )
    inputs = keras.Input((3,))
    fixed = keras.layers.Dense(4, trainable=False)
    model = keras.Model(inputs, keras.layers.Dense(2)(fixed(inputs)))
    splits = {split: _data_of(8) for split in ("train", "val", "test")}
    tasks.print_plan(task, args, splits, model)
    assert (
        "model: 10 trainable parameters (+ 16 non-trainable)"
        in capsys.readouterr().out
    )
    model = _tiny_model()
    assert tasks.parameter_counts(model) == "8 trainable parameters"


def test_neuronio_counts_the_papers_parameters():
    if keras.backend.backend() != "torch":
        pytest.skip("the counts do not depend on the backend: torch only")
    import keras_elm

    # The README's 8,002; `count_params()` said 17,067 with the routing.
    assert tasks.parameter_counts(keras_elm.models.neuronio()) == (
        "8,002 trainable parameters (+ 9,065 non-trainable)"
    )


def _data_of(rows):
    rng = np.random.default_rng(0)
    return rng.standard_normal((rows, 3)), rng.integers(0, 2, rows)


@pytest.mark.parametrize(
    "smoke, synthetic, title",
    [
        (True, "simulated", "SMOKE RUN / SYNTHETIC DATA: test simulation 0"),
        (False, "simulated", "SYNTHETIC DATA: test simulation 0"),
        (True, None, "SMOKE RUN: test simulation 0"),
        (False, None, "NeuronIO test simulation 0"),
    ],
)
def test_the_neuronio_picture_says_smoke_and_synthetic(
    smoke, synthetic, title, tmp_path, monkeypatch
):
    if keras.backend.backend() != "torch":
        pytest.skip("the picture does not depend on the backend: torch only")
    from matplotlib import figure as matplotlib_figure

    from keras_elm.data import neuronio

    titles = []
    save = matplotlib_figure.Figure.savefig
    monkeypatch.setattr(
        matplotlib_figure.Figure,
        "savefig",
        lambda self, *a, **k: (
            titles.append(self.get_suptitle()),
            save(self, *a, **k),
        ),
    )
    rng = np.random.default_rng(0)
    result = neuronio.EvaluationSet(
        spike_true=(rng.random((1, 50)) < 0.1).astype("float32"),
        spike_pred=rng.standard_normal((1, 50)).astype("float32"),
        soma_true=rng.standard_normal((1, 50)).astype("float32"),
        soma_pred=rng.standard_normal((1, 50)).astype("float32"),
        num_simulations=1,
        num_kept=1,
    )
    args = argparse.Namespace(smoke=smoke, synthetic_data=synthetic)
    path = tasks.plot_neuronio(result, str(tmp_path / "p.png"), args=args)
    assert titles == [title]
    assert os.path.getsize(path) > 1000


# --- the flags as the data's and the builder's keywords -----------------------


def _parameters(function):
    import inspect

    bound = getattr(function, "keywords", None) or {}
    return {
        name: parameter
        for name, parameter in inspect.signature(function).parameters.items()
        if name not in bound
    }


@pytest.mark.parametrize("smoke", [[], ["--smoke"]])
@pytest.mark.parametrize("name", sorted(tasks.TASKS))
def test_data_arguments_are_the_splits_keywords(name, smoke, tmp_path):
    """Every keyword is a parameter of the task's `splits`, and every
    parameter that a flag of the same name sets gets its value."""
    import keras_elm.data

    task = tasks.get(name)
    data = getattr(task.data, "func", task.data)
    assert data.__name__ == "splits"
    assert getattr(keras_elm.data, data.__module__.split(".")[2]).splits is data
    args = tasks.parse_args(
        tasks.parser(task), task, [*smoke, "--output-dir", str(tmp_path)]
    )
    kwargs = tasks.data_arguments(task, args)
    parameters = _parameters(task.data)
    assert set(kwargs) <= set(parameters)
    assert kwargs["cache_dir"] == str(tmp_path)
    for parameter in parameters:
        value = getattr(args, parameter, None)
        if parameter != "cache_dir" and value is not None:
            assert kwargs[parameter] == value, parameter
    # The flags every task's data reads.
    assert {"seed", "smoke"} <= set(kwargs)
    assert kwargs["smoke"] == bool(smoke)
    for flag in ("max_length", "dt", "difficulty", "image_size"):
        if hasattr(args, flag):
            assert kwargs[flag] == getattr(args, flag), flag
    if name == "neuronio":
        assert kwargs["batch_size"] == args.batch_size


def test_data_arguments_leave_what_the_task_binds():
    task = tasks.get("pathfinder_x")
    args = tasks.parse_args(tasks.parser(task), task, ["--smoke"])
    args.image_size = 32  # not a flag of Path-X: its data are 128 x 128
    assert "image_size" not in tasks.data_arguments(task, args)
    assert task.data.keywords == {"image_size": 128}
    assert tasks.get("shd_adding").data.keywords == {"adding": True}


@pytest.mark.parametrize("smoke", [[], ["--smoke"]])
@pytest.mark.parametrize("name", sorted(tasks.TASKS))
def test_each_builder_takes_the_arguments_its_task_gives(name, smoke, tmp_path):
    """`builder_arguments` and `model_overrides` bind to the builder, from
    the task's own `model_arguments` (no branching on names)."""
    import inspect

    task = tasks.get(name)
    args = tasks.parse_args(
        tasks.parser(task), task, [*smoke, "--output-dir", str(tmp_path)]
    )
    splits = {"train": (np.zeros((2, 7, 3)), np.zeros(2))}
    kwargs = tasks.builder_arguments(task, args, splits)
    inspect.signature(task.build_model).bind(
        **kwargs, **tasks.model_overrides(task, args)
    )
    tokens = {"sequence_length": getattr(args, "max_length", None)}
    spikes = {"steps": 7, "dt": 1000 * getattr(args, "dt", 0), "branch": False}
    expected = {
        "listops": tokens,
        "text": tokens,
        "retrieval": tokens,
        "pathfinder": {"image_size": 32},
        "shd": spikes,
        "shd_adding": spikes,
    }.get(name, {})
    assert kwargs == expected


def test_builder_arguments_do_not_branch_on_task_names():
    import inspect

    from keras_elm.tasks import cli

    assert "task.name" not in inspect.getsource(cli.builder_arguments)


@pytest.mark.parametrize(
    "name, argv, note",
    [
        ("shd", [], True),
        ("shd_adding", ["--smoke"], True),
        ("neuronio", [], True),
        ("neuronio", ["--data-dir", "."], False),
        ("listops", [], False),
        ("image", ["--smoke"], False),
    ],
)
def test_the_synthetic_note_follows_the_dataset(name, argv, note, tmp_path):
    """Decided from the dataset's `is_synthetic(data_dir)`, not written
    by the loader."""
    task = tasks.get(name)
    args = tasks.parse_args(
        tasks.parser(task), task, [*argv, "--output-dir", str(tmp_path)]
    )
    assert args.synthetic_data == (task.synthetic_note if note else None)
    line = tasks.synthetic_line(args)
    assert line.startswith("  SYNTHETIC DATA: ") if note else line == ""


def test_a_folder_of_synthetic_shd_gets_the_note(tmp_path):
    from keras_elm.data import shd

    shd.write_synthetic(str(tmp_path), num_train=20, num_test=10)
    task = tasks.get("shd")
    args = tasks.parse_args(
        tasks.parser(task),
        task,
        ["--data-dir", str(tmp_path), "--output-dir", str(tmp_path / "o")],
    )
    assert args.synthetic_data == shd.SYNTHETIC_NOTE
    (tmp_path / "real").mkdir()  # no files: the loader will say so
    assert task.synthetic(str(tmp_path / "real")) is None
