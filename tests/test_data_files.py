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
def test_atomic_write_writes_whole_file_with_umask_mode(tmp_path, umask_022,
                                                        mode, data):
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
        [alive.name, other.name, "cache.npz"])


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
