"""keras_elm.tuning: the search space, searches, resuming and reloading."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

keras_tuner = pytest.importorskip("keras_tuner")

from keras_elm import tasks  # noqa: E402
from keras_elm import tuning  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKEND = keras.backend.backend()
LENGTH = 12


def _numpy(weights):
    return [keras.ops.convert_to_numpy(w) for w in weights]


def _tiny_space():
    """A search space of tiny ListOps models (two sizes, the rest tuned)."""
    hp = keras_tuner.HyperParameters()
    hp.Int("units", 4, 8, step=4)
    hp.Fixed("mlp_width_factor", 2)
    hp.Fixed("mlp_layers", 1)
    return hp


def _data(num=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 16, (num, LENGTH)).astype("int32")
    y = rng.integers(0, 10, num)
    return x, y


class CountingHyperModel(tuning.ELMHyperModel):
    """Counts `fit` calls and keeps each trial's weights as fit began."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fits = 0
        self.start_weights = {}

    def fit(self, hp, model, *args, **kwargs):
        self.fits += 1
        if "tuner/trial_id" in hp.values:
            self.start_weights[hp.values["tuner/trial_id"]] = _numpy(
                model.weights
            )
        return super().fit(hp, model, *args, **kwargs)


def _random_search(directory, hypermodel, max_trials=2):
    return keras_tuner.RandomSearch(
        hypermodel,
        objective=hypermodel.objective,
        max_trials=max_trials,
        hyperparameters=_tiny_space(),
        seed=1,
        directory=str(directory),
        project_name="search",
    )


def _search(tuner, epochs=1):
    x, y = _data()
    tuner.search(
        x,
        y,
        validation_data=_data(8, seed=1),
        epochs=epochs,
        batch_size=8,
        verbose=0,
    )


# --- the search space -------------------------------------------------------


@pytest.mark.parametrize(
    "name, branch",
    [
        *((name, False) for name in tasks.TASKS),
        ("shd", True),
        ("shd_adding", True),
    ],
)
def test_default_hyperparameters_build_the_paper_model(name, branch):
    task = tasks.get(name)
    fixed = {"branch": True} if branch else {}
    model = tuning.ELMHyperModel(name, fixed, seed=3).build(
        keras_tuner.HyperParameters()
    )
    keras.utils.set_random_seed(3)
    paper = task.build_model(**fixed)
    assert model.count_params() == paper.count_params()
    elm, paper_elm = (
        model.get_layer("elm" if name != "retrieval" else "encoder"),
        paper.get_layer("elm" if name != "retrieval" else "encoder"),
    )
    for key in (
        "units",
        "mlp_units",
        "mlp_layers",
        "lambda_value",
        "trace_tau",
        "num_branches",
        "synapses_per_branch",
    ):
        got, want = elm.get_config().get(key), paper_elm.get_config().get(key)
        if key == "mlp_units" and want is None:
            want = 2 * paper_elm.get_config()["units"]
        assert got == want, key
    for got, want in zip(_numpy(model.weights), _numpy(paper.weights)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "name, branch, has_branches",
    [
        ("listops", False, False),
        ("pathfinder_x", False, False),
        ("shd", False, False),
        ("shd", True, True),
        ("neuronio", False, True),
    ],
)
def test_search_space_names_every_knob(name, branch, has_branches):
    hp = keras_tuner.HyperParameters()
    values = tuning.search_space(name, hp, branch=branch)
    expected = [
        k for k in tuning.KNOBS if has_branches or k not in tuning.BRANCH_KNOBS
    ]
    assert sorted(values) == sorted(expected)
    assert sorted(hp.values) == sorted(expected)
    task = tasks.get(name)
    assert values["learning_rate"] == task.learning_rate
    for knob, value in task.hyperparameters.items():
        if knob in values:
            assert values[knob] == value


def test_every_default_lies_in_its_range():
    for name in tasks.TASKS:
        hp = keras_tuner.HyperParameters()
        tuning.search_space(name, hp, branch=True)
        for knob in hp.space:
            value = hp.values[knob.name]
            if hasattr(knob, "min_value"):
                assert knob.min_value <= value <= knob.max_value, (name, knob)
            else:
                assert value in knob.values, (name, knob)


def test_sampled_configurations_build(tmp_path):
    """Random points of the whole space build and run, for every task kind."""
    for name, fixed in (
        ("listops", {"sequence_length": LENGTH}),
        ("shd", {"steps": 6, "branch": True}),
    ):
        hypermodel = tuning.ELMHyperModel(name, fixed)
        hp = keras_tuner.HyperParameters()
        tuning.search_space(name, hp, branch=fixed.get("branch", False))
        for seed in range(2):
            values = hp.copy()
            for knob in hp.space:
                values.values[knob.name] = knob.random_sample(seed)
            values.values["units"] = min(values.values["units"], 20)
            model = hypermodel.build(values)
            elm = model.get_layer("elm")
            assert elm.units == values.values["units"]
            assert elm.get_config()["mlp_units"] == (
                values.values["mlp_width_factor"] * values.values["units"]
            )
            x = (
                np.ones((2, LENGTH), "int32")
                if name == "listops"
                else np.ones((2, 6, 700), "float32")
            )
            assert np.all(np.isfinite(keras.ops.convert_to_numpy(model(x))))


def test_tau_range_of_a_bounded_task_starts_inside_its_bound():
    hp = keras_tuner.HyperParameters()
    hp.Fixed("memory_tau_max", 2000.0)
    hp.Fixed("memory_tau_min", 0.5)
    kwargs = tuning.model_kwargs(
        tasks.get("shd"), tuning.search_space("shd", hp)
    )
    assert kwargs["memory_tau_init_range"] == (0.5, 2000.0)
    assert (kwargs["memory_tau_min"], kwargs["memory_tau_max"]) == (0.0, 2000.0)


def test_fixed_knobs_and_tune_new_entries_false(tmp_path):
    hypermodel = tuning.ELMHyperModel("listops", {"sequence_length": LENGTH})
    hp = keras_tuner.HyperParameters()
    hp.Fixed("units", 6 * 2)
    hp.Float("learning_rate", 1e-4, 1e-3, sampling="log")
    tuner = keras_tuner.RandomSearch(
        hypermodel,
        objective=hypermodel.objective,
        max_trials=1,
        hyperparameters=hp,
        tune_new_entries=False,
        directory=str(tmp_path),
    )
    tuned = [
        knob.name
        for knob in tuner.oracle.hyperparameters.space
        if not isinstance(knob, keras_tuner.engine.hyperparameters.Fixed)
    ]
    assert tuned == ["learning_rate"]
    trial_hp = tuner.oracle.get_space()
    trial_hp.values = tuner.oracle.populate_space("0")["values"]
    assert 1e-4 <= trial_hp.values["learning_rate"] <= 1e-3
    elm = hypermodel.build(trial_hp).get_layer("elm").get_config()
    assert elm["units"] == 12
    assert elm["trace_tau"] == tuning.DEFAULTS["trace_tau"]
    assert elm["memory_tau_max"] == 2e3  # ListOps' own default


def test_a_knob_in_model_kwargs_is_an_error():
    with pytest.raises(ValueError, match=r"hp\.Fixed.*units"):
        tuning.ELMHyperModel("listops", {"units": 10})


def test_unknown_task_is_an_error():
    with pytest.raises(ValueError, match="Registered tasks"):
        tuning.ELMHyperModel("cifar100")


def test_importing_keras_elm_does_not_import_keras_tuner():
    if BACKEND != "torch":
        pytest.skip("runs in the torch test process")
    code = (
        "import sys, keras_elm, keras_elm.tasks, keras_elm.models; "
        "print('keras_tuner' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "False"


# --- searches -----------------------------------------------------------------


def test_two_trial_search_best_model_and_resume(tmp_path):
    hypermodel = CountingHyperModel(
        "listops", {"sequence_length": LENGTH}, seed=5
    )
    tuner = _random_search(tmp_path, hypermodel)
    _search(tuner)
    assert hypermodel.fits == 2
    trials = tuner.oracle.trials
    assert len(trials) == 2
    assert all(t.status == "COMPLETED" for t in trials.values())
    assert len({str(t.hyperparameters.values) for t in trials.values()}) == 2
    scores = {t.trial_id: t.score for t in trials.values()}

    # The best model predicts like its configuration built and trained
    # again from the same seed, and like a fresh build of it given the
    # trial's checkpoint.
    best = tuner.get_best_models(1)[0]
    best_hp = tuner.get_best_hyperparameters(1)[0]
    x, y = _data()
    predicted = best.predict(x, verbose=0)
    fresh = hypermodel.build(best_hp)
    fresh.fit(x, y, epochs=1, batch_size=8, verbose=0)
    np.testing.assert_allclose(
        fresh.predict(x, verbose=0), predicted, rtol=1e-4, atol=1e-5
    )
    reloaded = hypermodel.build(best_hp)
    trial = tuner.oracle.get_best_trials(1)[0]
    reloaded.load_weights(tuner._get_checkpoint_fname(trial.trial_id))
    np.testing.assert_allclose(
        reloaded.predict(x, verbose=0), predicted, rtol=1e-6, atol=1e-6
    )

    # The same search again, in the same directory: nothing to do.
    resumed_model = CountingHyperModel(
        "listops", {"sequence_length": LENGTH}, seed=5
    )
    resumed = _random_search(tmp_path, resumed_model)
    _search(resumed)
    assert resumed_model.fits == 0
    assert {
        t.trial_id: t.score for t in resumed.oracle.trials.values()
    } == scores


def test_hyperband_continues_a_trial_from_its_checkpoint(tmp_path):
    hypermodel = CountingHyperModel(
        "listops", {"sequence_length": LENGTH}, seed=2
    )
    tuner = keras_tuner.Hyperband(
        hypermodel,
        objective=hypermodel.objective,
        max_epochs=2,
        factor=2,
        hyperparameters=_tiny_space(),
        seed=1,
        directory=str(tmp_path),
        project_name="hyperband",
    )
    _search(tuner, epochs=2)
    assert hypermodel.start_weights, "no trial continued from another"
    for parent_id, start in hypermodel.start_weights.items():
        parent = tuner.oracle.get_trial(parent_id)
        saved = _numpy(tuner.load_model(parent).weights)
        for got, want in zip(start, saved):
            np.testing.assert_array_equal(got, want)
        initial = _numpy(hypermodel.build(parent.hyperparameters).weights)
        assert any(not np.array_equal(a, b) for a, b in zip(start, initial))
    continued = [
        t
        for t in tuner.oracle.trials.values()
        if "tuner/trial_id" in t.hyperparameters.values
    ]
    assert all(
        t.hyperparameters.values["tuner/initial_epoch"] == 1 for t in continued
    )


# What the callback below saw (a module global: keras-tuner deep-copies
# callbacks, and with them any list they hold).
DISTRIBUTED_STEPS = []


class RecordDistribution(keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
        if BACKEND == "jax":
            DISTRIBUTED_STEPS.append(keras.distribution.distribution())
        else:
            DISTRIBUTED_STEPS.append(self.model.distribute_strategy)


def test_distribution_is_set_again_in_build_and_in_force_during_fit(tmp_path):
    if BACKEND not in ("jax", "tensorflow"):
        pytest.skip("data parallelism under model.fit: JAX and TensorFlow")
    from keras_elm import distribute

    context = distribute.data_parallel(batch_size=8)
    expected = context.distribution if BACKEND == "jax" else context.strategy
    if BACKEND == "jax":  # What the build must undo: clear_session wipes it.
        context.activate()
        keras.backend.clear_session()
        assert keras.distribution.distribution() is None
    DISTRIBUTED_STEPS.clear()
    hypermodel = tuning.ELMHyperModel(
        "listops", {"sequence_length": LENGTH}, distribution=context
    )
    try:
        tuner = _random_search(tmp_path, hypermodel, max_trials=1)
        x, y = _data()
        tuner.search(
            x,
            y,
            validation_data=_data(8, seed=1),
            epochs=1,
            batch_size=8,
            verbose=0,
            callbacks=[RecordDistribution()],
        )
    finally:
        if BACKEND == "jax":
            keras.distribution.set_distribution(None)
    assert len(DISTRIBUTED_STEPS) == 2  # one trial of two steps
    assert all(seen is expected for seen in DISTRIBUTED_STEPS)


# --- the example's flags -----------------------------------------------------


def _flags(*argv, task="listops"):
    task = tasks.get(task)
    return tuning.parse_args(tuning.parser(task), task, list(argv))


@pytest.mark.parametrize(
    "argv, expected",
    [
        ([], (10, 20, 3, 10_000, None)),
        (["--smoke"], (2, 2, 2, 40, None)),
        # Given flags win over --smoke's defaults.
        (
            [
                "--smoke",
                "--max-trials",
                "5",
                "--hyperband-factor",
                "4",
                "--num-samples",
                "50",
                "--epochs",
                "3",
                "--learning-rate",
                "0.5",
            ],
            (3, 5, 4, 50, 0.5),
        ),
        (
            ["--max-trials", "1", "--learning-rate", "1e-3"],
            (10, 1, 3, 10_000, 1e-3),
        ),
    ],
)
def test_search_flags_given_are_honoured(argv, expected):
    args = _flags(*argv)
    assert (
        args.epochs,
        args.max_trials,
        args.hyperband_factor,
        args.num_samples,
        args.learning_rate,
    ) == expected


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--max-trials", "0"),
        ("--max-trials", "1.5"),
        ("--hyperband-factor", "1"),
        ("--hyperband-factor", "-2"),
        ("--learning-rate", "nan"),
        ("--learning-rate", "-1"),
        ("--epochs", "0"),
        ("--num-samples", "inf"),
    ],
)
def test_search_flags_bad_values_are_refused(flag, value, capsys):
    with pytest.raises(SystemExit) as exit:
        _flags(f"{flag}={value}")
    assert exit.value.code == 2
    assert f"argument {flag}: must be" in capsys.readouterr().err


@pytest.mark.parametrize("rate", [1.0, 3e-7, 2e-4])
def test_a_given_learning_rate_is_every_trial_s(rate):
    """Any value, inside the knob's range or not, is the one trained with."""
    hp = tuning.search_hyperparameters(_flags("--learning-rate", str(rate)))
    task = tasks.get("listops")
    values = tuning.search_space(task, hp)
    assert values["learning_rate"] == rate
    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective("val_accuracy", "max"),
        max_trials=5,
        hyperparameters=hp,
        seed=1,
    )
    space = hp.copy()
    tuning.search_space(task, space)
    oracle.hyperparameters = space
    for _ in range(3):  # RandomSearch's draws keep it
        assert oracle.populate_space("x")["values"]["learning_rate"] == rate
    # Not given: the knob is tuned.
    assert not tuning.search_hyperparameters(_flags()).space


# --- the example --------------------------------------------------------------


def test_tuning_example_smoke_run_and_resume(tmp_path):
    if BACKEND != "torch":
        pytest.skip("runs in the torch test process")
    env = {**os.environ, "KERAS_BACKEND": BACKEND, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [
        sys.executable,
        os.path.join(ROOT, "examples", "tuning.py"),
        "--smoke",
        "--output-dir",
        str(tmp_path),
    ]
    runs = [
        subprocess.run(
            command,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        for _ in range(2)
    ]
    for result in runs:
        assert result.returncode == 0, (
            result.stdout[-3000:] + result.stderr[-3000:]
        )
        assert "best configuration" in result.stdout
        assert (
            "units = " in result.stdout and "learning_rate = " in result.stdout
        )
        assert "test accuracy of its model" in result.stdout
    assert "0 trials already finished" in runs[0].stdout
    assert "Trial 2 Complete" in runs[0].stdout
    assert "2 trials already finished" in runs[1].stdout
    assert (
        "Trial"
        not in runs[1]
        .stdout.split("already finished")[1]
        .split("best configuration")[0]
    )
    best = [
        line
        for line in runs[0].stdout.splitlines()
        if line.startswith("best configuration")
    ]
    assert best and best == [
        line
        for line in runs[1].stdout.splitlines()
        if line.startswith("best configuration")
    ]
