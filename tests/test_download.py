"""`keras_elm.data.download`, offline: a local server on 127.0.0.1.

Backend-independent: runs in the torch test process only.
"""

import hashlib
import io
import os
import stat
import tarfile
import types
import zipfile

import keras
import pytest

from keras_elm.data import download
from tests.http_server import FileServer
from tests.http_server import closed_url

if keras.backend.backend() != "torch":
    pytest.skip("runs in the torch test process", allow_module_level=True)

DATA = bytes(range(256)) * 4000  # ~1 MB, a few read blocks
SHA256 = hashlib.sha256(DATA).hexdigest()
MD5 = hashlib.md5(DATA).hexdigest()
PINNED = {"sha256": SHA256, "md5": MD5}


def listing(folder):
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


@pytest.fixture
def server():
    with FileServer({"data.bin": DATA}) as server:
        yield server


def test_good_download_is_verified_and_in_place(server, tmp_path):
    path = download.fetch(
        server.url + "/data.bin", tmp_path, checksums=PINNED, progress=False
    )
    assert path == os.path.join(tmp_path, "data.bin")
    with open(path, "rb") as f:
        assert f.read() == DATA
    assert listing(tmp_path) == ["data.bin"]  # no .part left
    assert server.requests == [("/data.bin", None)]


def test_second_call_reuses_the_file_without_network(server, tmp_path):
    download.fetch(server.url + "/data.bin", tmp_path, checksums=PINNED)
    server.requests.clear()
    again = download.fetch(
        closed_url() + "/data.bin", tmp_path, checksums=PINNED
    )
    assert again == os.path.join(tmp_path, "data.bin")
    assert server.requests == []


@pytest.mark.parametrize("algorithm", ["sha256", "md5"])
def test_corrupt_file_raises_naming_both_checksums_and_leaves_nothing(
    server, tmp_path, algorithm
):
    server.files["data.bin"] = DATA[:-1] + b"\x00"
    expected = PINNED[algorithm]
    with pytest.raises(download.ChecksumError) as error:
        download.fetch(
            server.url + "/data.bin",
            tmp_path,
            checksums={algorithm: expected},
            progress=False,
        )
    message = str(error.value)
    found = hashlib.new(algorithm, server.files["data.bin"]).hexdigest()
    assert "data.bin" in message and expected in message and found in message
    assert listing(tmp_path) == []


def test_truncated_transfer_is_resumed_with_a_range_request(server, tmp_path):
    server.faults["data.bin"] = ("truncate", 300_000)
    with pytest.raises(download.DownloadError, match="resume"):
        download.fetch(server.url + "/data.bin", tmp_path, checksums=PINNED)
    assert listing(tmp_path) == [".data.bin.part"]  # nothing under its name
    del server.faults["data.bin"]
    path = download.fetch(server.url + "/data.bin", tmp_path, checksums=PINNED)
    assert server.requests[-1] == ("/data.bin", "bytes=300000-")
    with open(path, "rb") as f:
        assert f.read() == DATA
    assert listing(tmp_path) == ["data.bin"]


def test_server_ignoring_ranges_sends_the_whole_file_again(server, tmp_path):
    server.faults["data.bin"] = ("truncate", 1000)
    with pytest.raises(download.DownloadError):
        download.fetch(server.url + "/data.bin", tmp_path, checksums=PINNED)
    del server.faults["data.bin"]
    server.ranges = False
    path = download.fetch(server.url + "/data.bin", tmp_path, checksums=PINNED)
    with open(path, "rb") as f:
        assert f.read() == DATA


def test_a_stale_part_longer_than_the_file_starts_again(server, tmp_path):
    with open(tmp_path / ".data.bin.part", "wb") as f:
        f.write(b"x" * (len(DATA) + 10))
    path = download.fetch(server.url + "/data.bin", tmp_path, checksums=PINNED)
    with open(path, "rb") as f:
        assert f.read() == DATA


def test_a_wrong_file_in_place_is_downloaded_again(server, tmp_path, capsys):
    (tmp_path / "data.bin").write_bytes(b"old")
    download.fetch(server.url + "/data.bin", tmp_path, checksums=PINNED)
    assert "downloading it again" in capsys.readouterr().out
    assert (tmp_path / "data.bin").read_bytes() == DATA


def test_unreachable_server_names_the_url_and_the_manual_way(tmp_path):
    url = closed_url() + "/data.bin"
    with pytest.raises(download.DownloadError) as error:
        download.fetch(url, tmp_path, manual="Put data.bin in ~/data.")
    assert url in str(error.value)
    assert "Put data.bin in ~/data." in str(error.value)
    assert listing(tmp_path) == []


@pytest.mark.parametrize("status", [404, 503])
def test_error_status_names_the_url(server, tmp_path, status):
    server.faults["data.bin"] = ("status", status)
    with pytest.raises(download.DownloadError, match=str(status)) as error:
        download.fetch(server.url + "/data.bin", tmp_path)
    assert server.url + "/data.bin" in str(error.value)
    assert listing(tmp_path) == []


def test_read_only_target_is_refused_before_any_request(server, tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("")
    with pytest.raises(ValueError, match="download folder") as error:
        download.fetch(server.url + "/data.bin", blocker / "sub")
    assert str(blocker) in str(error.value)
    assert server.requests == []


def test_https_to_http_redirect_is_refused():
    handler = download._NoDowngrade()
    request = types.SimpleNamespace(full_url="https://a.org/data.bin")
    with pytest.raises(download.DownloadError, match="not https"):
        handler.redirect_request(
            request, None, 302, "Found", {}, "http://a.org/data.bin"
        )


def test_http_redirects_are_followed(server, tmp_path):
    server.faults["moved.bin"] = ("redirect", server.url + "/data.bin")
    path = download.fetch(server.url + "/moved.bin", tmp_path, checksums=PINNED)
    with open(path, "rb") as f:
        assert f.read() == DATA


@pytest.mark.parametrize(
    "url, error",
    [
        ("ftp://a.org/x.bin", ValueError),
        ("file:///etc/passwd", ValueError),
        (3, TypeError),
    ],
)
def test_only_http_and_https_urls(tmp_path, url, error):
    with pytest.raises(error, match="url"):
        download.fetch(url, tmp_path)


def test_override_checksums_replaces_the_pinned_ones(server, tmp_path):
    wrong = {"sha256": "0" * 64}
    with download.override_checksums({"data.bin": PINNED}):
        download.fetch(server.url + "/data.bin", tmp_path, checksums=wrong)
    os.remove(tmp_path / "data.bin")
    with pytest.raises(download.ChecksumError):
        download.fetch(server.url + "/data.bin", tmp_path, checksums=wrong)


def test_mirror_replaces_the_base_url():
    url = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    assert download.source_url(url) == url
    assert (
        download.source_url(url, "http://127.0.0.1:9/")
        == "http://127.0.0.1:9/cifar-10-python.tar.gz"
    )
    with pytest.raises(TypeError, match="mirror"):
        download.source_url(url, 3)


def test_default_data_dir_follows_keras_home(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert download.default_data_dir("shd") == os.path.join(
        tmp_path, "datasets", "keras_elm", "shd"
    )
    monkeypatch.delenv("KERAS_HOME")
    assert download.default_data_dir("shd") == os.path.expanduser(
        os.path.join("~", ".keras", "datasets", "keras_elm", "shd")
    )


def test_downloaded_file_has_the_umask_mode(server, tmp_path):
    old = os.umask(0o022)
    try:
        path = download.fetch(server.url + "/data.bin", tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


# --- unpacking ----------------------------------------------------------------


def make_tar(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def make_zip(path, members):
    with zipfile.ZipFile(path, "w") as zipped:
        for name, data in members.items():
            zipped.writestr(name, data)
    return path


def keep_under(prefix):
    def select(name):
        return name[len(prefix) :] if name.startswith(prefix) else None

    return select


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_unpack_keeps_the_selected_members_only(tmp_path, kind):
    members = {"top/a.txt": b"a", "top/sub/b.txt": b"b", "other/c.txt": b"c"}
    if kind == "tar":
        archive = make_tar(tmp_path / "x.tar.gz", members)
        out = download.unpack_tar(
            archive, tmp_path / "out", select=keep_under("top/"), progress=False
        )
    else:
        archive = make_zip(tmp_path / "x.zip", members)
        out = download.unpack_zip(
            archive, tmp_path / "out", select=keep_under("top/")
        )
    assert sorted(os.listdir(out)) == ["a.txt", "sub"]
    assert (tmp_path / "out" / "sub" / "b.txt").read_bytes() == b"b"


@pytest.mark.parametrize("kind", ["tar", "zip"])
@pytest.mark.parametrize("name", ["../evil.txt", "/abs/evil.txt"])
def test_unpack_refuses_members_that_leave_the_folder(tmp_path, kind, name):
    members = {name: b"x"}
    unpack = (
        (lambda a, t, s: download.unpack_tar(a, t, select=s, progress=False))
        if kind == "tar"
        else (lambda a, t, s: download.unpack_zip(a, t, select=s))
    )
    archive = (make_tar if kind == "tar" else make_zip)(
        tmp_path / f"x.{kind}", members
    )
    with pytest.raises(ValueError, match="leave the folder"):
        unpack(archive, tmp_path / "out", lambda n: n)
    assert not (tmp_path / "out").exists()
    assert not (tmp_path.parent / "evil.txt").exists()


def test_unpack_of_a_truncated_archive_leaves_nothing(tmp_path):
    archive = make_tar(tmp_path / "x.tar.gz", {"top/a.txt": os.urandom(50_000)})
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a whole tar archive"):
        download.unpack_tar(
            archive, tmp_path / "out", select=lambda n: n, progress=False
        )
    assert listing(tmp_path) == ["x.tar.gz"]


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_unpack_with_nothing_selected_or_a_failed_check_publishes_nothing(
    tmp_path, kind
):
    members = {"top/a.txt": b"a"}
    archive = (make_tar if kind == "tar" else make_zip)(
        tmp_path / f"x.{kind}", members
    )

    def unpack(select, check=None):
        if kind == "tar":
            return download.unpack_tar(
                archive,
                tmp_path / "out",
                select=select,
                check=check,
                progress=False,
            )
        return download.unpack_zip(
            archive, tmp_path / "out", select=select, check=check
        )

    with pytest.raises(ValueError, match=r"none of the files.*holds: top/\."):
        unpack(lambda n: None)

    def check(folder):
        raise ValueError("layout does not match")

    with pytest.raises(ValueError, match="layout does not match"):
        unpack(lambda n: n, check)
    assert listing(tmp_path) == [f"x.{kind}"]
    out = unpack(lambda n: n)
    assert os.listdir(os.path.join(out, "top")) == ["a.txt"]


def test_ctrl_c_during_a_transfer_keeps_only_the_hidden_part(
    server, tmp_path, monkeypatch
):
    open_url = download._OPENER.open
    monkeypatch.setattr(download, "_CHUNK", 100_000)

    class Interrupted:
        def __init__(self, response):
            self._response, self.reads = response, 0
            self.status, self.headers = response.status, response.headers

        def read(self, size):
            self.reads += 1
            if self.reads == 2:
                raise KeyboardInterrupt
            return self._response.read(size)

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            self._response.close()

    monkeypatch.setattr(
        download._OPENER, "open", lambda *a, **k: Interrupted(open_url(*a, **k))
    )
    with pytest.raises(KeyboardInterrupt):
        download.fetch(server.url + "/data.bin", tmp_path, checksums=PINNED)
    assert listing(tmp_path) == [".data.bin.part"]
    assert os.path.getsize(tmp_path / ".data.bin.part") == 100_000
    monkeypatch.setattr(download._OPENER, "open", open_url)
    path = download.fetch(server.url + "/data.bin", tmp_path, checksums=PINNED)
    assert server.requests[-1] == ("/data.bin", "bytes=100000-")
    with open(path, "rb") as f:
        assert f.read() == DATA
