"""The LRA release's download (`keras_elm.data.lra`), offline.

A local server serves a small `lra_release.gz` built from the fixtures the
smoke runs write, nested as the release is (`lra_release/lra_release/...`),
with a second `pathfinder128` folder that `load()` cannot read placed
first. Backend-independent: runs in the jax test process only.
"""

import io
import os
import tarfile

import keras
import numpy as np
import pytest

from keras_elm.data import aan
from keras_elm.data import download
from keras_elm.data import listops
from keras_elm.data import lra
from keras_elm.data import pathfinder
from tests.http_server import FileServer
from tests.http_server import closed_url

if keras.backend.backend() != "jax":
    pytest.skip("runs in the jax test process", allow_module_level=True)

NESTED = "lra_release/lra_release"
DECOY = "lra_release/pathfinder128"
# A metadata file listing an image the decoy does not hold.
DECOY_METADATA = b"imgs/0 sample_0.png 0 1\n"


def _tar_gz(entries):
    """A `.tar.gz` of `(archive name, folder or bytes)` entries, in order."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, source in entries:
            if isinstance(source, bytes):
                info = tarfile.TarInfo(name)
                info.size = len(source)
                tar.addfile(info, io.BytesIO(source))
            else:
                tar.add(source, name)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """`(fixture folder, archive bytes)` of a small LRA release."""
    folder = tmp_path_factory.mktemp("fixture")
    images = folder / "images"
    for size in (32, 128):
        pathfinder.write_release(images, 10, image_size=size, seed=size)
    trees = listops.write_release(
        folder / "listops", 40, seed=0, min_length=10, max_length=60
    )
    pairs = aan.write_fixture(folder / "tsv_data", 4)
    archive = _tar_gz(
        [
            (f"{DECOY}/curv_contour_length_14/metadata/0.npy", DECOY_METADATA),
            (f"{NESTED}/pathfinder32", str(images / "pathfinder32")),
            (f"{NESTED}/pathfinder128", str(images / "pathfinder128")),
            (f"{NESTED}/listops-1000", trees),
            (f"{NESTED}/tsv_data", pairs),
        ]
    )
    return folder, archive


@pytest.fixture(scope="module")
def module_server(release):
    # One server for the module: stopping one takes half a second.
    with FileServer() as server:
        yield server


@pytest.fixture
def server(module_server, release):
    """The module's server, serving the release, reset for each test."""
    module_server.files = {lra.ARCHIVE: release[1]}
    module_server.faults.clear()
    module_server.ranges = True
    module_server.requests.clear()
    return module_server


def _read(member, folder):
    """What the member's loader reads from `folder`, as arrays."""
    if member.startswith("pathfinder"):
        size = int(member[len("pathfinder") :])
        data = pathfinder.splits(folder, image_size=size)
        return [array for split in data.values() for array in split]
    if member == "listops":
        data = listops.splits(folder, max_length=60)
        return [array for split in data.values() for array in split]
    data = aan.splits(folder, max_length=64)
    return [array for (a, b), y in data.values() for array in (a, b, y)]


def _download(member, data_dir, mirror):
    if member.startswith("pathfinder"):
        size = int(member[len("pathfinder") :])
        return pathfinder.download(
            data_dir, image_size=size, mirror=mirror, progress=False
        )
    module = listops if member == "listops" else aan
    return module.download(data_dir, mirror=mirror, progress=False)


def _fixture_folder(release, member):
    folder = release[0]
    return {
        "pathfinder32": folder / "images",
        "pathfinder128": folder / "images",
        "listops": folder / "listops",
        "aan": folder / "tsv_data",
    }[member]


def _assert_same(got, expected):
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


MEMBERS = ["pathfinder32", "pathfinder128", "listops", "aan"]


@pytest.mark.parametrize("member", MEMBERS)
def test_download_unpacks_only_the_member_its_loader_reads(
    server, release, tmp_path, member
):
    folder = _download(member, tmp_path, server.url)
    release_dir = tmp_path / lra.DOWNLOADED_NAME
    if member.startswith("pathfinder"):
        assert folder == str(release_dir)
    else:
        assert folder == str(release_dir / lra.FOLDERS[member])
    # The real folder, not the decoy placed before it in the archive.
    _assert_same(
        _read(member, folder), _read(member, _fixture_folder(release, member))
    )
    assert sorted(os.listdir(tmp_path)) == sorted(
        [lra.ARCHIVE, lra.DOWNLOADED_NAME]
    )
    assert os.listdir(release_dir) == [lra.FOLDERS[member]]  # no temporary
    assert server.requests == [("/" + lra.ARCHIVE, None)]


def test_second_call_and_second_task_use_the_cache_without_network(
    server, release, tmp_path
):
    first = pathfinder.download(tmp_path, mirror=server.url, progress=False)
    server.requests.clear()
    assert (
        pathfinder.download(tmp_path, mirror=closed_url(), progress=False)
        == first
    )
    # Another task unpacks its member from the archive kept on disk.
    folder = listops.download(tmp_path, mirror=closed_url(), progress=False)
    _assert_same(
        _read("listops", folder), _read("listops", release[0] / "listops")
    )
    assert server.requests == []
    assert sorted(os.listdir(tmp_path / lra.DOWNLOADED_NAME)) == [
        "listops-1000",
        "pathfinder32",
    ]


def test_several_members_are_unpacked_in_one_pass(
    server, tmp_path, monkeypatch
):
    passes = []
    unpack_tar = download.unpack_tar

    def counting(*args, **kwargs):
        passes.append(args[0])
        return unpack_tar(*args, **kwargs)

    monkeypatch.setattr(download, "unpack_tar", counting)
    folder = lra.download_release(
        tmp_path,
        members=("aan", "pathfinder128", "listops"),
        mirror=server.url,
        progress=False,
    )
    assert len(passes) == 1
    assert sorted(os.listdir(folder)) == [
        "listops-1000",
        "pathfinder128",
        "tsv_data",
    ]


@pytest.mark.parametrize("ranges", [True, False], ids=["resumed", "restarted"])
def test_truncated_transfer_then_a_second_call_completes_it(
    server, release, tmp_path, ranges
):
    server.ranges = ranges
    cut = len(release[1]) // 3
    server.faults[lra.ARCHIVE] = ("truncate", cut)
    with pytest.raises(download.DownloadError, match="resume"):
        aan.download(tmp_path, mirror=server.url, progress=False)
    assert not os.path.exists(tmp_path / lra.ARCHIVE)
    assert not os.path.exists(tmp_path / lra.DOWNLOADED_NAME)
    del server.faults[lra.ARCHIVE]
    folder = aan.download(tmp_path, mirror=server.url, progress=False)
    assert server.requests[-1] == ("/" + lra.ARCHIVE, f"bytes={cut}-")
    with open(tmp_path / lra.ARCHIVE, "rb") as f:
        assert f.read() == release[1]
    _assert_same(_read("aan", folder), _read("aan", release[0] / "tsv_data"))


def test_unwritable_target_raises_naming_it_before_any_request(
    server, tmp_path
):
    (tmp_path / "afile").write_bytes(b"")
    target = tmp_path / "afile" / "sub"
    with pytest.raises(ValueError, match="cannot be written") as error:
        listops.download(target, mirror=server.url, progress=False)
    assert str(target) in str(error.value)
    assert server.requests == []


def test_unreachable_server_names_the_url_and_the_manual_way(tmp_path):
    mirror = closed_url()
    with pytest.raises(download.DownloadError) as error:
        pathfinder.download(tmp_path, image_size=128, mirror=mirror)
    message = str(error.value)
    assert f"{mirror}/{lra.ARCHIVE}" in message
    assert lra.URL in message and "by hand" in message


@pytest.mark.parametrize(
    "entries, member, found",
    [
        # No pathfinder64 at all: the archive's first folders are named.
        (None, "pathfinder64", f"{NESTED}/pathfinder32"),
        # Only the decoy: it is named, with what is wrong.
        (
            [
                (
                    f"{DECOY}/curv_contour_length_14/metadata/0.npy",
                    DECOY_METADATA,
                )
            ],
            "pathfinder128",
            f"{DECOY} (",
        ),
        # Metadata listing no image: `load()` would raise.
        (
            [
                (f"{NESTED}/pathfinder32/curv_baseline/metadata/0.npy", b""),
                (f"{NESTED}/pathfinder32/curv_baseline/imgs/0/a.png", b""),
            ],
            "pathfinder32",
            "list no image",
        ),
        # A ListOps folder without the header its loader reads.
        (
            [
                (f"{NESTED}/listops-1000/{name}", b"1\t2\n")
                for name in listops.FILES.values()
            ],
            "listops",
            "expected the header",
        ),
        # AAN files elsewhere than in tsv_data/, one missing.
        (
            [
                (f"other/{name}", b"1\ta\tb\tc\td\n")
                for name in list(aan.FILES.values())[:2]
            ],
            "aan",
            "new_aan_pairs.test.tsv is missing",
        ),
    ],
    ids=[
        "absent",
        "only-decoy",
        "no-image",
        "listops-header",
        "aan-file-missing",
    ],
)
def test_archive_without_a_readable_member_names_what_it_holds(
    server, tmp_path, entries, member, found
):
    if entries is not None:
        server.files[lra.ARCHIVE] = _tar_gz(entries)
    with pytest.raises(ValueError) as error:
        _download(member, tmp_path, server.url)
    message = str(error.value)
    assert lra.ARCHIVE in message and found in message
    assert "expected" in message
    # Nothing unpacked, no temporary left; the archive is kept.
    release_dir = tmp_path / lra.DOWNLOADED_NAME
    assert not os.path.isdir(release_dir) or os.listdir(release_dir) == []
    assert os.path.isfile(tmp_path / lra.ARCHIVE)


def test_an_archive_that_is_not_a_tar_raises(server, tmp_path):
    server.files[lra.ARCHIVE] = b"not a tar archive" * 100
    with pytest.raises(ValueError, match="not a whole tar archive"):
        aan.download(tmp_path, mirror=server.url, progress=False)
    release_dir = tmp_path / lra.DOWNLOADED_NAME
    assert not os.path.isdir(release_dir) or os.listdir(release_dir) == []


def test_an_unreadable_member_folder_already_there_raises_naming_it(
    tmp_path,
):
    folder = tmp_path / lra.DOWNLOADED_NAME / "tsv_data"
    folder.mkdir(parents=True)
    with pytest.raises(ValueError, match="Delete the folder") as error:
        aan.download(tmp_path, mirror=closed_url(), progress=False)
    assert str(folder) in str(error.value)


@pytest.mark.parametrize(
    "members, error",
    [
        ("pathfinder16", ValueError),
        ((), ValueError),
        (("aan", "cifar10"), ValueError),
        (3, TypeError),
    ],
)
def test_bad_members_are_refused(tmp_path, members, error):
    with pytest.raises(error, match="members"):
        lra.download_release(tmp_path, members=members, mirror=closed_url())


def test_pathfinder_image_size_is_checked(tmp_path):
    with pytest.raises(ValueError, match="image_size"):
        pathfinder.download(tmp_path, image_size=48, mirror=closed_url())


def test_the_aan_file_names_are_aans():
    assert lra._AAN_FILES == tuple(aan.FILES.values())


def test_default_folder_is_under_keras_home(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(download.DownloadError):
        aan.download(mirror=closed_url(), progress=False)
    assert os.path.isdir(download.default_data_dir("lra_release"))
    assert download.default_data_dir("lra_release").startswith(str(tmp_path))


@pytest.mark.parametrize("member", MEMBERS)
@pytest.mark.parametrize("where", ["release", "member"])
def test_data_unpacked_by_hand_is_used_without_the_network(
    release, tmp_path, member, where
):
    # `--download --data-dir ~/data/lra_release` (or the member's own
    # folder) where the user unpacked the release: nothing is fetched.
    source = _fixture_folder(release, member)
    if member.startswith("pathfinder"):
        data_dir = source if where == "release" else source / member
    else:
        data_dir = tmp_path / "lra_release"
        os.makedirs(data_dir)
        os.symlink(source, data_dir / lra.FOLDERS[member])
        if where == "member":
            data_dir = data_dir / lra.FOLDERS[member]
    folder = _download(member, data_dir, closed_url())
    _assert_same(_read(member, folder), _read(member, source))
    assert not os.path.exists(os.path.join(data_dir, lra.ARCHIVE))
