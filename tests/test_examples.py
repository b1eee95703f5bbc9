"""Each example runs end to end with `--smoke`, in a subprocess.

The backends rotate across the examples: each example runs in one
backend's test process, so the suite pays for each once.
"""

import os
import re
import runpy
import subprocess
import sys

import keras
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKEND = keras.backend.backend()
EXAMPLES = {
    "pathfinder.py": "torch",
    "pathfinder_x.py": "jax",
    "image.py": "tensorflow",
    "listops.py": "jax",
    "text.py": "tensorflow",
    "retrieval.py": "torch",
    "shd.py": "tensorflow",
    "shd_adding.py": "jax",
}


@pytest.mark.parametrize("script", list(EXAMPLES))
def test_example_smoke_run(script, tmp_path):
    if EXAMPLES[script] != BACKEND:
        pytest.skip(f"{script} runs in the {EXAMPLES[script]} test process")
    env = {**os.environ, "KERAS_BACKEND": BACKEND, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "examples", script),
            "--smoke",
            "--output-dir",
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "SMOKE RUN" in result.stdout
    # The plan first, before any data work and the first step.
    assert result.stdout.startswith("PLAN: "), result.stdout[:2000]
    assert result.stdout.index("PLAN: ") < result.stdout.index("[timing]")
    assert "trainable parameters" in result.stdout
    assert "[timing] first step" in result.stdout
    assert "test accuracy" in result.stdout and "chance" in result.stdout
    assert (tmp_path / "model.keras").exists()
    assert (tmp_path / "best.keras").exists()
    if script.startswith("shd"):
        # The plan, the summary once the data are there, and the result.
        assert result.stdout.count("SYNTHETIC DATA") == 3


def _exit_in_process(script, argv, tmp_path, monkeypatch, capsys):
    """Runs `examples/<script>` in this process up to its exit.

    Returns:
        `(code, stderr)`: the exit status (1 for an exit with a message)
        and what it printed on stderr, the exit's message included (as
        Python prints it when a script exits with a message). Any other
        exception than `SystemExit` fails the test, as a traceback would.
    """
    path = os.path.join(ROOT, "examples", script)
    monkeypatch.setattr(sys, "argv", [path, *argv])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit:
        runpy.run_path(path, run_name="__main__")
    code = exit.value.code
    stderr = capsys.readouterr().err
    if isinstance(code, str):
        return 1, stderr + code
    return code or 0, stderr


def test_image_example_without_data_exits_non_zero(
    tmp_path, monkeypatch, capsys
):
    if BACKEND != "tensorflow":
        pytest.skip("runs in the tensorflow test process")
    code, stderr = _exit_in_process(
        "image.py",
        ["--output-dir", str(tmp_path)],
        tmp_path,
        monkeypatch,
        capsys,
    )
    assert code != 0
    assert "data_batch_1" in stderr and "--data-dir" in stderr
    assert "--download" in stderr  # the other way to get them


@pytest.mark.parametrize(
    "script, files",
    [
        ("text.py", ["aclImdb", "train/pos", "imdb_reviews"]),
        ("retrieval.py", ["new_aan_pairs.train.tsv", "new_aan_pairs.eval.tsv"]),
    ],
)
def test_real_data_examples_without_data_say_what_to_put_where(
    script, files, tmp_path, monkeypatch, capsys
):
    """In-process (the flags and the data's check come before any model):
    a missing folder and an empty one each exit naming the files."""
    if BACKEND != "jax":
        pytest.skip("runs in the jax test process")
    for extra in ([], ["--data-dir", str(tmp_path / "empty")]):
        code, stderr = _exit_in_process(
            script,
            ["--output-dir", str(tmp_path), *extra],
            tmp_path,
            monkeypatch,
            capsys,
        )
        assert code != 0
        for name in files + ["--download"]:
            assert name in stderr, (extra, stderr[-2000:])


@pytest.mark.parametrize(
    "extra, backend", [([], "torch"), (["--pretrained", "15"], "jax")]
)
def test_neuronio_example(extra, backend, tmp_path):
    if BACKEND != backend:
        pytest.skip(f"runs in the {backend} test process")
    env = {**os.environ, "KERAS_BACKEND": BACKEND, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "examples", "neuronio.py"),
            "--smoke",
            "--output-dir",
            str(tmp_path),
            *extra,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "SYNTHETIC DATA" in result.stdout
    for row in (
        "spike AUC",
        "TPR at 0.25% FPR",
        "soma RMSE",
        "soma explained variance",
    ):
        assert row in result.stdout
    assert (tmp_path / "prediction.png").stat().st_size > 1000
    if not extra:
        assert "[timing] first step" in result.stdout
        # The paper counts the trainable ones; the routing is fixed.
        assert "trainable parameters (+ " in result.stdout
        assert (tmp_path / "model.keras").exists()


@pytest.mark.parametrize(
    "script, argv, message, backend",
    [
        # Before: a traceback after the synthetic SHD files were written.
        (
            "shd.py",
            ["--dt", "0.003"],
            "--dt 0.003: Argument `dt` must split",
            "torch",
        ),
        # Before: a traceback after the images were generated.
        (
            "pathfinder_x.py",
            ["--smoke", "--remat-chunk-size", "64"],
            "argument --remat-chunk-size: JAX only",
            "tensorflow",
        ),
    ],
)
def test_bad_flags_stop_the_example_before_any_work(
    script, argv, message, backend, tmp_path
):
    if BACKEND != backend:
        pytest.skip(f"runs in the {backend} test process")
    env = {**os.environ, "KERAS_BACKEND": BACKEND, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "examples", script),
            *argv,
            "--output-dir",
            str(tmp_path / "out"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


# --- every example takes the flags it took before the issue-18 move ----------

HELP_DIR = os.path.join(ROOT, "tests", "data", "help")
HELP_SCRIPTS = sorted(
    name[: -len(".txt")]
    for name in os.listdir(HELP_DIR)
    if name.endswith(".txt")
)


def _options(help_text):
    """The option strings (`--xxx`, `-h`) that a `--help` text lists."""
    return set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", help_text))


def test_every_example_has_a_stored_help():
    scripts = {
        name[: -len(".py")]
        for name in os.listdir(os.path.join(ROOT, "examples"))
        if name.endswith(".py")
    }
    assert scripts == set(HELP_SCRIPTS)


@pytest.mark.parametrize("script", HELP_SCRIPTS)
def test_example_help_lists_the_same_flags(script, monkeypatch, capsys):
    """Run in-process up to `--help` (argparse exits there, before any
    work): the flags are those stored in tests/data/help."""
    if BACKEND != "torch":
        pytest.skip("the flags do not depend on the backend: torch only")
    path = os.path.join(ROOT, "examples", f"{script}.py")
    monkeypatch.setattr(sys, "argv", [path, "--help"])
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit) as exit:
        runpy.run_path(path, run_name="__main__")
    assert exit.value.code == 0
    now = capsys.readouterr().out
    with open(os.path.join(HELP_DIR, f"{script}.txt")) as f:
        before = f.read()
    assert _options(now) == _options(before)
    assert now == before  # the same text, too


_DATA_CALL = re.compile(r"keras_elm\.data\.(\w+)\.splits\(")


@pytest.mark.parametrize(
    "script",
    sorted(
        name
        for name in HELP_SCRIPTS
        if name not in ("torch_ddp", "tuning")  # any task: `task.data`
    ),
)
def test_example_reads_its_tasks_data_in_plain_view(script):
    """The dataset the example calls is the one its task registers."""
    import keras_elm.data
    from keras_elm import tasks

    with open(os.path.join(ROOT, "examples", f"{script}.py")) as f:
        source = f.read()
    task = tasks.get(script)
    data = getattr(task.data, "func", task.data)
    (dataset,) = _DATA_CALL.findall(source)
    assert getattr(keras_elm.data, dataset).splits is data
    assert f"keras_elm.models.{script}(" in source
    assert "model.compile(" in source
    if task.classification:  # the task's loss, spelled out
        assert task.compile_kwargs is None
        assert "SparseCategoricalCrossentropy(from_logits=True)" in source
