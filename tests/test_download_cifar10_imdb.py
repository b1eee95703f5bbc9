"""`cifar10.download` and `imdb.download`, offline: a local server on
127.0.0.1 serves small archives in the real format, made from the fixtures
the smoke runs write, with the pinned checksums overridden.

Backend-independent: runs in the torch test process only.
"""

import dataclasses
import hashlib
import io
import os
import shutil
import tarfile

import keras
import numpy as np
import pytest

from keras_elm.data import cifar10
from keras_elm.data import download
from keras_elm.data import imdb
from tests.http_server import FileServer
from tests.http_server import closed_url

if keras.backend.backend() != "torch":
    pytest.skip("runs in the torch test process", allow_module_level=True)


def _tar_gz(files):
    """A `.tar.gz` of `{member name: bytes}`, in memory."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _read_tree(folder, prefix):
    """`{prefix/relative path: bytes}` of every file under `folder`."""
    tree = {}
    for root, _, names in os.walk(folder):
        for name in sorted(names):
            path = os.path.join(root, name)
            relative = os.path.relpath(path, folder).replace(os.sep, "/")
            with open(path, "rb") as f:
                tree[f"{prefix}/{relative}"] = f.read()
    return tree


def _cifar10_members(folder):
    rng = np.random.default_rng(0)
    cifar10.write_batches(
        folder,
        rng.integers(0, 256, (12, 32, 32, 3), dtype="uint8"),
        rng.integers(0, 10, 12),
    )
    members = _read_tree(folder, "cifar-10-batches-py")
    # The real archive's other files, which are not unpacked.
    members["cifar-10-batches-py/batches.meta"] = b"meta"
    members["cifar-10-batches-py/readme.html"] = b"<html></html>"
    return members


def _imdb_members(folder):
    imdb.write_fixture(folder, num_samples_per_class=2)
    members = _read_tree(os.path.join(folder, "aclImdb"), "aclImdb")
    # The real archive's other files, which are not unpacked.
    members["aclImdb/train/unsup/0_0.txt"] = b"An unlabelled review."
    members["aclImdb/train/urls_pos.txt"] = b"http://example.org"
    members["aclImdb/imdb.vocab"] = b"the\nfilm\n"
    return members


@dataclasses.dataclass
class Dataset:
    module: object
    archive: str  # the file name served and kept
    members: dict  # a good archive's members
    bad_layouts: dict  # id -> (members, what the message must name)

    @property
    def name(self):
        return self.module.__name__.rsplit(".", 1)[1]

    def splits(self, data_dir):
        if self.module is imdb:
            return imdb.splits(data_dir=data_dir, max_length=64)
        return cifar10.splits(data_dir=data_dir)


def _cifar10(folder):
    members = _cifar10_members(folder)
    top = {n.split("/", 1)[1]: d for n, d in members.items()}
    without_test = {n: d for n, d in members.items() if "test_batch" not in n}
    not_a_pickle = dict(members)
    not_a_pickle["cifar-10-batches-py/test_batch"] = b"not a pickle"
    return Dataset(
        cifar10,
        "cifar-10-python.tar.gz",
        members,
        {
            "pickles-at-the-top": (top, ["data_batch_1", "test_batch"]),
            "no-test-batch": (without_test, ["test_batch"]),
            "not-a-pickle": (
                not_a_pickle,
                ["cifar-10-batches-py/test_batch", "not a CIFAR-10 batch"],
            ),
        },
    )


def _imdb(folder):
    members = _imdb_members(folder)
    top = {n.split("/", 1)[1]: d for n, d in members.items()}
    no_test_pos = {
        n: d for n, d in members.items() if not n.startswith("aclImdb/test/pos")
    }
    return Dataset(
        imdb,
        "aclImdb_v1.tar.gz",
        members,
        {
            "reviews-at-the-top": (top, ["train/", "test/", "imdb.vocab"]),
            "no-test-pos": (no_test_pos, ["aclImdb/test/pos/"]),
        },
    )


@pytest.fixture(
    scope="module", params=[_cifar10, _imdb], ids=["cifar10", "imdb"]
)
def dataset(request, tmp_path_factory):
    return request.param(str(tmp_path_factory.mktemp("fixture")))


@pytest.fixture(scope="module")
def server(dataset):
    # One server a dataset: each one's shutdown takes half a second.
    with FileServer() as server:
        yield server


@pytest.fixture
def served(dataset, server):
    """The server, serving the good archive, its sha256 pinned for the
    test."""
    data = _tar_gz(dataset.members)
    server.files.clear()
    server.files[dataset.archive] = data
    server.faults.clear()
    server.requests.clear()
    sha256 = hashlib.sha256(data).hexdigest()
    with download.override_checksums({dataset.archive: {"sha256": sha256}}):
        yield server


def _listing(folder):
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def _files_under(folder):
    return sorted(_read_tree(folder, ".").keys())


def test_download_unpacks_what_load_reads(dataset, served, tmp_path, capsys):
    module = dataset.module
    data_dir = str(tmp_path / "data")
    folder = module.download(data_dir, mirror=served.url)
    assert folder == os.path.join(data_dir, module.DOWNLOADED_NAME)
    assert served.requests == [(f"/{dataset.archive}", None)]
    # The verified archive is kept as the cache; no .part is left.
    assert dataset.archive in _listing(data_dir)
    assert not any(n.endswith(".part") for n in _listing(data_dir))
    # Only what `load` reads is unpacked.
    if module is cifar10:
        expected = [*cifar10.TRAIN_FILES, cifar10.TEST_FILE]
    else:
        expected = [
            n.replace("aclImdb/", "", 1)
            for n in dataset.members
            if n.count("/") == 3 and "/unsup/" not in n
        ]
    assert _files_under(folder) == sorted(f"./{n}" for n in expected)
    # `splits(data_dir=...)` and `load()` read it, from the folder returned
    # or the data_dir holding it.
    data = dataset.splits(folder)
    assert len(data["train"][0]) and len(data["test"][0])
    np.testing.assert_array_equal(
        module.load(data_dir, split="test")[1], data["test"][1]
    )
    out = capsys.readouterr().out
    assert "train" in out and folder in out  # the counts it unpacked


def test_second_call_reuses_the_cache_without_network(
    dataset, served, tmp_path
):
    module = dataset.module
    data_dir = str(tmp_path)
    folder = module.download(data_dir, mirror=served.url, progress=False)
    served.requests.clear()
    assert module.download(data_dir, mirror=closed_url()) == folder
    # Without the unpacked folder, the archive kept there is unpacked again.
    shutil.rmtree(folder)
    assert (
        module.download(data_dir, mirror=closed_url(), progress=False) == folder
    )
    # The folder itself as data_dir: nothing is missing there either.
    assert module.download(folder, mirror=closed_url()) == folder
    assert served.requests == []
    dataset.splits(folder)


def test_prepared_tfds_folder_is_returned_without_network(dataset, tmp_path):
    tfds_name = "cifar10" if dataset.module is cifar10 else imdb.TFDS_NAME
    (tmp_path / tfds_name).mkdir()
    assert dataset.module.download(tmp_path, mirror=closed_url()) == str(
        tmp_path
    )


def test_corrupt_archive_raises_naming_checksums_and_leaves_nothing(
    dataset, served, tmp_path
):
    good = served.files[dataset.archive]
    served.files[dataset.archive] = good[:-10] + bytes(10)
    data_dir = str(tmp_path)
    with pytest.raises(download.ChecksumError) as error:
        dataset.module.download(data_dir, mirror=served.url, progress=False)
    message = str(error.value)
    expected = hashlib.sha256(good).hexdigest()
    found = hashlib.sha256(served.files[dataset.archive]).hexdigest()
    assert dataset.archive in message
    assert expected in message and found in message
    assert _listing(data_dir) == []  # no archive, no .part, no folder


def test_truncated_transfer_is_resumed_with_a_range_request(
    dataset, served, tmp_path
):
    module = dataset.module
    data_dir = str(tmp_path)
    size = len(served.files[dataset.archive])
    served.faults[dataset.archive] = ("truncate", size // 2)
    with pytest.raises(download.DownloadError, match=dataset.archive):
        module.download(data_dir, mirror=served.url, progress=False)
    # Only the hidden partial file: nothing under the archive's name, and
    # nothing unpacked.
    assert _listing(data_dir) == [f".{dataset.archive}.part"]
    del served.faults[dataset.archive]
    folder = module.download(data_dir, mirror=served.url, progress=False)
    assert served.requests[-1] == (
        f"/{dataset.archive}",
        f"bytes={size // 2}-",
    )
    assert dataset.archive in _listing(data_dir)
    dataset.splits(folder)


def test_unwritable_target_is_refused_before_the_network(
    dataset, served, tmp_path
):
    afile = tmp_path / "afile"
    afile.write_text("")
    data_dir = str(afile / "sub")
    with pytest.raises(ValueError, match="afile"):
        dataset.module.download(data_dir, mirror=served.url, progress=False)
    assert served.requests == []


def test_unreachable_server_names_the_url_and_the_manual_way(dataset, tmp_path):
    mirror = closed_url()
    with pytest.raises(download.DownloadError) as error:
        dataset.module.download(tmp_path, mirror=mirror, progress=False)
    message = str(error.value)
    assert f"{mirror}/{dataset.archive}" in message
    assert dataset.module.URL in message and "by hand" in message
    assert not any(
        n == dataset.archive or n == dataset.module.DOWNLOADED_NAME
        for n in _listing(tmp_path)
    )


def test_default_data_dir_is_under_keras_home(
    dataset, served, tmp_path, monkeypatch
):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    folder = dataset.module.download(mirror=served.url, progress=False)
    assert folder == os.path.join(
        str(tmp_path / "home"),
        "datasets",
        "keras_elm",
        dataset.name,
        dataset.module.DOWNLOADED_NAME,
    )


def test_archive_in_another_layout_names_what_it_holds(
    dataset, served, tmp_path
):
    module = dataset.module
    for case, (members, names) in dataset.bad_layouts.items():
        data = served.files[dataset.archive] = _tar_gz(members)
        data_dir = str(tmp_path / case)
        sha256 = hashlib.sha256(data).hexdigest()
        with download.override_checksums({dataset.archive: {"sha256": sha256}}):
            with pytest.raises(ValueError) as error:
                module.download(data_dir, mirror=served.url, progress=False)
        message = str(error.value)
        for name in (dataset.archive, module.DOWNLOADED_NAME, *names):
            assert name in message, (case, message)
        # Nothing half unpacked that a later call would trust.
        assert not os.path.exists(
            os.path.join(data_dir, module.DOWNLOADED_NAME)
        ), case


def test_unsound_folder_already_there_is_named(dataset, served, tmp_path):
    module = dataset.module
    folder = tmp_path / module.DOWNLOADED_NAME
    if module is cifar10:
        cifar10.write_batches(
            folder, np.zeros((12, 32, 32, 3), "uint8"), np.zeros(12, int)
        )
        os.remove(folder / "test_batch")
        expected = "test_batch"
    else:
        imdb.write_fixture(tmp_path, num_samples_per_class=1)
        expected = "write_fixture"
    with pytest.raises(ValueError) as error:
        module.download(tmp_path, mirror=served.url, progress=False)
    assert str(folder) in str(error.value) and expected in str(error.value)
    assert served.requests == []


@pytest.mark.parametrize("module", [cifar10, imdb], ids=["cifar10", "imdb"])
def test_help_and_missing_files_name_download_and_the_manual_way(
    module, tmp_path
):
    assert "--download" in module.HELP and "download()" in module.HELP
    assert module.URL in module.HELP  # the way by hand stays
    with pytest.raises(FileNotFoundError) as error:
        module.load(tmp_path)
    assert f"keras_elm.data.{module.__name__.rsplit('.', 1)[1]}.download(" in (
        str(error.value)
    )
    assert module.URL.rsplit("/", 1)[1] in str(error.value)
