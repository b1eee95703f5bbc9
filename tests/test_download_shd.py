"""`shd.download` against a local server, and `neuronio.download`'s message.

The server serves small zips in the release's format (`write_synthetic`
files), with the pinned md5s replaced through
`download.override_checksums`. Nothing here depends on the backend: it runs
in the torch test process only.
"""

import hashlib
import io
import os
import zipfile

import keras
import pytest

h5py = pytest.importorskip("h5py")

from keras_elm.data import download as downloads  # noqa: E402
from keras_elm.data import neuronio  # noqa: E402
from keras_elm.data import shd  # noqa: E402
from tests.http_server import FileServer  # noqa: E402
from tests.http_server import closed_url  # noqa: E402

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "torch",
    reason="downloads do not depend on the backend: torch process only",
)

NUM_TRAIN = 12
NUM_TEST = 10
TRAIN_ZIP, TEST_ZIP = shd.ARCHIVES["train"], shd.ARCHIVES["test"]


def _zip(members):
    """The bytes of a zip of `{name in the zip: bytes}`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name, data in members.items():
            zipped.writestr(name, data)
    return buffer.getvalue()


def _md5(data):
    return {"md5": hashlib.md5(data).hexdigest()}


@pytest.fixture(scope="module")
def h5_files(tmp_path_factory):
    """`{split: bytes}` of synthetic SHD files."""
    folder = shd.write_synthetic(
        str(tmp_path_factory.mktemp("synthetic")),
        num_train=NUM_TRAIN,
        num_test=NUM_TEST,
    )
    return {
        split: open(os.path.join(folder, name), "rb").read()
        for split, name in shd.FILES.items()
    }


@pytest.fixture(scope="module")
def zips(h5_files):
    """`{zip name: bytes}`: the release's two zips, made small."""
    return {
        shd.ARCHIVES[split]: _zip({shd.FILES[split]: data})
        for split, data in h5_files.items()
    }


@pytest.fixture(scope="module")
def _served():
    """One server for the module (each one takes 0.5 s to stop)."""
    with FileServer() as served:
        yield served


@pytest.fixture
def server(_served, zips):
    """The server, serving the two zips, their md5s pinned for the test."""
    _served.files = dict(zips)
    _served.faults.clear()
    _served.requests.clear()
    _served.ranges = True
    with downloads.override_checksums(_md5s(zips)):
        yield _served


def _md5s(zips):
    return {name: _md5(data) for name, data in zips.items()}


def _listing(folder):
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def test_good_download_is_read_by_splits(server, tmp_path, capsys):
    data_dir = str(tmp_path / "shd")
    assert shd.download(data_dir, mirror=server.url) == data_dir
    assert sorted(server.requests) == [
        (f"/{TEST_ZIP}", None),
        (f"/{TRAIN_ZIP}", None),
    ]
    assert _listing(data_dir) == sorted(
        [TEST_ZIP, TRAIN_ZIP, "shd_test.h5", "shd_train.h5"]
    )
    assert f"SHD: {NUM_TRAIN} train / {NUM_TEST} test samples" in (
        capsys.readouterr().out
    )
    data = shd.splits(data_dir=data_dir, dt=0.05)
    assert len(data["train"][1]) + len(data["val"][1]) == NUM_TRAIN
    assert len(data["test"][1]) == NUM_TEST


@pytest.mark.parametrize("folder", ["SHD/", "a/b/"])
def test_a_file_in_a_folder_of_the_zip_is_found(
    server, h5_files, tmp_path, folder
):
    server.files = {
        shd.ARCHIVES[split]: _zip({folder + shd.FILES[split]: data})
        for split, data in h5_files.items()
    }
    with downloads.override_checksums(_md5s(server.files)):
        data_dir = shd.download(
            str(tmp_path), mirror=server.url, progress=False
        )
    assert shd.load(data_dir, split="test", dt=0.05)[0].shape[0] == NUM_TEST


def test_counts_unlike_the_release_are_reported(server, tmp_path, capsys):
    server.files = {
        shd.ARCHIVES[split]: _zip({name: _h5(tmp_path, split)})
        for split, name in shd.FILES.items()
    }
    with downloads.override_checksums(_md5s(server.files)):
        shd.download(str(tmp_path / "shd"), mirror=server.url)
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith("SHD: 1 train / 2 test samples in ")
    assert "the current release has 8,156 / 2,264" in line
    assert "synthetic" not in line


def test_corrupt_zip_raises_and_leaves_nothing(server, tmp_path, zips):
    data = bytearray(zips[TRAIN_ZIP])
    data[len(data) // 2] ^= 0xFF
    server.files[TRAIN_ZIP] = bytes(data)
    data_dir = str(tmp_path / "shd")
    with pytest.raises(downloads.ChecksumError) as error:
        shd.download(data_dir, mirror=server.url, progress=False)
    message = str(error.value)
    assert TRAIN_ZIP in message
    assert _md5(zips[TRAIN_ZIP])["md5"] in message
    assert _md5(bytes(data))["md5"] in message
    assert _listing(data_dir) == []


def test_truncated_transfer_is_resumed(server, tmp_path, zips):
    server.faults[TRAIN_ZIP] = ("truncate", 1000)
    data_dir = str(tmp_path / "shd")
    with pytest.raises(downloads.DownloadError, match=TRAIN_ZIP):
        shd.download(data_dir, mirror=server.url, progress=False)
    # Only the hidden partial file: nothing under the zip's or h5's name.
    assert _listing(data_dir) == [f".{TRAIN_ZIP}.part"]
    del server.faults[TRAIN_ZIP]
    server.requests.clear()
    shd.download(data_dir, mirror=server.url, progress=False)
    assert (f"/{TRAIN_ZIP}", "bytes=1000-") in server.requests
    assert shd.load(data_dir, split="val", dt=0.05)[1].dtype == "int32"


@pytest.mark.parametrize(
    "removed",
    [(), (TRAIN_ZIP, TEST_ZIP), ("shd_train.h5",), ("shd_test.h5",)],
    ids=["all-there", "zips-gone", "train-h5-gone", "test-h5-gone"],
)
def test_second_call_touches_no_network(server, tmp_path, removed):
    data_dir = shd.download(
        str(tmp_path / "shd"), mirror=server.url, progress=False
    )
    for name in removed:
        os.remove(os.path.join(data_dir, name))
    server.requests.clear()
    assert shd.download(data_dir, mirror=server.url, progress=False) == (
        data_dir
    )
    assert server.requests == []
    assert shd.load(data_dir, split="test", dt=0.05)[0].shape[0] == NUM_TEST


def test_second_call_needs_no_server(zips, tmp_path):
    with downloads.override_checksums(_md5s(zips)):
        with FileServer(zips) as server:
            data_dir = shd.download(
                str(tmp_path), mirror=server.url, progress=False
            )
        # The server is stopped: the cache alone answers.
        assert shd.download(data_dir, mirror=server.url, progress=False) == (
            data_dir
        )


@pytest.mark.parametrize(
    "content", [b"not an HDF5 file", b""], ids=["garbage", "empty"]
)
def test_an_unsound_file_is_unpacked_again(server, tmp_path, content, capsys):
    data_dir = shd.download(
        str(tmp_path / "shd"), mirror=server.url, progress=False
    )
    path = os.path.join(data_dir, "shd_train.h5")
    with open(path, "wb") as f:
        f.write(content)
    server.requests.clear()
    shd.download(data_dir, mirror=server.url)
    assert server.requests == []  # from the verified zip
    assert "Unpacking it again" in capsys.readouterr().out
    assert len(shd.load(data_dir, split="train", dt=0.05)[1]) > 0


def test_read_only_target_is_named_before_any_request(server, tmp_path):
    (tmp_path / "afile").write_text("x")
    data_dir = str(tmp_path / "afile" / "sub")
    with pytest.raises(ValueError, match="afile"):
        shd.download(data_dir, mirror=server.url, progress=False)
    assert server.requests == []


def test_unreachable_server_names_the_url_and_the_manual_way(tmp_path):
    url = closed_url()
    with pytest.raises(downloads.DownloadError) as error:
        shd.download(str(tmp_path), mirror=url, progress=False)
    message = str(error.value)
    assert f"{url}/{TRAIN_ZIP}" in message
    assert "By hand" in message and shd.URLS["train"] in message
    assert _listing(str(tmp_path)) == []


def _h5(tmp_path, split="train", drop=None):
    """The bytes of an HDF5 file of one (train) or two (test) samples in
    the release's layout, without its dataset `drop`."""
    path = str(tmp_path / f"{split}.h5")
    count = 1 if split == "train" else 2
    with h5py.File(path, "w") as f:
        for key, dtype in (("spikes/times", "float32"), ("spikes/units", "u2")):
            if key != drop:
                data = f.create_dataset(
                    key, (count,), dtype=h5py.vlen_dtype(dtype)
                )
                for i in range(count):
                    data[i] = [0.1, 0.2]
        if drop != "labels":
            f["labels"] = [3] * count
    with open(path, "rb") as f:
        return f.read()


@pytest.mark.parametrize(
    "members, found",
    [
        ({"other.h5": b"x"}, "other.h5"),
        ({"shd_train.h5": b"not an HDF5 file"}, "as HDF5"),
        ("labels", "`labels`"),
        ("spikes/units", "`spikes/units`"),
    ],
    ids=["no-member", "not-hdf5", "no-labels", "no-units"],
)
def test_wrong_file_in_the_zip_is_named(server, tmp_path, members, found):
    if isinstance(members, str):
        members = {"shd_train.h5": _h5(tmp_path, drop=members)}
    bad = _zip(members)
    server.files[TRAIN_ZIP] = bad
    data_dir = str(tmp_path / "shd")
    with (
        downloads.override_checksums({TRAIN_ZIP: _md5(bad)}),
        pytest.raises(ValueError) as error,
    ):
        shd.download(data_dir, mirror=server.url, progress=False)
    message = str(error.value)
    assert TRAIN_ZIP in message and found in message
    assert ".tmp" not in message  # names the member, not a temporary
    assert "write_synthetic" not in message  # no advice meant for load()
    # Nothing under the h5's name, no temporary left.
    assert _listing(data_dir) == [TRAIN_ZIP]


def test_a_zip_that_is_not_one_is_named(server, tmp_path):
    server.files[TRAIN_ZIP] = b"PK but not a zip"
    data_dir = str(tmp_path / "shd")
    with (
        downloads.override_checksums(
            {TRAIN_ZIP: _md5(server.files[TRAIN_ZIP])}
        ),
        pytest.raises(ValueError, match="not a whole zip archive"),
    ):
        shd.download(data_dir, mirror=server.url, progress=False)
    assert _listing(data_dir) == [TRAIN_ZIP]


def test_pins_and_sizes_are_recorded():
    assert shd.CHECKSUMS == {
        "shd_train.h5.zip": {"md5": "f3252aeb598ac776c1b526422d90eecb"},
        "shd_test.h5.zip": {"md5": "1503a5064faa34311c398fb0a1ed0a6f"},
    }
    assert shd.URLS == {
        "train": "https://zenkelab.org/datasets/shd_train.h5.zip",
        "test": "https://zenkelab.org/datasets/shd_test.h5.zip",
    }
    assert 150e6 < shd.DOWNLOAD_SIZE < 200e6
    assert neuronio.DOWNLOAD_SIZE == 115e9


def test_the_messages_name_download_and_the_manual_way(tmp_path):
    assert "--download" in shd.HELP and "--data-dir" in shd.HELP
    assert ".h5.zip" in shd.HELP and ".gz" not in shd.HELP
    with pytest.raises(FileNotFoundError) as error:
        shd.load(str(tmp_path), split="test")
    message = str(error.value)
    assert "shd.download(" in message and "--download" in message
    assert "shd_test.h5.zip" in message and "unzip" in message


@pytest.mark.parametrize("module", [shd, neuronio], ids=["shd", "neuronio"])
@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"data_dir": 5}, "data_dir"),
        ({"mirror": 5}, "mirror"),
        ({"progress": "yes"}, "progress"),
    ],
)
def test_bad_arguments_are_named(module, kwargs, name, tmp_path):
    kwargs = {"data_dir": str(tmp_path), **kwargs}
    with pytest.raises(TypeError, match=f"`{name}`"):
        module.download(**kwargs)


def test_neuronio_download_says_how_to_get_it(tmp_path):
    data_dir = str(tmp_path / "neuronio")
    with pytest.raises(FileNotFoundError) as error:
        neuronio.download(data_dir, mirror="http://127.0.0.1:1")
    message = str(error.value)
    for text in (
        "selfishgene/single-neurons-as-deep-nets-nmda-train-data",
        "selfishgene/single-neurons-as-deep-nets-nmda-test-data",
        "115 GB",
        os.path.join(data_dir, "train"),
        os.path.join(data_dir, "valid"),
        os.path.join(data_dir, "test"),
        "keras_elm.data.neuronio.simulate",
    ):
        assert text in message
    assert not os.path.exists(data_dir)  # nothing made, nothing fetched
