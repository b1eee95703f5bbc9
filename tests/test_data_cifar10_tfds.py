"""`keras_elm.data.cifar10` from a mocked tensorflow-datasets `cifar10`.

The data_dir holds real tfds metadata (`cifar10/<version>/dataset_info.json`,
as `download_and_prepare` writes it); `tfds.testing.mock_data` stands in for
the record files, serving fixed images per split.
"""

import os

import numpy as np
import pytest

from keras_elm.data import cifar10

NUM_TRAIN, NUM_TEST = 30, 6


@pytest.fixture
def splits():
    rng = np.random.default_rng(0)
    return {
        split: {
            "id": np.array([f"{split}_{i}".encode() for i in range(n)]),
            "image": rng.integers(0, 256, (n, 32, 32, 3), dtype="uint8"),
            "label": rng.integers(0, 10, n),
        }
        for split, n in (("train", NUM_TRAIN), ("test", NUM_TEST))
    }


@pytest.fixture
def prepared(tmp_path, splits):
    """`(data_dir, mock)`: enter `mock` to read data_dir through tfds."""
    tfds = pytest.importorskip("tensorflow_datasets")
    import tensorflow as tf

    data_dir = str(tmp_path)
    builder = tfds.builder("cifar10", data_dir=data_dir)
    builder.info.set_splits(
        tfds.core.SplitDict(
            [
                tfds.core.SplitInfo(
                    name=split,
                    shard_lengths=[len(examples["label"])],
                    num_bytes=0,
                )
                for split, examples in splits.items()
            ]
        )
    )
    os.makedirs(builder.data_dir)
    builder.info.write_to_directory(builder.data_dir)

    def as_dataset(self, split, **kwargs):
        return tf.data.Dataset.from_tensor_slices(splits[str(split)])

    return data_dir, tfds.testing.mock_data(
        data_dir=data_dir,
        policy=tfds.testing.MockPolicy.USE_FILES,
        as_dataset_fn=as_dataset,
    )


def _rows(images):
    return sorted(image.tobytes() for image in images)


def test_tfds_test_split_is_grey_uint8(prepared, splits):
    data_dir, mock = prepared
    with mock:
        images, labels = cifar10.load(data_dir, split="test")
    assert images.dtype == np.uint8 and images.shape == (NUM_TEST, 32, 32)
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(
        images, cifar10.to_grey(splits["test"]["image"])
    )
    np.testing.assert_array_equal(labels, splits["test"]["label"])
    r, g, b = splits["test"]["image"][2, 5, 7].astype(float)
    assert images[2, 5, 7] == round(0.2989 * r + 0.587 * g + 0.114 * b)


def test_tfds_train_is_split_90_10(prepared, splits):
    data_dir, mock = prepared
    with mock:
        train_x, train_y = cifar10.load(data_dir, split="train", seed=4)
        val_x, val_y = cifar10.load(data_dir, split="val", seed=4)
    num_val = round(0.1 * NUM_TRAIN)
    assert train_x.shape == (NUM_TRAIN - num_val, 32, 32)
    assert val_x.shape == (num_val, 32, 32)
    assert train_x.dtype == val_x.dtype == np.uint8
    # Disjoint, together the tfds train split, each image with its label.
    grey = cifar10.to_grey(splits["train"]["image"])
    assert _rows(np.concatenate([train_x, val_x])) == _rows(grey)
    label_of = {
        image.tobytes(): label
        for image, label in zip(grey, splits["train"]["label"])
    }
    for images, labels in ((train_x, train_y), (val_x, val_y)):
        assert [
            label_of[image.tobytes()] for image in images
        ] == labels.tolist()
    # The same rows as the pickles' split with the same seed would take.
    train_rows, val_rows = cifar10._validation_split(NUM_TRAIN, 4)
    np.testing.assert_array_equal(val_x, grey[val_rows])
    np.testing.assert_array_equal(train_x, grey[train_rows])


@pytest.mark.parametrize(
    "folder",
    ["cifar10", os.path.join("cifar10", "3.0.2")],
    ids=["empty", "empty-version"],
)
def test_an_unprepared_tfds_folder_says_what_to_do(tmp_path, folder):
    pytest.importorskip("tensorflow_datasets")
    os.makedirs(tmp_path / folder)
    with pytest.raises(FileNotFoundError) as info:
        cifar10.load(str(tmp_path), split="test")
    message = str(info.value)
    assert f"'cifar10' in {str(tmp_path)!r}" in message
    assert "is not prepared" in message
    assert "download_and_prepare()" in message and "data_batch_1" in message


@pytest.mark.parametrize("label", [10, -1])
def test_tfds_labels_out_of_range_are_refused(
    tmp_path, splits, prepared, label
):
    data_dir, mock = prepared
    splits["test"]["label"][1] = label
    with (
        mock,
        pytest.raises(
            ValueError,
            match=r"tensorflow-datasets 'cifar10'"
            r".*labels must hold integers 0..9",
        ),
    ):
        cifar10.load(data_dir, split="test")
