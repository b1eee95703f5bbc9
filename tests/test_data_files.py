"""`keras_elm.data.files`: atomic writes, the umask's mode, writable checks."""

import os
import stat

import keras
import numpy as np
import pytest

from keras_elm.data import files

BACKEND = keras.backend.backend()


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.parametrize("mode, data", [("wb", b"bytes"), ("w", "text")])
def test_atomic_write_writes_whole_file_with_umask_mode(
    tmp_path, umask_022, mode, data
):
    path = tmp_path / "out"
    with files.atomic_write(path, mode) as f:
        f.write(data)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert os.listdir(tmp_path) == ["out"]
    with open(path, "rb") as f:
        assert f.read() == (data if mode == "wb" else data.encode())


def test_atomic_write_error_keeps_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "cache.npz"
    with files.atomic_write(path) as f:
        np.savez(f, x=np.arange(3))
    with pytest.raises(KeyError):
        with files.atomic_write(path) as f:
            f.write(b"half")
            raise KeyError("killed")
    assert os.listdir(tmp_path) == ["cache.npz"]
    np.testing.assert_array_equal(np.load(path)["x"], np.arange(3))


def test_atomic_write_rejects_other_modes(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with files.atomic_write(tmp_path / "x", "a"):
            pass


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    dead = tmp_path / ".cache.npz.999999999.abc123.tmp"
    alive = tmp_path / f".cache.npz.{os.getpid()}.abc123.tmp"
    other = tmp_path / ".not_ours.tmp"
    for path in (dead, alive, other):
        path.write_bytes(b"partial")
    with files.atomic_write(tmp_path / "cache.npz") as f:
        f.write(b"whole")
    assert sorted(os.listdir(tmp_path)) == sorted(
        [alive.name, other.name, "cache.npz"]
    )


def test_check_writable_creates_folder(tmp_path):
    folder = tmp_path / "a" / "b"
    files.check_writable(folder)
    assert folder.is_dir() and not os.listdir(folder)


@pytest.mark.parametrize("under_file", [False, True])
def test_check_writable_names_a_folder_that_cannot_be(tmp_path, under_file):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    folder = blocker / "sub" if under_file else blocker
    with pytest.raises(ValueError, match="cache folder .*afile"):
        files.check_writable(folder)


_DEAD = 999999999  # above any pid_max: no such process


@pytest.mark.parametrize("suffix", ["", ".keras", ".weights.h5"])
@pytest.mark.parametrize("kind", ["file", "folder"])
def test_stale_temporaries_of_every_writer_are_removed(tmp_path, suffix, kind):
    """`atomic_write`'s, `atomic_path`'s (with Keras's suffix) and
    `publish_folder`'s temporaries of dead writers go; live ones stay."""
    dead = tmp_path / f".model{suffix}.{_DEAD}.ab12.tmp{suffix}"
    alive = tmp_path / f".model{suffix}.{os.getpid()}.ab12.tmp{suffix}"
    other = tmp_path / f"model.{_DEAD}.ab12.tmp{suffix}"  # not hidden: not ours
    for path in (dead, alive, other):
        if kind == "folder":
            path.mkdir()
            (path / "inside").write_bytes(b"partial")
        else:
            path.write_bytes(b"partial")
    assert files.is_temporary(dead.name) and files.is_temporary(alive.name)
    assert not files.is_temporary(other.name)
    assert files.remove_stale_temporaries(tmp_path) == [str(dead)]
    assert sorted(os.listdir(tmp_path)) == sorted([alive.name, other.name])


@pytest.mark.parametrize("name", ["model.keras", "w.weights.h5", "plain.bin"])
def test_atomic_path_keeps_the_suffix_and_replaces_whole(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"old")
    with files.atomic_path(path) as temporary:
        assert os.path.dirname(temporary) == str(tmp_path)
        assert files.is_temporary(os.path.basename(temporary))
        if name != "plain.bin":
            assert temporary.endswith(name[name.index(".") :])
        with open(temporary, "wb") as f:
            f.write(b"new")
    assert path.read_bytes() == b"new"
    assert os.listdir(tmp_path) == [name]
    with pytest.raises(KeyError):
        with files.atomic_path(path) as temporary:
            with open(temporary, "wb") as f:
                f.write(b"half")
            raise KeyError("killed")
    assert path.read_bytes() == b"new"
    assert os.listdir(tmp_path) == [name]


def test_publish_folder_follows_the_umask_and_is_made_once(tmp_path, umask_022):
    calls = []

    def write(folder):
        calls.append(folder)
        os.makedirs(os.path.join(folder, "inner"))
        with open(os.path.join(folder, "inner", "x"), "w") as f:
            f.write("x")
        return os.path.join(folder, "inner")

    target = tmp_path / "data" / "set"
    path = files.publish_folder(target, write)
    assert path == str(target / "inner")
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o755
    assert files.publish_folder(target, write) == path  # reused
    assert len(calls) == 1
    assert sorted(os.listdir(tmp_path / "data")) == [".set.path", "set"]


@pytest.mark.parametrize(
    "settings, key",
    [
        (dict(image=""), "image-n4-seed3"),
        (
            dict(listops="", min_length=15, max_length=60),
            "listops-min_length15-max_length60-n4-seed3",
        ),
        (
            dict(pathfinder=32, difficulty="hard"),
            "pathfinder32-difficultyhard-n4-seed3",
        ),
    ],
)
def test_made_once_names_the_folder_by_its_settings_and_reuses_it(
    tmp_path, settings, key
):
    calls = []

    def write(folder):
        calls.append(folder)
        with open(os.path.join(folder, "x.txt"), "w") as f:
            f.write("1")
        return os.path.join(folder, "x.txt")

    path = files.made_once(tmp_path, write, num_samples=4, seed=3, **settings)
    assert path == os.path.join(tmp_path, "smoke_data", key, "x.txt")
    modified = os.stat(path).st_mtime_ns
    again = files.made_once(tmp_path, write, num_samples=4, seed=3, **settings)
    assert again == path and len(calls) == 1
    assert os.stat(path).st_mtime_ns == modified


def test_made_once_without_a_cache_dir_uses_a_new_temporary_folder():
    made = [
        files.made_once(None, lambda folder: None, num_samples=2, seed=0, a="")
        for _ in range(2)
    ]
    assert made[0] != made[1]
    assert all(os.path.isdir(path) for path in made)
    assert all(
        path.endswith(os.path.join("smoke_data", "a-n2-seed0")) for path in made
    )
