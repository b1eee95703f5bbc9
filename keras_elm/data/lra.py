"""The Long Range Arena release: downloaded once, unpacked by task.

`lra_release.gz` (about 7.7 GB, a gzipped tar) holds the files of
Pathfinder (`pathfinder32/`, `pathfinder64/`, `pathfinder128/`), ListOps
(`listops-1000/`) and AAN / Retrieval (`tsv_data/`), nested as
`lra_release/lra_release/...`. `download_release()` fetches it once into
`data_dir` (resuming a broken transfer with an HTTP `Range` request) and
keeps it there, then unpacks only the members a task asks for, each into
its own folder of `<data_dir>/lra_release/`:

    <data_dir>/lra_release.gz                the archive, kept as the cache
    <data_dir>/lra_release/pathfinder32/     pathfinder.load(<...>/lra_release)
    <data_dir>/lra_release/listops-1000/     listops.load(<...>/listops-1000)
    <data_dir>/lra_release/tsv_data/         aan.load(<...>/tsv_data)

so that a later task unpacks what it lacks from the archive on disk,
without the network. Each member is looked for wherever it sits in the
archive, and the folder whose layout its loader reads is chosen: the
release holds two `pathfinder128` folders.

No checksum of the release is published: the LRA repository
(google-research/long-range-arena) gives the URL only, and the code bases
that download it (S4's `src/dataloaders/README.md`: curl, then tar) check
none. So none is pinned here (`CHECKSUMS = None`): the transfer is checked
against the length the server announces, and each member's files against
the layout its loader reads.
"""

import os
import secrets
import shutil

from keras_elm.checks import check_bool as _check_bool
from keras_elm.checks import check_choice as _check_choice
from keras_elm.checks import check_folder as _check_folder
from keras_elm.data import download

URL = "https://storage.googleapis.com/long-range-arena/lra_release.gz"
RELEASE_URL = URL
ARCHIVE = "lra_release.gz"
# None published (see the module docstring); `download.override_checksums`
# can still pin one for `ARCHIVE`.
CHECKSUMS = None
# Bytes of `lra_release.gz`, approximately (the plan's estimate).
DOWNLOAD_SIZE = 7_700_000_000
# The folder made under `data_dir`, holding one folder per member.
DOWNLOADED_NAME = "lra_release"
# Each member and its folder in `<data_dir>/lra_release/`.
FOLDERS = {
    "pathfinder32": "pathfinder32",
    "pathfinder64": "pathfinder64",
    "pathfinder128": "pathfinder128",
    "listops": "listops-1000",
    "aan": "tsv_data",
}
MEMBERS = tuple(FOLDERS)
# `keras_elm.data.aan.FILES`, which imports this module (no import back).
_AAN_FILES = (
    "new_aan_pairs.train.tsv",
    "new_aan_pairs.eval.tsv",
    "new_aan_pairs.test.tsv",
)
MANUAL = (
    f"Or get it by hand: download {URL} (about 7.7 GB), unpack it (tar xzf "
    f"{ARCHIVE}) and pass its folder lra_release/lra_release/ (Pathfinder), "
    f"lra_release/lra_release/listops-1000/ (ListOps) or "
    f"lra_release/lra_release/tsv_data/ (Retrieval) as the data folder."
)
# Folder names recorded for the message of a member not found: the first
# levels of the archive.
_LISTED_DEPTH = 3


def _pathfinder_start(parts, name):
    """Where the `pathfinder{S}` folder's own path starts in `parts`, for
    a file of `<...>/pathfinder{S}/<difficulty>/{metadata,imgs}/...`."""
    from keras_elm.data.pathfinder.drawing import DIFFICULTIES

    folders = {folder for folder, _ in DIFFICULTIES.values()}
    for i in range(len(parts) - 4, -1, -1):  # the innermost one
        if (
            parts[i] == name
            and parts[i + 1] in folders
            and parts[i + 2] in ("metadata", "imgs")
        ):
            return i + 1
    return None


def _file_start(parts, names):
    """For a file named one of `names`: the start of its name in `parts`."""
    return len(parts) - 1 if parts[-1] in names else None


def _start(member, parts):
    """Where the member's folder ends in a file's `parts` (None: not its)."""
    if member.startswith("pathfinder"):
        return _pathfinder_start(parts, member)
    if member == "listops":
        from keras_elm.data.listops.release import FILES

        return _file_start(parts, tuple(FILES.values()))
    return _file_start(parts, _AAN_FILES)


def _expected(member):
    """What the member's loader reads, for messages."""
    if member.startswith("pathfinder"):
        return (
            f"a folder {member}/ holding <difficulty>/metadata/*.npy and the "
            f"<difficulty>/imgs/ they list (curv_baseline, "
            f"curv_contour_length_9, curv_contour_length_14), as "
            f"keras_elm.data.pathfinder.load reads"
        )
    if member == "listops":
        return (
            "a folder holding basic_train.tsv, basic_val.tsv and "
            "basic_test.tsv (header 'Source<tab>Target'), as "
            "keras_elm.data.listops.load reads"
        )
    return (
        f"a folder holding {', '.join(_AAN_FILES)} (five tab-separated "
        f"fields a line), as keras_elm.data.aan.load reads"
    )


def _first_line(path):
    with open(path, "rb") as f:
        return f.readline().rstrip(b"\r\n")


def _pathfinder_problem(folder):
    """Why `load()` cannot read the Pathfinder folder; None: it can.

    Every difficulty folder present must list images that exist in its
    first metadata file that lists any; at least one must be present.
    """
    from keras_elm.data.pathfinder import release
    from keras_elm.data.pathfinder.drawing import DIFFICULTIES

    present = 0
    for sub, _ in DIFFICULTIES.values():
        root = os.path.join(folder, sub)
        if not os.path.isdir(root):
            continue
        metadata = os.path.join(root, "metadata")
        names = sorted(
            (
                name
                for name in (
                    os.listdir(metadata) if os.path.isdir(metadata) else ()
                )
                if name.endswith(".npy")
            ),
            key=release._metadata_order,
        )
        if not names:
            return f"{metadata} holds no metadata file *.npy"
        try:
            # The first file that lists an image (the release's first does).
            if not any(
                release._read_metadata(os.path.join(metadata, name), root)
                for name in names
            ):
                return f"the metadata files of {metadata} list no image"
        except (OSError, ValueError) as error:
            return str(error)
        present += 1
    if not present:
        return f"{folder} holds no difficulty folder"
    return None


def _text_problem(folder, names, check_line, expected):
    for name in names:
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            return f"{path} is missing"
        line = _first_line(path)
        if not check_line(line):
            return (
                f"{path}, line 1: expected {expected}. Found: "
                f"{line[:80].decode('utf-8', 'replace')!r}"
            )
    return None


def _problem(member, folder):
    """Why the member's loader cannot read `folder`; None: it can."""
    if member.startswith("pathfinder"):
        return _pathfinder_problem(folder)
    if member == "listops":
        from keras_elm.data.listops.release import FILES
        from keras_elm.data.listops.release import HEADER

        return _text_problem(
            folder,
            FILES.values(),
            lambda line: line == HEADER.encode("ascii"),
            f"the header {HEADER!r}",
        )
    return _text_problem(
        folder,
        _AAN_FILES,
        lambda line: len(line.split(b"\t")) == 5,
        "'label<tab>id1<tab>id2<tab>text1<tab>text2'",
    )


def find_unpacked(data_dir, member):
    """The folder of `member` already in `data_dir`, unpacked by hand or by
    `download_release`, or None.

    Looked for, in order: `data_dir` itself (e.g. the `listops-1000`
    folder), `<data_dir>/<FOLDERS[member]>` (the release unpacked by
    hand) and `<data_dir>/lra_release/<FOLDERS[member]>` (this module's).
    A folder counts only when its loader reads it (the checks of
    `download_release`), so `--download --data-dir ~/data/lra_release`
    never fetches 7.7 GB that are there.

    Args:
        data_dir: a folder, or None (the default download folder).
        member: one of `MEMBERS`.

    Returns:
        The member's folder, or None.

    Example:

    >>> import tempfile
    >>> find_unpacked(tempfile.mkdtemp(), "listops") is None
    True
    """
    (member,) = _check_members(member)
    if data_dir is None:
        data_dir = download.default_data_dir(DOWNLOADED_NAME)
    data_dir = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
    for folder in (
        data_dir,
        os.path.join(data_dir, FOLDERS[member]),
        os.path.join(data_dir, DOWNLOADED_NAME, FOLDERS[member]),
    ):
        if os.path.isdir(folder) and _problem(member, folder) is None:
            return folder
    return None


def download_member(data_dir, member, *, mirror=None, progress=True):
    """The folder of one member, there already or downloaded.

    `find_unpacked(data_dir, member)` if it finds one (no network), else
    `download_release(data_dir, members=member, ...)`'s folder of it. The
    `download()` of `pathfinder`, `listops` and `aan` call this.

    Args:
        data_dir: a folder, or None (the default download folder).
        member: one of `MEMBERS`.
        mirror: None, or a base URL serving `lra_release.gz`.
        progress: show progress bars.

    Returns:
        The member's folder (e.g. `<data_dir>/lra_release/listops-1000`).
    """
    found = find_unpacked(data_dir, member)
    if found is not None:
        return found
    release_dir = download_release(
        data_dir, members=member, mirror=mirror, progress=progress
    )
    return os.path.join(release_dir, FOLDERS[member])


def _check_members(members):
    if isinstance(members, str):
        members = (members,)
    try:
        members = tuple(members)
    except TypeError:
        raise TypeError(
            f"`members` must be a sequence of names out of {MEMBERS}. "
            f"Received: members={members!r}"
        ) from None
    if not members:
        raise ValueError(
            f"`members` must name at least one of {MEMBERS}. Received: "
            f"members={members!r}"
        )
    for member in members:
        _check_choice("members", member, MEMBERS)
    return tuple(dict.fromkeys(members))


def _unpacked(release_dir, member):
    """Whether the member's folder is there; raises if it is unreadable."""
    folder = os.path.join(release_dir, FOLDERS[member])
    if not os.path.isdir(folder):
        return False
    problem = _problem(member, folder)
    if problem is not None:
        raise ValueError(
            f"{folder} is not in the layout the loader reads ({problem}); "
            f"expected {_expected(member)}. Delete the folder and call "
            f"again to unpack it anew from {ARCHIVE}."
        )
    return True


class _Survey:
    """What one pass over the archive found: the members' candidate
    folders (their paths in the archive and files), and the first levels
    of the archive's folders, for messages."""

    def __init__(self, members):
        self.members = members
        self.candidates = {member: {} for member in members}  # path -> n
        self.named = {member: set() for member in members}
        self.folders = set()
        self.chosen = {}

    def select(self, name):
        parts = [part for part in name.split("/") if part not in ("", ".")]
        if not parts:
            return None
        for depth in range(1, min(len(parts), _LISTED_DEPTH + 1)):
            self.folders.add("/".join(parts[:depth]))
        for member in self.members:
            folder = FOLDERS[member]
            if folder in parts[:-1]:
                index = len(parts) - 2 - parts[:-1][::-1].index(folder)
                self.named[member].add("/".join(parts[: index + 1]))
            start = _start(member, parts)
            if start is None:
                continue
            path = "/".join(parts[:start])
            found = self.candidates[member]
            found[path] = found.get(path, 0) + 1
            number = list(found).index(path)
            return "/".join([member, str(number), *parts[start:]])
        return None

    def choose(self, archive, folder):
        """Picks each member's candidate in the unpacked `folder`."""
        for member in self.members:
            problems, readable = [], []
            for number, (path, count) in enumerate(
                self.candidates[member].items()
            ):
                candidate = os.path.join(folder, member, str(number))
                problem = _problem(member, candidate)
                if problem is None:
                    readable.append((count, -number, number))
                else:
                    shown = problem.replace(candidate, path or ".")
                    problems.append(f"{path or '.'} ({shown})")
            if readable:  # the most complete, else the first
                self.chosen[member] = max(readable)[2]
                continue
            named = sorted(self.named[member] - set(self.candidates[member]))
            found = problems + named
            if not found:
                found = sorted(self.folders)[:30]
            raise ValueError(
                f"The archive {archive} holds no {member} folder that its "
                f"loader can read: expected {_expected(member)}. Found: "
                f"{'; '.join(found) or 'no file'}."
            )


def _unpack(archive, release_dir, members, progress):
    """Unpacks the members into `release_dir`, in one pass."""
    survey = _Survey(members)
    # A unique temporary name: a killed call's is removed as stale.
    staging = os.path.join(
        release_dir, f".unpack.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    )
    marker = os.path.join(release_dir, f".{os.path.basename(staging)}.path")
    try:
        try:
            download.unpack_tar(
                archive,
                staging,
                select=survey.select,
                check=lambda folder: survey.choose(archive, folder),
                progress=progress,
            )
        except download.NothingToUnpack:
            # Say what the archive holds, member by member.
            survey.choose(archive, staging)
            raise
        for member in members:
            target = os.path.join(release_dir, FOLDERS[member])
            source = os.path.join(staging, member, str(survey.chosen[member]))
            try:
                os.rename(source, target)
            except OSError:
                if not _unpacked(release_dir, member):  # not another call's
                    raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if os.path.lexists(marker):
            os.remove(marker)


def download_release(data_dir=None, *, members, mirror=None, progress=True):
    """Downloads the LRA release once and unpacks the members asked for.

    `<data_dir>/lra_release.gz` is downloaded unless it is there (a broken
    transfer is resumed by the next call; there is no published checksum,
    so only its length is checked), then each member not yet unpacked is
    taken from it, in one pass over the archive, into its folder
    `<data_dir>/lra_release/<FOLDERS[member]>` (written whole under a
    temporary name, then renamed). A member is looked for anywhere in the
    archive; of several folders the one its loader reads is taken. The
    archive is kept, so that another member is unpacked later without the
    network; delete it to free 7.7 GB. When every member asked for is
    there already, nothing is read and the network is not touched.

    Args:
        data_dir: the folder to download into; None:
            `download.default_data_dir("lra_release")`.
        members: the members to unpack, out of `MEMBERS`:
            `"pathfinder32"`, `"pathfinder64"`, `"pathfinder128"`,
            `"listops"`, `"aan"` (a name or a sequence of names).
        mirror: None, or a base URL serving `lra_release.gz` instead of
            the release's.
        progress: show progress bars of the download and the unpacking.

    Returns:
        The folder `<data_dir>/lra_release`, holding the members' folders
        (`FOLDERS`).

    Raises:
        ValueError: `data_dir` cannot be written (before any download);
            the archive is not a whole tar archive; it holds no folder of
            a member that its loader can read (the message names what
            was expected and the folders found); or a member's folder
            already there is not readable.
        download.DownloadError: the server cannot be reached, or the
            transfer broke (the next call resumes it).

    Example:

    ```python
    import os
    import tarfile
    import tempfile

    from keras_elm.data import aan
    from keras_elm.data import lra

    # An archive in the release's layout (here a tiny stand-in) already in
    # `data_dir` is used as it is: no network access.
    data_dir = tempfile.mkdtemp()
    fixture = aan.write_fixture(os.path.join(data_dir, "tsv"), 4)
    with tarfile.open(os.path.join(data_dir, lra.ARCHIVE), "w:gz") as tar:
        tar.add(fixture, "lra_release/lra_release/tsv_data")
    folder = lra.download_release(data_dir, members="aan", progress=False)
    (a, b), labels = aan.load(os.path.join(folder, "tsv_data"), split="val")
    assert labels.shape == (4,)
    ```
    """
    members = _check_members(members)
    data_dir = _check_folder("data_dir", data_dir)
    progress = _check_bool("progress", progress)
    if data_dir is None:
        data_dir = download.default_data_dir(DOWNLOADED_NAME)
    data_dir = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
    release_dir = os.path.join(data_dir, DOWNLOADED_NAME)
    missing = tuple(m for m in members if not _unpacked(release_dir, m))
    if not missing:
        return release_dir
    archive = download.fetch(
        download.source_url(URL, mirror),
        data_dir,
        checksums=CHECKSUMS,
        filename=ARCHIVE,
        manual=MANUAL,
        progress=progress,
    )
    _unpack(archive, release_dir, missing, progress)
    return release_dir
