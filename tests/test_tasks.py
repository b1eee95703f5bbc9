"""The task registry and the examples' plumbing: flags, resuming, reports."""

import argparse

import keras
import numpy as np
import pytest

from keras_elm import tasks


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
    assert (args.epochs, args.batch_size, args.num_samples) == (300, 384, 200_000)
    assert tasks.model_overrides(task, args) == {}


def test_smoke_flags():
    task = tasks.get("image")
    args = tasks.parse_args(tasks.parser(task), task, ["--smoke", "--epochs", "2"])
    assert args.epochs == 2 and args.batch_size == tasks.SMOKE["batch_size"]
    assert tasks.model_overrides(task, args) == tasks.SMOKE_ELM


def test_bad_flag_values_exit_with_a_message(capsys):
    task = tasks.get("image")
    with pytest.raises(SystemExit):
        tasks.parse_args(tasks.parser(task), task, ["--batch-size", "0"])
    assert "--batch-size must be >= 1" in capsys.readouterr().err


def test_image_without_data_says_which_files(tmp_path):
    task = tasks.get("image")
    args = tasks.parse_args(tasks.parser(task), task,
                            ["--output-dir", str(tmp_path)])
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


class _Epochs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = []

    def on_epoch_begin(self, epoch, logs=None):
        self.seen.append(epoch)


def test_an_interrupted_run_resumes_after_its_last_epoch(tmp_path):
    args = argparse.Namespace(output_dir=str(tmp_path), learning_rate=0.01,
                              epochs=4)
    task = tasks.get("pathfinder")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 3)), rng.integers(0, 2, 8)

    def run(extra):
        model = tasks.compile_model(_tiny_model(), task, args, 2)
        epochs = _Epochs()
        try:
            model.fit(x, y, validation_data=(x, y), epochs=4, batch_size=4,
                      verbose=0,
                      callbacks=tasks.callbacks(args, 2) + [epochs] + extra)
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
    timer = tasks.StepTimer(steps_per_epoch=10, timed_steps=2)
    for batch in range(4):
        timer.on_train_batch_begin(batch)
        timer.on_train_batch_end(batch)
    out = capsys.readouterr().out
    assert out.count("[timing]") == 1 and "min an epoch" in out


def test_time_limit_stops_training_and_the_flag_adds_it(tmp_path, capsys):
    task = tasks.get("pathfinder")
    args = tasks.parse_args(tasks.parser(task), task,
                            ["--output-dir", str(tmp_path),
                             "--max-minutes", "1e-9", "--learning-rate",
                             "0.01", "--epochs", "5"])
    limits = [c for c in tasks.callbacks(args, 2)
              if isinstance(c, tasks.TimeLimit)]
    assert len(limits) == 1
    model = tasks.compile_model(_tiny_model(), task, args, 2)
    epochs = _Epochs()
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 3)), rng.integers(0, 2, 8)
    model.fit(x, y, epochs=5, batch_size=4, verbose=0,
              callbacks=limits + [epochs])
    assert epochs.seen == [0]  # stopped after the first step's epoch
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 1
    assert "[time limit]" in capsys.readouterr().out
    # Without the flag, no limit.
    args = tasks.parse_args(tasks.parser(task), task,
                            ["--output-dir", str(tmp_path)])
    assert not any(isinstance(c, tasks.TimeLimit)
                   for c in tasks.callbacks(args, 2))


@pytest.mark.parametrize("value", ["0", "-3"])
def test_max_minutes_must_be_positive(value, capsys):
    task = tasks.get("pathfinder")
    with pytest.raises(SystemExit):
        tasks.parse_args(tasks.parser(task), task, ["--max-minutes", value])
    assert "--max-minutes must be > 0" in capsys.readouterr().err
    with pytest.raises(ValueError, match="minutes"):
        tasks.TimeLimit(float(value))


def test_majority_accuracy():
    splits = {"train": (None, np.array([3, 3, 1, 3])),
              "test": (None, np.array([3, 1, 1, 0]))}
    assert tasks.majority_accuracy(splits) == 0.25


@pytest.mark.parametrize("distribute", [False, True])
def test_splits_are_cut_to_a_multiple_of_the_devices_under_distribute(
    distribute, monkeypatch, capsys
):
    monkeypatch.setattr(tasks.distribute, "list_devices", lambda: ["a", "b", "c"])
    pairs = [np.arange(10), np.arange(10) + 100]
    load = tasks.even_over_devices(lambda args: {
        "train": (np.arange(12), np.arange(12)),
        "val": (pairs, np.arange(10)),
        "test": (np.arange(7)[:, None], np.arange(7)),
    })
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


def test_every_array_task_cuts_its_splits_under_distribute():
    for name, task in tasks.TASKS.items():
        if name != "neuronio":  # Streams whole batches of windows.
            assert hasattr(task.load_data, "__wrapped__"), name
