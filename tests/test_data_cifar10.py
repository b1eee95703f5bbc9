"""`keras_elm.data.cifar10` on small pickles written in the real format."""

import os
import pickle

import numpy as np
import pytest

from keras_elm.data import cifar10


@pytest.fixture
def rgb():
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, (60, 32, 32, 3), dtype="uint8"),
            rng.integers(0, 10, 60))


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
    assert {r.tobytes() for r in both} == {r.tobytes() for r in grey.reshape(len(grey), -1)}


def test_validation_split_is_seeded(folder):
    a = cifar10.load(folder, split="val", seed=1)[0]
    b = cifar10.load(folder, split="val", seed=1)[0]
    c = cifar10.load(folder, split="val", seed=2)[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_missing_folder_names_both_sources(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_batch_1.*tensorflow-datasets"):
        cifar10.load(str(tmp_path / "nowhere"))


def test_missing_files_are_named(tmp_path):
    os.makedirs(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match=r"\['data_batch_1'.*tensorflow-datasets"):
        cifar10.load(str(tmp_path / "empty"))


def test_corrupt_pickle_names_the_file(folder):
    with open(os.path.join(folder, "data_batch_3"), "wb") as f:
        f.write(b"not a pickle")
    with pytest.raises(ValueError, match="data_batch_3"):
        cifar10.load(folder)


def test_wrong_layout_names_the_file(folder):
    with open(os.path.join(folder, "test_batch"), "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), "uint8"), b"labels": [0, 1]}, f)
    with pytest.raises(ValueError, match="test_batch.*3072"):
        cifar10.load(folder, split="test")


def test_unknown_split(folder):
    with pytest.raises(ValueError, match="split"):
        cifar10.load(folder, split="validation")


def test_loading_does_not_modify_the_files(folder):
    before = {n: open(os.path.join(folder, n), "rb").read()
              for n in os.listdir(folder)}
    cifar10.load(folder, split="train")
    after = {n: open(os.path.join(folder, n), "rb").read()
             for n in os.listdir(folder)}
    assert before == after
