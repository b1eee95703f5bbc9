"""The plan before the work: `--dry-run`, `--download`, the estimates.

The examples run in this process (runpy) up to their first data work,
with the timers of the plan replaced by fixed numbers (`fast_timers`), so
that nothing here trains or generates a data set. The flags and the plan
do not depend on the backend: those tests run in the torch process only;
the step timer itself runs in every backend.
"""

import argparse
import os
import runpy
import shlex
import sys

import keras
import numpy as np
import pytest

import keras_elm
from keras_elm import tasks
from keras_elm.data import download as download_module
from keras_elm.tasks import data_plans
from keras_elm.tasks import planning

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKEND = keras.backend.backend()
EXAMPLES = sorted(
    name[: -len(".py")]
    for name in os.listdir(os.path.join(ROOT, "examples"))
    if name.endswith(".py")
)
# Where each example's data work starts: (module, function) that the
# example reaches first when it makes, fetches or reads its data.
GENERATORS = {
    "pathfinder": ("keras_elm.data.pathfinder", "generate"),
    "pathfinder_x": ("keras_elm.data.pathfinder", "generate"),
    "listops": ("keras_elm.data.listops", "generate"),
    "shd": ("keras_elm.data.shd", "write_synthetic"),
    "shd_adding": ("keras_elm.data.shd", "write_synthetic"),
    "neuronio": ("keras_elm.data.neuronio", "simulate"),
}
DATASETS = {
    "image": "cifar10",
    "text": "imdb",
    "retrieval": "aan",
    "listops": "listops",
    "pathfinder": "pathfinder",
    "pathfinder_x": "pathfinder",
    "shd": "shd",
    "shd_adding": "shd",
    "neuronio": "neuronio",
}


def torch_only():
    if BACKEND != "torch":
        pytest.skip("the flags and the plan do not depend on the backend")


class _Stop(Exception):
    """Raised by a stand-in to end an example at its first data work."""


@pytest.fixture
def fast_timers(monkeypatch):
    """The plan's timers, replaced: 0.01 s a step, 1 ms and 100 bytes a
    generated sample."""
    monkeypatch.setattr(planning, "measure_steps", lambda *a, **k: 0.01)
    monkeypatch.setattr(
        data_plans, "measure_generation", lambda *a, **k: (0.001, 100)
    )


def _run(script, argv, tmp_path, monkeypatch, capsys):
    """Runs `examples/<script>.py` in this process; returns `(code, out,
    err)`, `code` None when it ended by `_Stop`."""
    path = os.path.join(ROOT, "examples", f"{script}.py")
    monkeypatch.setattr(sys, "argv", [path, *argv])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    code = None
    try:
        runpy.run_path(path, run_name="__main__")
    except SystemExit as exit:
        code = exit.code
    except _Stop:
        pass
    captured = capsys.readouterr()
    err = captured.err
    if isinstance(code, str):
        code, err = 1, err + code
    return code, captured.out, err


def _forbid(monkeypatch, name):
    """Any data work of `name`'s example fails the test."""

    def forbidden(*args, **kwargs):
        raise AssertionError(f"data work under --dry-run: {args} {kwargs}")

    import importlib

    for module, function in GENERATORS.values():
        monkeypatch.setattr(
            importlib.import_module(module), function, forbidden
        )
    for dataset in set(DATASETS.values()):
        module = importlib.import_module(f"keras_elm.data.{dataset}")
        monkeypatch.setattr(module, "download", forbidden, raising=False)
        monkeypatch.setattr(module, "splits", forbidden)


@pytest.mark.parametrize("smoke", [False, True])
@pytest.mark.parametrize("script", EXAMPLES)
def test_dry_run_prints_the_plan_and_makes_nothing(
    script, smoke, tmp_path, monkeypatch, capsys, fast_timers
):
    torch_only()
    _forbid(monkeypatch, script)
    out_dir = tmp_path / "out"
    argv = ["--dry-run", "--output-dir", str(out_dir)]
    code, out, err = _run(
        script,
        argv + (["--smoke"] if smoke else []),
        tmp_path,
        monkeypatch,
        capsys,
    )
    assert code == 0, err[-2000:]
    assert out.startswith("PLAN: "), out[:2000]
    assert "--dry-run: stopping after the plan" in out
    assert "trainable parameters" in out and "training: " in out
    assert not out_dir.exists() or not os.listdir(out_dir)
    # Nothing downloaded (Keras may write its keras.json there).
    assert not (tmp_path / "keras_home" / "datasets").exists()


@pytest.mark.parametrize("script", sorted(GENERATORS))
def test_the_plan_comes_before_any_data_work(
    script, tmp_path, monkeypatch, capsys, fast_timers
):
    """The generator is reached only after the whole plan was printed."""
    torch_only()
    import importlib

    module, function = GENERATORS[script]
    seen = []

    def generator(*args, **kwargs):
        seen.append(capsys.readouterr().out)
        raise _Stop

    monkeypatch.setattr(importlib.import_module(module), function, generator)
    code, out, err = _run(
        script,
        ["--num-samples", "40", "--output-dir", str(tmp_path / "out")],
        tmp_path,
        monkeypatch,
        capsys,
    )
    assert code is None, err[-2000:]
    (before,) = seen
    assert before.startswith("PLAN: ")
    assert "trainable parameters" in before and "estimate: " in before
    assert "output: " in before.splitlines()[-1]


@pytest.mark.parametrize("script", sorted(set(DATASETS) - {"neuronio"}))
def test_download_fetches_into_the_data_dir_then_reads_it(
    script, tmp_path, monkeypatch, capsys, fast_timers
):
    """`--download` calls the dataset's `download` with `--data-dir` and
    `--mirror` (and Pathfinder's image size), after the plan, and the
    example reads the folder it returns."""
    torch_only()
    import importlib

    module = importlib.import_module(f"keras_elm.data.{DATASETS[script]}")
    calls = []
    fetched = str(tmp_path / "fetched")

    def download(data_dir=None, *, mirror=None, progress=True, **kwargs):
        calls.append(("download", data_dir, mirror, kwargs))
        assert "PLAN: " in capsys.readouterr().out
        return fetched

    def splits(data_dir=None, **kwargs):
        calls.append(("splits", data_dir))
        raise _Stop

    monkeypatch.setattr(module, "download", download, raising=False)
    monkeypatch.setattr(module, "splits", splits)
    data_dir = str(tmp_path / "data")
    code, out, err = _run(
        script,
        [
            "--download",
            "--data-dir",
            data_dir,
            "--mirror",
            "http://127.0.0.1:9/mirror",
            "--output-dir",
            str(tmp_path / "out"),
        ],
        tmp_path,
        monkeypatch,
        capsys,
    )
    assert code is None, err[-2000:]
    size = {"pathfinder": 32, "pathfinder_x": 128}.get(script)
    expected = {"image_size": size} if size else {}
    assert calls == [
        ("download", data_dir, "http://127.0.0.1:9/mirror", expected),
        ("splits", fetched),
    ]


def test_download_without_data_dir_uses_the_default_folder(
    tmp_path, monkeypatch, capsys, fast_timers
):
    torch_only()
    calls = []
    monkeypatch.setattr(
        keras_elm.data.cifar10,
        "download",
        lambda data_dir=None, *, mirror=None, progress=True: (
            calls.append((data_dir, mirror)) or str(tmp_path / "fetched")
        ),
        raising=False,
    )
    monkeypatch.setattr(
        keras_elm.data.cifar10,
        "splits",
        lambda **k: (_ for _ in ()).throw(_Stop),
    )
    code, out, err = _run(
        "image",
        ["--download", "--output-dir", str(tmp_path / "out")],
        tmp_path,
        monkeypatch,
        capsys,
    )
    assert code is None, err[-2000:]
    assert calls == [(None, None)]  # the module's default folder
    folder = os.path.join(
        str(tmp_path / "keras_home"), "datasets", "keras_elm", "cifar10"
    )
    assert f"into {folder}" in out


@pytest.mark.parametrize(
    "error",
    [
        download_module.DownloadError(
            "Could not download https://example.org/data.tar.gz: "
            "connection refused. Download it by hand: ..."
        ),
        download_module.ChecksumError(
            "data.tar.gz: sha256 expected 00ff, found 1234"
        ),
        FileNotFoundError("NeuronIO is on Kaggle: kaggle datasets download"),
    ],
    ids=["DownloadError", "ChecksumError", "FileNotFoundError"],
)
@pytest.mark.parametrize("script", ["image", "neuronio"])
def test_a_failed_download_exits_1_with_its_message(
    script, error, tmp_path, monkeypatch, capsys, fast_timers
):
    torch_only()
    import importlib

    module = importlib.import_module(f"keras_elm.data.{DATASETS[script]}")

    def download(data_dir=None, *, mirror=None, progress=True):
        raise error

    monkeypatch.setattr(module, "download", download, raising=False)
    code, out, err = _run(
        script,
        ["--download", "--output-dir", str(tmp_path / "out")],
        tmp_path,
        monkeypatch,
        capsys,
    )
    assert code == 1
    assert f"error: {error}" in err
    assert "Traceback" not in err
    assert "PLAN: " in out


@pytest.mark.parametrize("script", ["image", "text", "retrieval"])
def test_missing_files_name_the_download_flag(
    script, tmp_path, monkeypatch, capsys, fast_timers
):
    """Without --data-dir the example exits naming --download, and keeps
    the manual way (the dataset's message)."""
    torch_only()
    code, out, err = _run(
        script,
        ["--output-dir", str(tmp_path / "out")],
        tmp_path,
        monkeypatch,
        capsys,
    )
    assert code == 1
    assert "--download" in err and "--data-dir" in err


def test_exit_on_missing_data_adds_the_flag_once():
    torch_only()
    task = tasks.get("image")
    args = argparse.Namespace(download=False, data_dir=None)
    for message, count in (("no data_batch_1", 1), ("pass --download", 1)):
        with pytest.raises(tasks.MissingDataError) as error:
            with tasks.exit_on_missing_data(task, args):
                raise FileNotFoundError(message)
        assert error.value.code.count("--download") == count
    # Without a task, as before: the message only.
    with pytest.raises(tasks.MissingDataError) as error:
        with tasks.exit_on_missing_data():
            raise FileNotFoundError("no data_batch_1")
    assert error.value.code == "error: no data_batch_1"


# --- the flags ---------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--download", "--smoke"], "argument --download: not with --smoke"),
        (
            ["--mirror", "http://a.org"],
            "argument --mirror: only with --download",
        ),
        (
            ["--download", "--mirror", "ftp://a.org"],
            "argument --mirror: a base URL",
        ),
    ],
)
def test_download_flags_are_checked(argv, message, tmp_path, capsys):
    torch_only()
    task = tasks.get("image")
    with pytest.raises(SystemExit) as exit:
        tasks.parse_args(
            tasks.parser(task), task, argv + ["--output-dir", str(tmp_path)]
        )
    assert exit.value.code == 2
    assert message in capsys.readouterr().err


def test_download_data_dir_may_be_new_but_not_under_a_file(tmp_path, capsys):
    torch_only()
    task = tasks.get("text")
    p = tasks.parser(task)
    new = str(tmp_path / "new" / "folder")
    args = tasks.parse_args(
        p,
        task,
        ["--download", "--data-dir", new, "--output-dir", str(tmp_path)],
    )
    assert args.data_dir == new and not os.path.exists(new)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(SystemExit):
        tasks.parse_args(
            p,
            task,
            ["--download", "--data-dir", str(tmp_path / "afile" / "sub")],
        )
    assert "argument --data-dir" in capsys.readouterr().err


def test_download_is_real_data_and_part_of_the_run_config(tmp_path):
    torch_only()
    task = tasks.get("shd")
    p = tasks.parser(task)
    out = ["--output-dir", str(tmp_path)]
    synthetic = tasks.parse_args(p, task, out)
    real = tasks.parse_args(p, task, ["--download", "--dry-run"] + out)
    assert synthetic.synthetic_data and real.synthetic_data is None
    # --download is in the backup's config (a synthetic run's backup is
    # not resumed by a run on the real files), left out when not given
    # (as in the backups of runs before the flag); --dry-run and
    # --mirror change nothing of the run.
    assert "download" not in tasks.run_config(synthetic)
    assert tasks.run_config(real)["download"] is True
    assert "dry_run" not in tasks.run_config(real)
    assert {"dry_run", "mirror"} <= tasks.RESUMABLE_FLAGS


# --- the estimates -----------------------------------------------------------


def _parse(script, argv, tmp_path):
    name = os.path.basename(script)[: -len(".py")]
    task = tasks.get(name)
    return task, tasks.parse_args(
        tasks.parser(task), task, argv + ["--output-dir", str(tmp_path / name)]
    )


def test_path_x_paper_recipe_is_far_beyond_a_cpu(tmp_path, monkeypatch):
    """With a CPU's measured times (5 s a step at batch 8, 30 ms an
    image), the paper's Path-X says so and suggests commands that fit,
    which parse."""
    torch_only()
    monkeypatch.setattr(planning, "measure_steps", lambda *a, **k: 5.0)
    monkeypatch.setattr(
        data_plans, "measure_generation", lambda *a, **k: (0.03, 16_388)
    )
    monkeypatch.setattr(planning, "_devices", lambda: ["cpu:0"])
    script = os.path.join("examples", "pathfinder_x.py")
    task, args = _parse(script, [], tmp_path)
    plan = planning.make_plan(task, args, script=script)
    text = str(plan)
    assert plan.far_beyond
    assert "FAR BEYOND THIS MACHINE" in text
    assert "going on as asked" in text
    workers = data_plans.processes.default_workers()
    assert plan.data_seconds == pytest.approx(0.03 * 200_000 / workers)
    assert plan.total_seconds > 24 * 3600
    commands = [shlex.join([s, *a]) for s, a in plan.suggestions]
    assert commands[0].endswith("pathfinder_x.py --smoke")
    assert "--max-minutes 60" in commands[1]
    assert "--num-samples" in commands[1]  # generation fits 10 minutes
    assert "examples/pathfinder.py --difficulty easy" in commands[2]
    for command in commands:
        assert command in text
        words = shlex.split(command)
        _parse(words[0], words[1:], tmp_path)  # exits 2 if they do not


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_suggested_commands_parse_for_every_task(name, tmp_path, monkeypatch):
    torch_only()
    monkeypatch.setattr(planning, "measure_steps", lambda *a, **k: 600.0)
    monkeypatch.setattr(
        data_plans, "measure_generation", lambda *a, **k: (1.0, 100)
    )
    script = os.path.join("examples", f"{name}.py")
    # The tasks of real files only are measured when there are files.
    files = DATASETS[name] in data_plans.FILES_ONLY
    task, args = _parse(
        script, ["--data-dir", str(tmp_path)] if files else [], tmp_path
    )
    plan = planning.make_plan(task, args, script=script)
    assert plan.far_beyond, str(plan)
    assert len(plan.suggestions) == (3 if name in planning.CPU_RUNS else 2)
    for path, argv in plan.suggestions:
        _parse(path, argv, tmp_path)


def test_a_run_that_fits_gets_no_warning(tmp_path, monkeypatch, fast_timers):
    torch_only()
    task, args = _parse("listops.py", ["--max-length", "200"], tmp_path)
    plan = planning.make_plan(task, args)
    assert not plan.far_beyond and "FAR BEYOND" not in str(plan)
    assert plan.total_seconds == pytest.approx(
        0.001 * 100_000 / data_plans.processes.default_workers()
        + 150 * (250 + 6 / 3) * 0.01 * 384 / 8,
        rel=1e-6,
    )


def test_the_plan_says_cached_when_the_data_are_there(
    tmp_path, monkeypatch, fast_timers
):
    torch_only()
    task, args = _parse("pathfinder.py", ["--num-samples", "12"], tmp_path)
    images, labels = keras_elm.data.pathfinder.generate(
        12,
        seed=0,
        workers=1,
        progress=False,
        cache_dir=os.path.join(args.output_dir, "data_cache"),
    )
    line, seconds = data_plans.data_plan(task, args)
    assert line.startswith("cached: 12 32 x 32 images") and seconds == 0


def test_the_plan_leaves_the_models_weights_as_without_it(tmp_path):
    """The plan's model is built first: the run's model still starts from
    the weights of the seed (and the same layer names)."""
    torch_only()
    task, args = _parse("listops.py", ["--smoke", "--seed", "3"], tmp_path)
    planning.make_plan(task, args)
    after = task.build_model(sequence_length=60, **tasks.SMOKE_ELM)
    keras.backend.clear_session()
    keras.utils.set_random_seed(3)
    fresh = task.build_model(sequence_length=60, **tasks.SMOKE_ELM)
    for a, b in zip(after.weights, fresh.weights):
        assert a.path == b.path
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("name", ["shd", "shd_adding"])
def test_spike_steps_from_the_flags_match_the_data(name):
    torch_only()
    task = tasks.get(name)
    args = argparse.Namespace(dt=0.05, branch=False)
    data = task.data(num_samples=20, dt=0.05, seed=0)
    assert tasks.builder_arguments(task, args) == tasks.builder_arguments(
        task, args, data
    )


def test_measure_generation_of_every_generator(tmp_path):
    """Each generator's sample is timed and sized, in a few seconds."""
    torch_only()
    for name, argv in (
        ("pathfinder", []),
        ("pathfinder_x", []),
        ("listops", []),
        ("shd", []),
        ("neuronio", []),
    ):
        task, args = _parse(f"{name}.py", argv, tmp_path)
        seconds, size = data_plans.measure_generation(task, args)
        assert 0 < seconds < 5 and size > 0, name
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("name", ["listops", "neuronio"])
def test_measure_steps_times_a_tiny_model(name):
    """One warm-up and two timed `train_on_batch` on zeros (NeuronIO: two
    outputs, in every backend; the classifiers: torch only, for time)."""
    if name == "listops" and BACKEND != "torch":
        pytest.skip("the classifiers' targets: torch only")
    task = tasks.get(name)
    kwargs = dict(sequence_length=30) if name == "listops" else {}
    model = task.build_model(**kwargs, **task.smoke_model)
    seconds = planning.measure_steps(model, task, 2)
    assert 0 < seconds < 30


# --- the real download, against a local server --------------------------------


def _cifar_archive(tmp_path):
    """A tiny `cifar-10-python.tar.gz` in the real layout."""
    import io
    import tarfile

    folder = tmp_path / "archive" / "cifar-10-batches-py"
    rng = np.random.default_rng(0)
    keras_elm.data.cifar10.write_batches(
        str(folder),
        rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8),
        np.arange(12) % 10,
    )
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(str(folder), arcname="cifar-10-batches-py")
    return buffer.getvalue()


def test_download_end_to_end_reads_what_it_fetched(
    tmp_path, monkeypatch, capsys, fast_timers
):
    """`image.py --download --mirror <local server>`: the real
    `cifar10.download` fetches and unpacks the archive, and the example's
    `splits` reads the folder it returned."""
    torch_only()
    from tests.http_server import FileServer

    if not hasattr(keras_elm.data.cifar10, "download"):
        pytest.skip("keras_elm.data.cifar10.download is not there yet")
    archive = _cifar_archive(tmp_path)
    real_splits = keras_elm.data.cifar10.splits
    read = []

    def splits(**kwargs):
        read.append(real_splits(**kwargs))
        raise _Stop

    monkeypatch.setattr(keras_elm.data.cifar10, "splits", splits)
    sha256 = download_module.checksums_of
    path = tmp_path / "archive.tar.gz"
    path.write_bytes(archive)
    name = os.path.basename(keras_elm.data.cifar10.URL)
    with FileServer({name: archive}) as server:
        with download_module.override_checksums(
            {name: {"sha256": sha256(str(path), ("sha256",))["sha256"]}}
        ):
            code, out, err = _run(
                "image",
                [
                    "--download",
                    "--mirror",
                    server.url,
                    "--data-dir",
                    str(tmp_path / "data"),
                    "--output-dir",
                    str(tmp_path / "out"),
                ],
                tmp_path,
                monkeypatch,
                capsys,
            )
        assert code is None, err[-2000:]
        assert [path for path, _ in server.requests] == [f"/{name}"]
    (data,) = read
    assert len(data["train"][1]) > 0 and len(data["test"][1]) > 0
    assert "fetch about 170.5 MB into" in out


def test_download_from_an_unreachable_server_exits_naming_the_url(
    tmp_path, monkeypatch, capsys, fast_timers
):
    torch_only()
    from tests.http_server import closed_url

    if not hasattr(keras_elm.data.cifar10, "download"):
        pytest.skip("keras_elm.data.cifar10.download is not there yet")
    mirror = closed_url()
    code, out, err = _run(
        "image",
        [
            "--download",
            "--mirror",
            mirror,
            "--data-dir",
            str(tmp_path / "data"),
            "--output-dir",
            str(tmp_path / "out"),
        ],
        tmp_path,
        monkeypatch,
        capsys,
    )
    assert code == 1
    assert "error: " in err and f"{mirror}/cifar-10-python.tar.gz" in err
    assert "Traceback" not in err
