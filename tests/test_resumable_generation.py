"""Generation of a large set resumes: a stopped run is not started again.

Each finished chunk of a generator with a `cache_dir` is kept in a hidden
folder beside the cache (`caches.parts_folder`) until the cache is
written; a rerun with the same settings makes only the missing chunks,
with the bytes of a run that was never stopped. The tests are NumPy only:
they run in the tensorflow test process (the killed run in the torch one).
"""

import os
import shutil
import signal
import stat
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from keras_elm.data import caches
from keras_elm.data import listops
from keras_elm.data import pathfinder
from keras_elm.data import processes

BACKEND = keras.backend.backend()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PATHFINDER = dict(image_size=32, difficulty="easy", seed=2, progress=False)
LISTOPS = dict(seed=2, min_length=20, max_length=60, progress=False)


def _numpy_only():
    if BACKEND != "tensorflow":
        pytest.skip("runs in the tensorflow test process (numpy only)")


@pytest.fixture(scope="module", autouse=True)
def _small_listops_chunks():
    # 20 trees in 3 chunks (8, 8, 4) instead of one of 1,024, each drawn
    # from batches of 64 candidates instead of 16,384.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(listops.trees, "_CHUNK", 8)
        patch.setattr(listops.trees, "_BATCH_NODES", 64 * 60)
        _FRESH.clear()
        yield
        _FRESH.clear()


_FRESH = {}


def _fresh(generator, **kwargs):
    """The result of an uninterrupted run without a cache, made once."""
    key = (generator, tuple(sorted(kwargs.items())))
    if key not in _FRESH:
        _FRESH[key] = GENERATORS[generator][0](None, **kwargs)
    return _FRESH[key]


def _pathfinder(cache_dir, workers=1, **kwargs):
    images, labels = pathfinder.generate(
        10, cache_dir=cache_dir, workers=workers, **{**PATHFINDER, **kwargs}
    )
    return images.tobytes(), labels.tobytes()


def _listops(cache_dir, workers=1, **kwargs):
    sources, targets = listops.generate(
        20, cache_dir=cache_dir, workers=workers, **{**LISTOPS, **kwargs}
    )
    return sources, targets.tobytes()


# name: (generate, module of the chunk function, its name, chunks)
GENERATORS = {
    # 10 images in chunks of 3 (workers=1): 4 chunks.
    "pathfinder": (_pathfinder, pathfinder.generator, "_render_chunk", 4),
    "listops": (_listops, listops.trees, "_draw_chunk", 3),
}


def _count_chunks(monkeypatch, module, name, stop_at=None):
    """The arguments of each call of the chunk function; the call
    `stop_at` raises KeyboardInterrupt, as Ctrl-C would."""
    calls = []
    make = getattr(module, name)

    def chunk(*args):
        calls.append(args)
        if len(calls) == stop_at:
            raise KeyboardInterrupt
        return make(*args)

    monkeypatch.setattr(module, name, chunk)
    return calls


def _parts(cache_dir):
    """The parts folder of the one generation in `cache_dir`."""
    (name,) = [n for n in os.listdir(cache_dir) if n.endswith(".parts")]
    return os.path.join(cache_dir, name)


def _made(parts):
    """The saved chunks in `parts` (not a temporary being written)."""
    return [name for name in os.listdir(parts) if name.endswith(".npz")]


def _stopped_run(patch, generator, cache_dir, stop_at, **kwargs):
    """A run stopped by Ctrl-C at the chunk `stop_at` (`patch`: a
    `pytest.MonkeyPatch`)."""
    generate, module, name, _ = GENERATORS[generator]
    make = getattr(module, name)
    _count_chunks(patch, module, name, stop_at)
    try:
        with pytest.raises(KeyboardInterrupt):
            generate(cache_dir, **kwargs)
    finally:
        patch.setattr(module, name, make)


@pytest.fixture
def stop(monkeypatch):
    """`stop(generator, cache_dir, stop_at, **kwargs)`: `_stopped_run`."""

    def stop(generator, cache_dir, stop_at, **kwargs):
        _stopped_run(monkeypatch, generator, cache_dir, stop_at, **kwargs)

    return stop


@pytest.fixture(scope="module")
def stopped(tmp_path_factory, _small_listops_chunks):
    """`stopped(generator, cache_dir)`: copies there the parts of a run
    stopped at its third chunk (two chunks made), made once."""
    _numpy_only()
    folders = {}
    with pytest.MonkeyPatch.context() as patch:
        for generator in GENERATORS:
            folder = tmp_path_factory.mktemp(f"stopped_{generator}")
            _stopped_run(patch, generator, folder, 3)
            folders[generator] = _parts(folder)

    def stopped(generator, cache_dir):
        source = folders[generator]
        target = os.path.join(cache_dir, os.path.basename(source))
        shutil.copytree(source, target)
        return target

    return stopped


@pytest.mark.parametrize("generator", sorted(GENERATORS))
@pytest.mark.parametrize("stop_at", [1, 2, "last"])
def test_a_stopped_generation_resumes_where_it_was(
    tmp_path, monkeypatch, capsys, stop, generator, stop_at
):
    _numpy_only()
    generate, module, name, chunks = GENERATORS[generator]
    expected = _fresh(generator)
    stop_at = chunks if stop_at == "last" else stop_at
    cache_dir = tmp_path / "cache"
    capsys.readouterr()
    stop(generator, cache_dir, stop_at)
    out = capsys.readouterr().out
    kept = stop_at - 1
    if kept:
        parts = _parts(cache_dir)
        assert len(_made(parts)) == kept
        assert "Stopped with" in out and parts in out
    else:  # nothing made: no empty folder left behind
        assert os.listdir(cache_dir) == []
        assert out == ""
    calls = _count_chunks(monkeypatch, module, name)
    assert generate(cache_dir) == expected
    assert len(calls) == chunks - kept
    out = capsys.readouterr().out
    assert ("Resuming: " in out) == bool(kept)
    # The cache alone is left, and read back as it is.
    (cache,) = os.listdir(cache_dir)
    assert cache.endswith(".npz")
    assert generate(cache_dir) == expected
    assert len(calls) == chunks - kept


def test_the_resume_line_says_what_is_done_and_the_bar_counts_the_rest(
    tmp_path, monkeypatch, capsys, stop
):
    _numpy_only()
    stop("pathfinder", tmp_path, 3)  # images 0-5 made, in 2 chunks
    seen = []
    update = keras.utils.Progbar.update

    def record(self, current, *args, **kwargs):
        seen.append((current, self.target))
        return update(self, current, *args, **kwargs)

    monkeypatch.setattr(keras.utils.Progbar, "update", record)
    capsys.readouterr()
    _pathfinder(tmp_path, progress=True)
    out = capsys.readouterr().out
    assert "Resuming: 6 of 10 images already made (in " in out
    # The 4 images left, in 2 chunks: an estimate of the time left from
    # the images drawn, not from 6 made in no time.
    assert seen == [(3, 4), (4, 4)]


def _rewrite(path, **changes):
    with np.load(path) as stored:
        data = {name: stored[name] for name in stored.files}
    data.update(changes)
    for name, value in changes.items():
        if value is None:
            del data[name]
    np.savez(path, **data)


def _corrupt(path, case):
    data = open(path, "rb").read()
    if case == "empty":
        data = b""
    elif case == "not a zip":
        data = b"\x00" * 100
    elif case == "truncated":
        data = data[: len(data) // 2]
    elif case == "bit flip":
        middle = len(data) // 2
        data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
    if case in ("empty", "not a zip", "truncated", "bit flip"):
        with open(path, "wb") as f:
            f.write(data)
    elif case == "other arguments":  # seed 9 instead of 2
        with np.load(path) as stored:
            key = str(stored["key"])
        assert key.startswith("(3, 2, 0, 3, 32, "), key
        _rewrite(path, key=np.array(key.replace("(3, 2,", "(3, 9,")))
    elif case == "another chunk's":
        shutil.copyfile(path.replace("0-3", "3-6"), path)
    elif case == "float images":
        with np.load(path) as stored:
            images = stored["r1"]
        _rewrite(path, r1=images.astype(np.float32))
    elif case == "wrong shape":
        with np.load(path) as stored:
            images = stored["r1"]
        _rewrite(path, r1=images[:2])
    elif case == "labels out of range":
        with np.load(path) as stored:
            labels = stored["r2"]
        _rewrite(path, r2=labels + 2)
    elif case == "missing array":
        _rewrite(path, r2=None)
    elif case == "pickled":
        _rewrite(path, r2=np.array([object()] * 3))
    else:
        raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    [
        "empty",
        "not a zip",
        "truncated",
        "bit flip",
        "other arguments",
        "another chunk's",
        "float images",
        "wrong shape",
        "labels out of range",
        "missing array",
        "pickled",
    ],
)
def test_an_unusable_part_is_made_again(
    tmp_path, monkeypatch, capsys, stopped, case
):
    _numpy_only()
    path = os.path.join(stopped("pathfinder", tmp_path), "0-3.npz")
    _corrupt(path, case)
    capsys.readouterr()
    calls = _count_chunks(monkeypatch, pathfinder.generator, "_render_chunk")
    assert _pathfinder(tmp_path) == _fresh("pathfinder")
    # The unusable chunk and the two never made.
    assert [call[1] for call in calls] == [0, 6, 9]
    out = capsys.readouterr().out
    assert f"Unusable part {path}: " in out and "making it again" in out
    assert "Resuming: 3 of 10 images already made" in out


def test_listops_parts_are_checked(tmp_path, monkeypatch, capsys, stopped):
    _numpy_only()
    path = os.path.join(stopped("listops", tmp_path), "8-16.npz")
    with np.load(path) as stored:
        ids = stored["r1"]
    _rewrite(path, r1=ids[:-1])  # lengths no longer add up to the ids
    calls = _count_chunks(monkeypatch, listops.trees, "_draw_chunk")
    capsys.readouterr()
    assert _listops(tmp_path) == _fresh("listops")
    assert [call[1] for call in calls] == [1, 2]
    assert f"Unusable part {path}: " in capsys.readouterr().out


@pytest.mark.parametrize(
    "generator,change",
    [
        ("pathfinder", {"seed": 3}),
        ("pathfinder", {"difficulty": "intermediate"}),
        ("pathfinder", {"image_size": 64}),
        ("listops", {"seed": 3}),
        ("listops", {"max_depth": 9}),
        ("listops", {"min_length": 21}),
    ],
)
def test_other_settings_do_not_reuse_parts(
    tmp_path, monkeypatch, capsys, stopped, generator, change
):
    _numpy_only()
    generate, module, name, chunks = GENERATORS[generator]
    kept = stopped(generator, tmp_path)
    capsys.readouterr()
    calls = _count_chunks(monkeypatch, module, name)
    generate(tmp_path, **change)
    assert "Resuming" not in capsys.readouterr().out
    # Every chunk made; the stopped run's parts are still there for it.
    assert len(calls) == chunks
    assert len(_made(kept)) == 2


def test_other_workers_give_the_same_bytes(tmp_path, stopped):
    # Another count of workers cuts the images into other chunks: the
    # parts are not used, and the result is the same.
    _numpy_only()
    stopped("pathfinder", tmp_path)
    assert _pathfinder(tmp_path, workers=2) == _fresh("pathfinder")
    assert len(os.listdir(tmp_path)) == 1


def test_without_a_cache_dir_nothing_is_saved(tmp_path, monkeypatch, stop):
    _numpy_only()
    saved = []
    monkeypatch.setattr(
        processes, "_save_part", lambda *args: saved.append(args)
    )
    monkeypatch.chdir(tmp_path)
    for generator in GENERATORS:
        stop(generator, None, 3)
    # seed=None is not cached either.
    pathfinder.generate(
        4, seed=None, workers=1, progress=False, cache_dir=tmp_path
    )
    assert saved == [] and os.listdir(tmp_path) == []


def test_a_sound_cache_removes_leftover_parts(tmp_path, stopped):
    # A run killed after writing the cache, before removing its parts.
    _numpy_only()
    cache_dir = tmp_path / "cache"
    expected = _pathfinder(cache_dir)
    (cache,) = os.listdir(cache_dir)
    assert stopped("pathfinder", cache_dir) == caches.parts_folder(
        str(cache_dir), cache
    )
    assert _pathfinder(cache_dir) == expected
    assert os.listdir(cache_dir) == [cache]


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_parts_and_the_cache_follow_the_umask(tmp_path, stop, umask_022):
    _numpy_only()
    stop("pathfinder", tmp_path, 3)
    parts = _parts(tmp_path)
    assert stat.S_IMODE(os.stat(parts).st_mode) == 0o755
    for name in os.listdir(parts):
        path = os.path.join(parts, name)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644, path
    _pathfinder(tmp_path)
    (cache,) = os.listdir(tmp_path)
    assert stat.S_IMODE(os.stat(tmp_path / cache).st_mode) == 0o644


def _pieces(start, stop):
    """A chunk function with numbers and arrays of several dtypes."""
    values = np.arange(start, stop)
    return start, float(stop), values.astype(np.uint8), values * 0.5


def test_generate_in_chunks_keeps_numbers_and_arrays(tmp_path, capsys):
    _numpy_only()
    chunks = [(2, 0, 2), (2, 2, 4), (1, 4, 5)]
    fresh = dict(processes.generate_in_chunks(_pieces, chunks, workers=1))
    folder = tmp_path / "parts"
    made = dict(
        processes.generate_in_chunks(
            _pieces, chunks[:2], workers=1, resume_dir=folder
        )
    )
    assert sorted(os.listdir(folder)) == ["0-2.npz", "2-4.npz"]

    def check(chunk, result):
        return "odd" if chunk[1] == 2 else None

    capsys.readouterr()
    resumed = list(
        processes.generate_in_chunks(
            _pieces, chunks, workers=2, resume_dir=folder, check=check
        )
    )
    out = capsys.readouterr().out
    assert "Resuming: 2 of 5 samples already made" in out
    assert f"Unusable part {folder / '2-4.npz'}: odd; making it" in out
    assert resumed[0][0] == 0  # read back first
    assert sorted(dict(resumed)) == [0, 1, 2]
    for index, result in resumed:
        expected = fresh[index]
        assert [type(value) for value in result] == [
            type(value) for value in expected
        ]
        for value, want in zip(result, expected):
            if isinstance(want, np.ndarray):
                assert value.dtype == want.dtype
                assert value.tobytes() == want.tobytes()
            else:
                assert value == want
    assert made[0][2].tobytes() == fresh[0][2].tobytes()


def test_a_killed_generation_resumes(tmp_path, capsys):
    if BACKEND != "torch":
        pytest.skip("runs in the torch test process")
    cache_dir = tmp_path / "cache"
    settings = dict(PATHFINDER, seed=5)
    # The data modules alone, without keras (seconds saved). 64 images in
    # 8 chunks of 8 with 2 workers; from the third chunk on the workers
    # wait, so the kill comes with two chunks made, at any machine's speed.
    script = (
        "import sys, time, types\n"
        "for name, path in (('keras_elm', 'keras_elm'),\n"
        "                   ('keras_elm.data', 'keras_elm/data')):\n"
        "    sys.modules[name] = types.ModuleType(name)\n"
        "    sys.modules[name].__path__ = [path]\n"
        "from keras_elm.data import pathfinder\n"
        "render = pathfinder.generator._render_chunk\n"
        "def wait_from_the_third(seed, start, *args):\n"
        "    if start >= 16:\n"
        "        time.sleep(600)\n"
        "    return render(seed, start, *args)\n"
        "pathfinder.generator._render_chunk = wait_from_the_third\n"
        f"pathfinder.generate(64, workers=2, cache_dir={str(cache_dir)!r},"
        f" **{settings!r})\n"
    )
    parts = caches.parts_folder(
        str(cache_dir), pathfinder.generator._cache_name(64, 32, "easy", 5)
    )
    run = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while not os.path.isdir(parts) or len(_made(parts)) < 2:
            assert run.poll() is None, "the run ended before it was killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        os.kill(run.pid, signal.SIGKILL)
        run.wait()
    assert sorted(_made(parts)) == ["0-8.npz", "8-16.npz"]
    capsys.readouterr()
    images, labels = pathfinder.generate(
        64, workers=2, cache_dir=cache_dir, **settings
    )
    out = capsys.readouterr().out
    assert "Resuming: 16 of 64 images already made" in out
    assert not os.path.exists(parts)
    assert len(os.listdir(cache_dir)) == 1
    fresh_images, fresh_labels = pathfinder.generate(64, workers=1, **settings)
    assert images.tobytes() == fresh_images.tobytes()
    assert labels.tobytes() == fresh_labels.tobytes()


def test_a_failed_cache_write_keeps_the_parts(tmp_path, monkeypatch, capsys):
    # A full disk at the end: the rerun (once there is room) only writes.
    _numpy_only()

    def broken(f, **arrays):
        f.write(b"partial")
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(np, "savez", broken)  # the cache's, not the parts'
        with pytest.raises(OSError, match="disk full"):
            _listops(tmp_path)
    parts = _parts(tmp_path)
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(parts)]
    assert sorted(os.listdir(parts)) == ["0-8.npz", "16-20.npz", "8-16.npz"]
    calls = _count_chunks(monkeypatch, listops.trees, "_draw_chunk")
    capsys.readouterr()
    assert _listops(tmp_path) == _fresh("listops")
    assert calls == []
    assert "Resuming: 20 of 20 trees already made" in capsys.readouterr().out
    assert len(os.listdir(tmp_path)) == 1
