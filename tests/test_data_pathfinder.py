"""Pathfinder: the generator, the release writer and the loader."""

import io
import os
import signal
import stat
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from PIL import Image

from keras_elm.data import pathfinder

BACKEND = keras.backend.backend()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _components(mask):
    """Labels of the 4-connected components of a boolean image."""
    labels = np.zeros(mask.shape, int)
    count = 0
    for seed in zip(*np.nonzero(mask)):
        if labels[seed]:
            continue
        count += 1
        labels[seed] = count
        stack = [seed]
        while stack:
            r, c = stack.pop()
            for nr, nc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                if (
                    0 <= nr < mask.shape[0]
                    and 0 <= nc < mask.shape[1]
                    and mask[nr, nc]
                    and not labels[nr, nc]
                ):
                    labels[nr, nc] = count
                    stack.append((nr, nc))
    return labels, count


def _snapshot(folder):
    files = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                files[path] = (os.stat(path).st_mtime_ns, f.read())
    return files


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """A small release (20 images, 3 metadata files) plus one empty image."""
    directory = tmp_path_factory.mktemp("lra_release")
    root = pathfinder.write_release(
        directory,
        20,
        image_size=32,
        difficulty="easy",
        seed=3,
        images_per_batch=8,
    )
    open(os.path.join(root, "imgs", "0", "sample_empty.png"), "wb").close()
    with open(os.path.join(root, "metadata", "0.npy"), "a") as f:
        f.write("imgs/0 sample_empty.png 0 1\n")
    return directory, root


def _copy(release, tmp_path):
    directory, _ = release
    target = tmp_path / "copy"
    for path, (_, data) in _snapshot(directory).items():
        out = target / os.path.relpath(path, directory)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    return target, os.path.join(target, "pathfinder32", "curv_baseline")


# --- generate ----------------------------------------------------------------


@pytest.mark.parametrize(
    "image_size,difficulty,count",
    [(32, "hard", 4), (64, "intermediate", 3), (128, "hard", 2)],
)
def test_generate_shapes_and_dtypes(image_size, difficulty, count):
    images, labels = pathfinder.generate(
        count,
        image_size=image_size,
        difficulty=difficulty,
        seed=1,
        workers=1,
        progress=False,
    )
    assert images.shape == (count, image_size, image_size)
    assert images.dtype == np.uint8
    assert labels.shape == (count,) and labels.dtype == np.int32
    assert set(labels.tolist()) <= {0, 1}
    # Curves and discs on a black background, full range used.
    assert images.max() == 255
    assert np.median(images) == 0


def test_generate_is_deterministic_and_independent_of_workers():
    kwargs = dict(image_size=32, difficulty="easy", seed=11, progress=False)
    images_1, labels_1 = pathfinder.generate(8, workers=1, **kwargs)
    images_2, labels_2 = pathfinder.generate(8, workers=2, **kwargs)
    np.testing.assert_array_equal(images_1, images_2)
    np.testing.assert_array_equal(labels_1, labels_2)
    # A prefix of a larger set is the smaller set.
    images_3, _ = pathfinder.generate(5, workers=1, **kwargs)
    np.testing.assert_array_equal(images_3, images_1[:5])
    other, _ = pathfinder.generate(8, workers=1, **{**kwargs, "seed": 12})
    assert not np.array_equal(other, images_1)


def test_seed_none_draws_fresh_images():
    first, _ = pathfinder.generate(2, seed=None, workers=1, progress=False)
    second, _ = pathfinder.generate(2, seed=None, workers=1, progress=False)
    assert not np.array_equal(first, second)


def test_labels_are_balanced():
    _, labels = pathfinder.generate(
        200, image_size=32, difficulty="easy", seed=0, workers=2, progress=False
    )
    assert 0.35 <= labels.mean() <= 0.65


def test_progress_bar(capsys):
    pathfinder.generate(3, seed=0, workers=1, progress=True)
    assert "3/3" in capsys.readouterr().out


def test_render_is_the_image_of_generate():
    images, labels = pathfinder.generate(
        3, image_size=64, seed=5, workers=1, progress=False
    )
    image, label = pathfinder.render(5, 2, image_size=64)
    np.testing.assert_array_equal(image, images[2])
    assert label == labels[2]


@pytest.mark.parametrize(
    "image_size,difficulty", [(32, "hard"), (64, "easy"), (128, "hard")]
)
def test_exactly_two_marker_discs_on_curve_ends(image_size, difficulty):
    settings = pathfinder.SETTINGS[image_size]
    count = 2 if image_size == 128 else 12
    seen = set()
    for index in range(count):
        image, label, parts = pathfinder.render(
            7,
            index,
            image_size=image_size,
            difficulty=difficulty,
            return_parts=True,
        )
        seen.add(label)
        labels, discs = _components(parts["marker_layer"] > 0)
        assert discs == 2
        for centre in parts["markers"]:
            pixel = tuple(np.rint(centre).astype(int))
            assert labels[pixel] > 0
            # Full grey at the centre, and the disc is round: its pixels
            # are those within the marker radius (plus anti-aliasing).
            assert image[pixel] == 255
            rows, cols = np.nonzero(labels == labels[pixel])
            distances = np.hypot(rows - centre[0], cols - centre[1])
            assert distances.max() < settings.marker_radius + 1
            assert len(rows) >= np.pi * settings.marker_radius**2
        assert (
            labels[tuple(np.rint(parts["markers"][0]).astype(int))]
            != (labels[tuple(np.rint(parts["markers"][1]).astype(int))])
        )
        # Every marker sits on the free end of a target curve (snakes 0 and
        # 1): both on one curve's two ends exactly when the label is 1.
        ends = {}
        for number, snake in enumerate(parts["snakes"][:2]):
            ends[(number, "start")] = snake[0]
            ends[(number, "end")] = snake[-1]
            assert len(snake) == pathfinder.DIFFICULTIES[difficulty][1] + 1
        owners = []
        for centre in parts["markers"]:
            matches = [
                key for key, point in ends.items() if np.allclose(point, centre)
            ]
            assert len(matches) == 1
            owners.append(matches[0])
        assert owners[0][1] != owners[1][1]
        assert (owners[0][0] == owners[1][0]) == (label == 1)
        # The discs are drawn over ink: the curve reaches them.
        for centre in parts["markers"]:
            pixel = tuple(np.rint(centre).astype(int))
            assert parts["snake_layer"][pixel] > 0
    if count > 2:
        assert seen == {0, 1}


def test_cache_is_written_atomically_and_reused(tmp_path, monkeypatch):
    kwargs = dict(
        image_size=32,
        difficulty="hard",
        seed=2,
        progress=False,
        workers=1,
        cache_dir=tmp_path / "cache",
    )
    images, labels = pathfinder.generate(4, **kwargs)
    names = os.listdir(tmp_path / "cache")
    assert len(names) == 1 and names[0].endswith(".npz")
    for part in (
        "pathfinder32",
        "hard",
        "n4",
        "seed2",
        f"v{pathfinder.GENERATOR_VERSION}",
    ):
        assert part in names[0]

    def fail(*args, **kwargs):
        raise AssertionError("drew images instead of reading the cache")

    monkeypatch.setattr(pathfinder.generator, "_generate", fail)
    cached_images, cached_labels = pathfinder.generate(4, **kwargs)
    np.testing.assert_array_equal(cached_images, images)
    np.testing.assert_array_equal(cached_labels, labels)
    with pytest.raises(AssertionError, match="cache"):
        pathfinder.generate(5, **kwargs)
    assert os.listdir(tmp_path / "cache") == names


def test_seed_none_is_not_cached(tmp_path):
    pathfinder.generate(
        2, seed=None, workers=1, progress=False, cache_dir=tmp_path
    )
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(num_samples=0), ValueError, "num_samples"),
        (dict(num_samples=2.5), TypeError, "num_samples"),
        (dict(image_size=48), ValueError, r"image_size.*\(32, 64, 128\)"),
        (dict(difficulty="medium"), ValueError, "difficulty.*'easy'"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(seed=True), TypeError, "seed"),
        (dict(workers=0), ValueError, "workers"),
        (dict(progress="yes"), TypeError, "progress"),
    ],
)
def test_generate_rejects_bad_arguments(kwargs, error, match):
    arguments = dict(num_samples=2, seed=0, workers=1, progress=False)
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        pathfinder.generate(arguments.pop("num_samples"), **arguments)


# --- write_release and load --------------------------------------------------


def test_write_release_layout(release):
    directory, root = release
    assert root == os.path.join(directory, "pathfinder32", "curv_baseline")
    assert sorted(os.listdir(os.path.join(root, "metadata"))) == [
        "0.npy",
        "1.npy",
        "2.npy",
    ]
    with open(os.path.join(root, "metadata", "1.npy")) as f:
        first = f.readline().split()
    assert first[:3] == ["imgs/1", "sample_0.png", "0"]
    with Image.open(os.path.join(root, first[0], first[1])) as image:
        assert image.mode == "L" and image.size == (32, 32)
    images, labels = pathfinder.generate(
        20, image_size=32, difficulty="easy", seed=3, workers=1, progress=False
    )
    assert int(first[3]) == labels[8]
    with Image.open(os.path.join(root, "imgs", "1", "sample_0.png")) as image:
        np.testing.assert_array_equal(np.asarray(image), images[8])


def test_load_round_trip_skips_empty_files_and_splits(release):
    directory, _ = release
    splits = {
        split: pathfinder.load(
            directory, image_size=32, difficulty="easy", split=split, seed=0
        )
        for split in pathfinder.SPLITS
    }
    # 20 images; the empty file is skipped.
    assert [len(splits[s][0]) for s in pathfinder.SPLITS] == [16, 2, 2]
    for images, labels in splits.values():
        assert images.dtype == np.uint8 and images.shape[1:] == (32, 32)
        assert labels.dtype == np.int32
    images, labels = pathfinder.generate(
        20, image_size=32, difficulty="easy", seed=3, workers=1, progress=False
    )
    expected = {image.tobytes(): label for image, label in zip(images, labels)}
    loaded = [
        (image.tobytes(), label)
        for images_, labels_ in splits.values()
        for image, label in zip(images_, labels_)
    ]
    assert len({key for key, _ in loaded}) == 20  # disjoint, all present
    assert dict(loaded) == expected
    again = pathfinder.load(
        directory, image_size=32, difficulty="easy", split="train", seed=0
    )
    np.testing.assert_array_equal(again[0], splits["train"][0])
    other = pathfinder.load(
        directory, image_size=32, difficulty="easy", split="train", seed=1
    )
    assert not np.array_equal(other[0], splits["train"][0])


def test_load_does_not_modify_files(release):
    directory, _ = release
    before = _snapshot(directory)
    for split in pathfinder.SPLITS:
        pathfinder.load(
            directory, image_size=32, difficulty="easy", split=split
        )
    assert _snapshot(directory) == before


def test_load_converts_rgb_images(release, tmp_path):
    directory, root = _copy(release, tmp_path)
    path = os.path.join(root, "imgs", "0", "sample_0.png")
    with Image.open(path) as image:
        grey = np.asarray(image)
    Image.fromarray(np.stack([grey] * 3, axis=-1)).save(path)
    original = {
        split: pathfinder.load(
            release[0], image_size=32, difficulty="easy", split=split
        )
        for split in pathfinder.SPLITS
    }
    for split in pathfinder.SPLITS:
        images, _ = pathfinder.load(
            directory, image_size=32, difficulty="easy", split=split
        )
        np.testing.assert_array_equal(images, original[split][0])


def test_missing_folder_says_where_and_how(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        pathfinder.load(tmp_path, image_size=128, difficulty="intermediate")
    message = str(info.value)
    assert os.path.join("pathfinder128", "curv_contour_length_9") in message
    assert "lra_release" in message and "write_release" in message


def _load_every_split(directory):
    for split in pathfinder.SPLITS:
        pathfinder.load(
            directory, image_size=32, difficulty="easy", split=split
        )


def test_corrupt_image_is_named(release, tmp_path):
    directory, root = _copy(release, tmp_path)
    path = os.path.join(root, "imgs", "2", "sample_1.png")
    with open(path, "wb") as f:
        f.write(b"\x89PNG garbage, not an image")
    with pytest.raises(ValueError, match=r"sample_1\.png"):
        _load_every_split(directory)


def test_wrong_image_size_is_named(release, tmp_path):
    directory, root = _copy(release, tmp_path)
    path = os.path.join(root, "imgs", "1", "sample_3.png")
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(path)
    with pytest.raises(ValueError, match=r"sample_3\.png.*16 x 16.*32 x 32"):
        _load_every_split(directory)


def test_malformed_metadata_line_is_named(release, tmp_path):
    directory, root = _copy(release, tmp_path)
    with open(os.path.join(root, "metadata", "1.npy"), "a") as f:
        f.write("imgs/1 sample_0.png\n")
    with pytest.raises(ValueError, match=r"1\.npy, line 9"):
        pathfinder.load(directory, image_size=32, difficulty="easy")


def test_missing_listed_image_is_named(release, tmp_path):
    directory, root = _copy(release, tmp_path)
    with open(os.path.join(root, "metadata", "2.npy"), "a") as f:
        f.write("imgs/2 sample_99.png 0 1\n")
    with pytest.raises(FileNotFoundError, match=r"sample_99\.png.*line 5"):
        pathfinder.load(directory, image_size=32, difficulty="easy")


def test_load_rejects_bad_arguments(release):
    directory, _ = release
    with pytest.raises(ValueError, match="split.*'train'"):
        pathfinder.load(
            directory, image_size=32, difficulty="easy", split="validation"
        )
    with pytest.raises(ValueError, match="image_size"):
        pathfinder.load(directory, image_size=33)


def test_write_release_refuses_to_mix_data_sets(release, tmp_path):
    directory, _ = _copy(release, tmp_path)
    with pytest.raises(FileExistsError, match="another data set"):
        pathfinder.write_release(
            directory, 4, image_size=32, difficulty="easy", seed=0
        )


def test_a_release_without_metadata_files_is_named(release, tmp_path):
    directory, root = _copy(release, tmp_path)
    for name in os.listdir(os.path.join(root, "metadata")):
        os.remove(os.path.join(root, "metadata", name))
    with pytest.raises(ValueError, match="metadata.* lists no image"):
        pathfinder.load(directory, image_size=32, difficulty="easy")


# --- bad files: encodings, image modes, empty releases -----------------------


def test_non_utf8_metadata_is_named_with_its_line(release, tmp_path):
    directory, root = _copy(release, tmp_path)
    with open(os.path.join(root, "metadata", "2.npy"), "ab") as f:
        f.write(b"imgs/2 sample_\xff.png 0 1\n")
    with pytest.raises(ValueError, match=r"2\.npy, line 5: not UTF-8"):
        pathfinder.load(directory, image_size=32, difficulty="easy")


@pytest.mark.parametrize("count", [0, 1, 9])
def test_empty_release_or_split_raises_naming_the_folder(tmp_path, count):
    root = os.path.join(tmp_path, "pathfinder32", "curv_baseline")
    os.makedirs(os.path.join(root, "metadata"))
    if count:
        pathfinder.write_release(
            tmp_path, count, image_size=32, difficulty="easy", seed=0
        )
    else:
        open(os.path.join(root, "metadata", "0.npy"), "w").close()
    # 1 or 9 images leave the val split empty.
    with pytest.raises(ValueError, match="metadata") as info:
        pathfinder.load(tmp_path, image_size=32, difficulty="easy", split="val")
    assert os.path.join(root, "metadata") in str(info.value)


def _grey_as(mode, grey):
    """`grey` (uint8) as a PNG image of `mode` that holds the same greys."""
    if mode == "I;16":
        return Image.fromarray(grey.astype(np.uint16) * 257)
    if mode == "P":
        image = Image.new("P", grey.shape[::-1])
        image.putpalette([level for i in range(256) for level in (i, i, i)])
        image.putdata(grey.ravel().tolist())
        return image
    if mode == "1":
        return Image.fromarray(grey).convert("1", dither=Image.Dither.NONE)
    return Image.fromarray(grey).convert(mode)


@pytest.mark.parametrize("mode", ["I;16", "P", "1", "RGB"])
def test_load_reads_every_supported_png_mode(release, tmp_path, mode):
    directory, root = _copy(release, tmp_path)
    path = os.path.join(root, "imgs", "0", "sample_0.png")
    with Image.open(path) as image:
        grey = np.asarray(image)
    if mode == "1":  # black and white only
        grey = np.where(grey > 127, 255, 0).astype(np.uint8)
    _grey_as(mode, grey).save(path)
    with Image.open(path) as image:
        assert image.mode == mode
    loaded = [
        pathfinder.load(
            directory, image_size=32, difficulty="easy", split=split
        )[0]
        for split in pathfinder.SPLITS
    ]
    assert any((images == grey).all(axis=(1, 2)).any() for images in loaded)


def test_sixteen_bit_pngs_are_scaled_not_clipped(release, tmp_path):
    directory, root = _copy(release, tmp_path)
    levels = np.array([0, 257, 32767, 40000, 65280, 65535], np.uint16)
    wide = np.resize(levels, (32, 32)).astype(np.uint16)
    for batch in ("0", "1", "2"):
        for name in os.listdir(os.path.join(root, "imgs", batch)):
            path = os.path.join(root, "imgs", batch, name)
            if os.path.getsize(path):
                Image.fromarray(wide).save(path)
    images, _ = pathfinder.load(directory, image_size=32, difficulty="easy")
    expected = np.rint(wide * (255 / 65535)).astype(np.uint8)
    np.testing.assert_array_equal(
        images, np.broadcast_to(expected, images.shape)
    )


@pytest.mark.parametrize("mode", ["LA", "RGBA", "I"])
def test_unsupported_png_modes_are_named(release, tmp_path, mode):
    directory, root = _copy(release, tmp_path)
    path = os.path.join(root, "imgs", "0", "sample_0.png")
    image = Image.new(mode, (32, 32))
    if mode == "I":  # PNG cannot hold it: the same bytes under another name
        path = path[: -len(".png")] + ".tiff"
        image.save(path)
        metadata = os.path.join(root, "metadata", "0.npy")
        with open(metadata) as f:
            text = f.read()
        with open(metadata, "w") as f:
            f.write(text.replace("sample_0.png", "sample_0.tiff"))
    else:
        image.save(path)
    with pytest.raises(ValueError, match=f"sample_0.*mode {mode!r}"):
        _load_every_split(directory)


# --- caches: checked, regenerated, written whole and readable ----------------

_CACHE = dict(
    image_size=32, difficulty="easy", seed=2, workers=1, progress=False
)


def _npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _corrupt_caches(path, other):
    """Bad contents for the cache `path`; `other` is a valid foreign one."""
    with open(path, "rb") as f:
        whole = f.read()
    with np.load(path) as stored:
        good = dict(stored)

    def npz(**arrays):
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    with open(other, "rb") as f:
        foreign = f.read()
    return {
        "empty": b"",
        "garbage": bytes(
            np.random.default_rng(0).integers(0, 256, 500, np.uint8)
        ),
        "truncated": whole[: len(whole) // 2],
        "npy": _npy(good["images"]),
        "no settings": npz(images=good["images"], labels=good["labels"]),
        "wrong keys": npz(**{**good, "extra": np.zeros(2)}),
        "wrong shape": npz(**{**good, "images": good["images"][:, :16]}),
        "wrong count": npz(**{**good, "labels": good["labels"][:2]}),
        "wrong dtype": npz(
            **{**good, "images": good["images"].astype(np.float32)}
        ),
        "wrong values": npz(**{**good, "labels": good["labels"] + 2}),
        "pickled": npz(**{**good, "labels": np.array([object()] * 4)}),
        "other settings": foreign,
    }


def test_corrupt_or_stale_caches_are_generated_again(tmp_path, capsys):
    if BACKEND != "jax":
        pytest.skip("runs in the jax test process (numpy only)")
    cache_dir = tmp_path / "cache"
    images, labels = pathfinder.generate(4, cache_dir=cache_dir, **_CACHE)
    (path,) = (cache_dir / name for name in os.listdir(cache_dir))
    other = pathfinder.generate(
        4, cache_dir=tmp_path / "other", **{**_CACHE, "seed": 3}
    )
    (other_path,) = (
        tmp_path / "other" / name for name in os.listdir(tmp_path / "other")
    )
    capsys.readouterr()
    for case, data in _corrupt_caches(path, other_path).items():
        path.write_bytes(data)
        got_images, got_labels = pathfinder.generate(
            4, cache_dir=cache_dir, **_CACHE
        )
        out = capsys.readouterr().out
        assert str(path) in out and "generating it again" in out, case
        assert out.count("\n") == 1, case
        np.testing.assert_array_equal(got_images, images, err_msg=case)
        np.testing.assert_array_equal(got_labels, labels, err_msg=case)
        assert os.listdir(cache_dir) == [path.name], case
    # The regenerated cache is sound: read back without a word.
    pathfinder.generate(4, cache_dir=cache_dir, **_CACHE)
    assert capsys.readouterr().out == ""
    assert not np.array_equal(other[0], images)


@pytest.mark.parametrize("make", ["file", "under_a_file"])
def test_unwritable_cache_dir_fails_before_generating(
    tmp_path, monkeypatch, make
):
    (tmp_path / "afile").write_bytes(b"")
    cache_dir = tmp_path / "afile"
    if make == "under_a_file":
        cache_dir = cache_dir / "sub"

    def fail(*args, **kwargs):
        raise AssertionError("generated before checking the folder")

    monkeypatch.setattr(pathfinder.generator, "_generate", fail)
    with pytest.raises(ValueError, match="cache_dir.*afile"):
        pathfinder.generate(4, cache_dir=cache_dir, **_CACHE)
    with pytest.raises(ValueError, match="release folder.*afile"):
        pathfinder.write_release(cache_dir, 4, image_size=32, seed=0)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_every_file_written_is_readable_under_the_umask(tmp_path, umask_022):
    if BACKEND != "jax":
        pytest.skip("runs in the jax test process (numpy only)")
    pathfinder.generate(4, cache_dir=tmp_path / "cache", **_CACHE)
    pathfinder.write_release(
        tmp_path / "release",
        12,
        image_size=32,
        difficulty="easy",
        seed=0,
        images_per_batch=8,
    )
    written = [
        os.path.join(folder, name)
        for folder, _, names in os.walk(tmp_path)
        for name in names
    ]
    assert len(written) == 1 + 12 + 2
    for path in written:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644, path
        assert not os.path.basename(path).startswith("."), path


def _children(pid):
    """Ids of the processes whose parent is `pid`."""
    children = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if name.isdigit() and int(fields[1]) == pid and fields[0] != "Z":
            children.append(int(name))
    return children


@pytest.mark.parametrize(
    "kill, watch",
    [
        (signal.SIGKILL, "prctl"),
        (signal.SIGTERM, "prctl"),
        # Where prctl is missing, each worker polls its parent id.
        (signal.SIGKILL, "poll"),
    ],
)
def test_a_killed_run_leaves_no_workers_and_the_rerun_cleans_up(
    tmp_path, kill, watch
):
    if BACKEND != "torch":
        pytest.skip("runs in the torch test process")
    if not os.path.isdir("/proc"):
        pytest.skip("needs /proc")
    cache_dir = tmp_path / "cache"
    # The data modules alone, without keras (seconds saved).
    script = (
        "import sys, types\n"
        "for name, path in (('keras_elm', 'keras_elm'),\n"
        "                   ('keras_elm.data', 'keras_elm/data')):\n"
        "    sys.modules[name] = types.ModuleType(name)\n"
        "    sys.modules[name].__path__ = [path]\n"
        "from keras_elm.data import processes, pathfinder\n"
        f"if {watch!r} == 'poll':\n"
        "    processes.sys = types.SimpleNamespace(platform='other')\n"
        f"pathfinder.generate(100_000, workers=2, cache_dir="
        f"{str(cache_dir)!r}, image_size=32, difficulty='easy', seed=2, "
        f"progress=False)\n"
    )
    run = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while len(_children(run.pid)) < 2:
            assert run.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        workers = _children(run.pid)
    finally:
        os.kill(run.pid, kill)
        run.wait()
    deadline = time.monotonic() + 10
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = [pid for pid in workers if _alive(pid)]
    for pid in alive:  # not to leave them running when the test fails
        os.kill(pid, signal.SIGKILL)
    assert not alive, f"workers {alive} outlived their killed parent"
    # A save the kill cut short leaves a temporary named after the run;
    # the next run removes it.
    name = os.path.basename(pathfinder._cache_path("", 4, 32, "easy", 2))
    (cache_dir / f".{name}.{run.pid}.x1.tmp").write_bytes(b"half a cache")
    images, _ = pathfinder.generate(4, cache_dir=cache_dir, **_CACHE)
    assert len(images) == 4
    # The killed n=100,000 run may have kept finished chunks for its rerun.
    kept = [n for n in os.listdir(cache_dir) if not n.endswith(".parts")]
    assert kept == [name]


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
