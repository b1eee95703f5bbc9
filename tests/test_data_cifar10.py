"""`keras_elm.data.cifar10` on small pickles written in the real format."""

import os
import pickle
import stat

import numpy as np
import pytest

from keras_elm.data import cifar10


@pytest.fixture
def rgb():
    rng = np.random.default_rng(0)
    return (
        rng.integers(0, 256, (60, 32, 32, 3), dtype="uint8"),
        rng.integers(0, 10, 60),
    )


@pytest.fixture
def folder(tmp_path, rgb):
    return cifar10.write_batches(str(tmp_path / "cifar"), *rgb)


def test_grey_conversion_is_lra_s():
    pixel = np.array([[[[200, 100, 50]]]], "uint8")
    expected = round(0.2989 * 200 + 0.587 * 100 + 0.114 * 50)
    assert cifar10.to_grey(pixel)[0, 0, 0] == expected


def test_splits_shapes_and_pixels(folder, rgb):
    images, labels = rgb
    num_test = len(images) // 6
    test_x, test_y = cifar10.load(folder, split="test")
    np.testing.assert_array_equal(test_x, cifar10.to_grey(images[-num_test:]))
    np.testing.assert_array_equal(test_y, labels[-num_test:])
    train_x, train_y = cifar10.load(folder, split="train")
    val_x, val_y = cifar10.load(folder, split="val")
    assert train_x.dtype == np.uint8 and train_x.shape[1:] == (32, 32)
    assert len(val_y) == round(0.1 * (len(images) - num_test))
    assert len(train_y) + len(val_y) == len(images) - num_test
    # Disjoint, and together the train file.
    grey = cifar10.to_grey(images[:-num_test])
    both = np.concatenate([train_x, val_x]).reshape(len(grey), -1)
    assert {r.tobytes() for r in both} == {
        r.tobytes() for r in grey.reshape(len(grey), -1)
    }


def test_validation_split_is_seeded(folder):
    a = cifar10.load(folder, split="val", seed=1)[0]
    b = cifar10.load(folder, split="val", seed=1)[0]
    c = cifar10.load(folder, split="val", seed=2)[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_missing_folder_names_both_sources(tmp_path):
    with pytest.raises(
        FileNotFoundError, match="data_batch_1.*tensorflow-datasets"
    ):
        cifar10.load(str(tmp_path / "nowhere"))


def test_missing_files_are_named(tmp_path):
    os.makedirs(tmp_path / "empty")
    with pytest.raises(
        FileNotFoundError, match=r"\['data_batch_1'.*tensorflow-datasets"
    ):
        cifar10.load(str(tmp_path / "empty"))


def test_corrupt_pickle_names_the_file(folder):
    with open(os.path.join(folder, "data_batch_3"), "wb") as f:
        f.write(b"not a pickle")
    with pytest.raises(ValueError, match="data_batch_3"):
        cifar10.load(folder)


def test_wrong_layout_names_the_file(folder):
    with open(os.path.join(folder, "test_batch"), "wb") as f:
        pickle.dump(
            {b"data": np.zeros((2, 100), "uint8"), b"labels": [0, 1]}, f
        )
    with pytest.raises(ValueError, match="test_batch.*3072"):
        cifar10.load(folder, split="test")


def test_unknown_split(folder):
    with pytest.raises(ValueError, match="split"):
        cifar10.load(folder, split="validation")


def test_loading_does_not_modify_the_files(folder):
    before = {
        n: open(os.path.join(folder, n), "rb").read()
        for n in os.listdir(folder)
    }
    cifar10.load(folder, split="train")
    after = {
        n: open(os.path.join(folder, n), "rb").read()
        for n in os.listdir(folder)
    }
    assert before == after


# --- pixels and labels are checked, never cast --------------------------------


def _write_test_batch(folder, data, labels):
    with open(os.path.join(folder, "test_batch"), "wb") as f:
        pickle.dump({b"data": data, b"labels": labels}, f)


@pytest.mark.parametrize(
    "data, expected",
    [
        (np.full((2, 3072), 300, "int64"), "from 0 to 300"),  # a cast gives 44
        (np.full((2, 3072), -1, "int64"), "from -1 to 0"),  # a cast gives 255
        (np.full((2, 3072), 0.5), "dtype float64"),  # a cast gives 0
        (np.ones((2, 3072), "float32"), "dtype float32"),
        (np.ones((2, 3072), bool), "dtype bool"),
        (np.full((2, 3072), "7"), "dtype <U1"),
    ],
    ids=["300", "-1", "0.5", "float-integral", "bool", "str"],
)
def test_bad_pixels_name_the_file(folder, data, expected):
    data = data.copy()
    if data.dtype.kind == "i":
        data[0, 0] = 0
    _write_test_batch(folder, data, [1, 2])
    with pytest.raises(
        ValueError,
        match=rf"test_batch: b'data' \(pixels\) "
        rf"must hold integers 0..255.*{expected}",
    ):
        cifar10.load(folder, split="test")


@pytest.mark.parametrize(
    "labels, expected",
    [
        ([[1, 2], [3, 4]], r"one label per image: shape \(2,\).*\(2, 2\)"),
        ([1], r"one label per image: shape \(2,\).*\(1,\)"),
        ([1, 2, 3], r"one label per image: shape \(2,\).*\(3,\)"),
        ([11, -3], "integers 0..9.*from -3 to 11"),
        ([10, 0], "integers 0..9.*from 0 to 10"),
        ([1.7, 2.2], "integers 0..9.*dtype float64"),
        (["a", "b"], "integers 0..9.*dtype <U1"),
    ],
    ids=["2d", "fewer", "more", "negative", "ten", "float", "str"],
)
def test_bad_labels_name_the_file(folder, labels, expected):
    _write_test_batch(folder, np.zeros((2, 3072), "uint8"), labels)
    with pytest.raises(
        ValueError, match=rf"test_batch: b'labels' .*{expected}"
    ):
        cifar10.load(folder, split="test")


def test_integer_pixels_of_any_dtype_in_range_load(folder):
    data = np.random.default_rng(1).integers(0, 256, (3, 3072))  # int64
    _write_test_batch(folder, data, np.array([0, 9, 4], "int16"))
    images, labels = cifar10.load(folder, split="test")
    rgb = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype("uint8")
    np.testing.assert_array_equal(images, cifar10.to_grey(rgb))
    assert labels.dtype == np.int32 and labels.tolist() == [0, 9, 4]


def test_a_split_without_images_names_the_files(folder):
    _write_test_batch(folder, np.zeros((0, 3072), "uint8"), [])
    with pytest.raises(ValueError, match=r"\['test_batch'\].*hold no images"):
        cifar10.load(folder, split="test")


# --- write_batches checks its inputs before writing anything ------------------


@pytest.mark.parametrize(
    "change, error, expected",
    [
        (
            dict(images=np.full((12, 32, 32, 3), 0.5)),
            TypeError,
            r"`images` \(pixels\) must hold integers 0..255.*float64",
        ),
        (
            dict(images=np.full((12, 32, 32, 3), 300)),
            ValueError,
            r"`images` \(pixels\).*from 300 to 300",
        ),
        (
            dict(images=np.full((12, 32, 32, 3), -1)),
            ValueError,
            r"`images` \(pixels\).*from -1 to -1",
        ),
        (
            dict(images=np.zeros((12, 32, 32), "uint8")),
            ValueError,
            r"`images` must be RGB images of shape \(N, 32, 32, 3\)"
            r".*\(12, 32, 32\)",
        ),
        (
            dict(images=np.zeros((1, 32, 32, 3), "uint8"), labels=[0]),
            ValueError,
            "at least 2 images",
        ),
        (
            dict(labels=np.zeros(11, int)),
            ValueError,
            r"`labels` must hold one label per image: shape \(12,\).*\(11,\)",
        ),
        (
            dict(labels=np.zeros((12, 1), int)),
            ValueError,
            r"`labels`.*\(12, 1\)",
        ),
        (
            dict(labels=np.full(12, 10)),
            ValueError,
            "`labels`.*0..9.*from 10 to 10",
        ),
        (dict(labels=np.full(12, -1)), ValueError, "`labels`.*0..9.*from -1"),
        (dict(labels=np.full(12, 1.0)), TypeError, "`labels`.*0..9.*float64"),
        (
            dict(train_batches=0),
            ValueError,
            "`train_batches` must be at least 1",
        ),
        (
            dict(train_batches=-2),
            ValueError,
            "`train_batches` must be at least 1",
        ),
        (
            dict(train_batches=1.5),
            TypeError,
            "`train_batches` must be an integer",
        ),
        (
            dict(train_batches="5"),
            TypeError,
            "`train_batches` must be an integer",
        ),
    ],
    ids=[
        "float",
        "300",
        "-1",
        "grey",
        "one-image",
        "fewer-labels",
        "2d-labels",
        "label-10",
        "label--1",
        "float-labels",
        "batches-0",
        "batches-neg",
        "batches-float",
        "batches-str",
    ],
)
def test_write_batches_refuses_bad_inputs(
    tmp_path, rgb, change, error, expected
):
    arguments = {"images": rgb[0][:12], "labels": rgb[1][:12], **change}
    target = tmp_path / "cifar"
    with pytest.raises(error, match=expected):
        cifar10.write_batches(str(target), **arguments)
    assert not target.exists()


def test_write_batches_takes_integer_pixels_of_any_dtype(tmp_path, rgb):
    images, labels = rgb
    folder = cifar10.write_batches(
        str(tmp_path),
        images.astype("int64"),
        labels.astype("uint8"),
        train_batches=1,
    )
    assert sorted(os.listdir(folder)) == ["data_batch_1", "test_batch"]
    test_x, test_y = cifar10.load(folder, split="test")
    np.testing.assert_array_equal(test_x, cifar10.to_grey(images[-10:]))
    np.testing.assert_array_equal(test_y, labels[-10:])


def test_write_batches_into_a_file_names_the_folder(tmp_path, rgb):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError, match="CIFAR-10 folder.*afile"):
        cifar10.write_batches(str(tmp_path / "afile" / "sub"), *rgb)


# --- files written whole, readable under the umask ----------------------------


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_written_batches_follow_the_umask(tmp_path, rgb, umask, mode):
    old = os.umask(umask)
    try:
        folder = cifar10.write_batches(str(tmp_path / "cifar"), *rgb)
    finally:
        os.umask(old)
    for name in os.listdir(folder):
        assert stat.S_IMODE(os.stat(os.path.join(folder, name)).st_mode) == mode


def test_a_write_killed_midway_leaves_whole_files(folder, rgb, monkeypatch):
    before = {
        n: open(os.path.join(folder, n), "rb").read()
        for n in os.listdir(folder)
    }
    calls = []
    dump = pickle.dump

    def failing_dump(obj, f):
        calls.append(1)
        if len(calls) == 3:
            f.write(b"\x80\x04half a pickle")
            raise KeyboardInterrupt
        dump(obj, f)

    monkeypatch.setattr(cifar10.pickle, "dump", failing_dump)
    images, labels = rgb
    with pytest.raises(KeyboardInterrupt):
        cifar10.write_batches(folder, 255 - images, labels)
    monkeypatch.undo()
    assert sorted(os.listdir(folder)) == sorted(before)  # no temporary left
    after = {n: open(os.path.join(folder, n), "rb").read() for n in before}
    assert after["data_batch_3"] == before["data_batch_3"]
    assert after["data_batch_1"] != before["data_batch_1"]
    for name in before:  # every file whole: the old one or the new one
        assert len(cifar10._read_pickle(os.path.join(folder, name))[0])


def test_written_twice_the_last_write_is_read(folder, rgb):
    images, labels = rgb
    cifar10.write_batches(folder, 255 - images, 9 - labels)
    test_x, test_y = cifar10.load(folder, split="test")
    np.testing.assert_array_equal(test_x, cifar10.to_grey(255 - images[-10:]))
    np.testing.assert_array_equal(test_y, 9 - labels[-10:])
