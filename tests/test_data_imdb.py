"""`keras_elm.data.imdb` and its byte tokens on small files in real formats."""

import os
import re
import stat

import numpy as np
import pytest

from keras_elm.data import imdb
from keras_elm.data import text_bytes

NON_ASCII = "Café — superb 👍"  # 2-, 3- and 4-byte UTF-8 characters
TRAIN = {
    "pos": {
        "3_9.txt": "Great film!<br /><br />Loved it.",
        "10_8.txt": NON_ASCII,
        "2_10.txt": "x" * 20,
    },
    "neg": {"0_1.txt": "Awful.", "1_2.txt": "Dull and slow."},
}
TEST = {
    "pos": {"0_7.txt": "Fine."},
    "neg": {"0_3.txt": "Bad.", "5_4.txt": "Meh."},
}
# Interleaved neg, pos, ...; each class by the numeric id of its files.
TRAIN_ORDER = [
    ("neg", "0_1.txt"),
    ("pos", "2_10.txt"),
    ("neg", "1_2.txt"),
    ("pos", "3_9.txt"),
    ("pos", "10_8.txt"),
]
TEST_ORDER = [("neg", "0_3.txt"), ("pos", "0_7.txt"), ("neg", "5_4.txt")]


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(text.encode("utf-8"))


def _tokens(text, max_length):
    row = np.zeros(max_length, np.int32)
    data = list(text.encode("utf-8"))[:max_length]
    row[: len(data)] = np.asarray(data) + 1
    return row


@pytest.fixture
def root(tmp_path):
    """A folder holding aclImdb/, with the real data set's other files."""
    acl = tmp_path / "aclImdb"
    for split, classes in (("train", TRAIN), ("test", TEST)):
        for label, files in classes.items():
            for name, text in files.items():
                _write(str(acl / split / label / name), text)
    _write(str(acl / "train" / "unsup" / "0_0.txt"), "Unlabelled.")
    _write(str(acl / "train" / "urls_pos.txt"), "http://www.imdb.com/title/x/")
    _write(str(acl / "train" / "labeledBow.feat"), "0 0:9")
    _write(str(acl / "train" / "pos" / "notes.md"), "not a review")
    _write(str(acl / "imdb.vocab"), "the\nand\n")
    return str(tmp_path)


def _expected(order, classes, max_length):
    tokens = np.stack(
        [_tokens(classes[label][name], max_length) for label, name in order]
    )
    labels = np.array([imdb.CLASSES.index(label) for label, _ in order])
    return tokens, labels


@pytest.mark.parametrize("inner", [False, True], ids=["parent", "aclImdb"])
def test_reads_the_raw_folder_in_the_documented_order(root, inner):
    data_dir = os.path.join(root, "aclImdb") if inner else root
    tokens, labels = imdb.load(data_dir, split="train", max_length=16)
    assert tokens.dtype == np.int32 and labels.dtype == np.int32
    assert tokens.shape == (5, 16) and labels.shape == (5,)
    expected_tokens, expected_labels = _expected(TRAIN_ORDER, TRAIN, 16)
    np.testing.assert_array_equal(labels, expected_labels)
    np.testing.assert_array_equal(tokens, expected_tokens)


def test_tokens_are_bytes_plus_one_truncated_and_padded(root):
    tokens, _ = imdb.load(root, split="train", max_length=24)
    awful, long_one, non_ascii = tokens[0], tokens[1], tokens[4]
    np.testing.assert_array_equal(awful[:6], [66, 120, 103, 118, 109, 47])
    assert not awful[6:].any()  # "Awful." + 1, then padding
    np.testing.assert_array_equal(long_one, [ord("x") + 1] * 20 + [0] * 4)
    # "é" is 0xC3 0xA9, "—" 0xE2 0x80 0x94, "👍" 0xF0 0x9F 0x91 0x8D.
    np.testing.assert_array_equal(non_ascii[3:5], [0xC4, 0xAA])
    np.testing.assert_array_equal(non_ascii[6:9], [0xE3, 0x81, 0x95])
    np.testing.assert_array_equal(non_ascii[17:21], [0xF1, 0xA0, 0x92, 0x8E])
    assert not non_ascii[21:].any()
    assert text_bytes.decode(tokens[4:])[0].decode("utf-8") == NON_ASCII


def test_truncation_may_cut_a_character(root):
    tokens, _ = imdb.load(root, split="train", max_length=4)
    np.testing.assert_array_equal(
        tokens[4], [ord("C") + 1, ord("a") + 1, ord("f") + 1, 0xC4]
    )


def test_unsup_and_stray_files_are_ignored(root):
    tokens, labels = imdb.load(root, split="train", max_length=8)
    assert len(tokens) == 5
    assert np.bincount(labels).tolist() == [2, 3]


def test_validation_is_the_test_split(root):
    test_x, test_y = imdb.load(root, split="test", max_length=8)
    val_x, val_y = imdb.load(root, split="val", max_length=8)
    expected_tokens, expected_labels = _expected(TEST_ORDER, TEST, 8)
    np.testing.assert_array_equal(test_x, expected_tokens)
    np.testing.assert_array_equal(test_y, expected_labels)
    np.testing.assert_array_equal(val_x, test_x)
    np.testing.assert_array_equal(val_y, test_y)


def test_default_length_is_lra_s(root):
    assert imdb.load(root, split="test")[0].shape == (3, 4096)


@pytest.mark.parametrize("missing", ["nowhere", "empty"])
def test_no_data_names_both_sources_and_where_to_put_files(tmp_path, missing):
    data_dir = tmp_path / missing
    if missing == "empty":
        data_dir.mkdir()
    with pytest.raises(FileNotFoundError) as info:
        imdb.load(str(data_dir))
    message = str(info.value)
    assert (
        os.path.join(str(data_dir), "aclImdb", "train", "pos", "*.txt")
        in message
    )
    assert "aclImdb_v1.tar.gz" in message
    assert "tensorflow-datasets 'imdb_reviews'" in message


def test_missing_class_folder_is_named(root):
    neg = os.path.join(root, "aclImdb", "test", "neg")
    for name in os.listdir(neg):
        os.remove(os.path.join(neg, name))
    os.rmdir(neg)
    with pytest.raises(FileNotFoundError, match=f"{neg} does not exist"):
        imdb.load(root, split="val")
    assert len(imdb.load(root, split="train", max_length=4)[0]) == 5


def test_empty_class_folder_is_named(root):
    pos = os.path.join(root, "aclImdb", "test", "pos")
    os.remove(os.path.join(pos, "0_7.txt"))
    with pytest.raises(FileNotFoundError, match=f"{pos} holds no reviews"):
        imdb.load(root, split="test")


def test_unreadable_review_names_the_file(root):
    os.makedirs(os.path.join(root, "aclImdb", "train", "neg", "7_2.txt"))
    with pytest.raises(ValueError, match=r"neg.7_2\.txt"):
        imdb.load(root, split="train")


def test_unknown_split_lists_the_splits(root):
    with pytest.raises(ValueError, match="'train', 'val', 'test'.*validation"):
        imdb.load(root, split="validation")


@pytest.mark.parametrize(
    "max_length, error",
    [(0, ValueError), (-1, ValueError), (2.5, TypeError), (True, TypeError)],
)
def test_bad_max_length(root, max_length, error):
    with pytest.raises(error, match="max_length"):
        imdb.load(root, max_length=max_length)


def test_loading_does_not_modify_the_files(root):
    def snapshot():
        files = {}
        for folder, _, names in os.walk(root):
            for name in names:
                with open(os.path.join(folder, name), "rb") as f:
                    files[os.path.join(folder, name)] = f.read()
        return files

    before = snapshot()
    imdb.load(root, split="train")
    assert snapshot() == before


def test_encode_takes_str_and_bytes_alike():
    np.testing.assert_array_equal(
        text_bytes.encode(["é", b"\xc3\xa9"], 3),
        [[0xC4, 0xAA, 0], [0xC4, 0xAA, 0]],
    )
    np.testing.assert_array_equal(
        text_bytes.encode([b"\x00\xff"], 2), [[1, 256]]
    )
    assert text_bytes.encode([], 5).shape == (0, 5)
    with pytest.raises(TypeError, match="sequence of texts"):
        text_bytes.encode("one text", 4)
    with pytest.raises(TypeError, match="str.*bytes"):
        text_bytes.encode([3], 4)


def test_write_fixture_round_trip(tmp_path):
    acl = imdb.write_fixture(str(tmp_path), 3, seed=1, max_length=48)
    assert acl == os.path.join(str(tmp_path), "aclImdb")
    for data_dir in (str(tmp_path), acl):
        tokens, labels = imdb.load(data_dir, split="train", max_length=48)
        assert tokens.shape == (6, 48)
        np.testing.assert_array_equal(labels, [0, 1, 0, 1, 0, 1])
    neg = sorted(
        os.listdir(os.path.join(acl, "train", "neg")), key=imdb._review_order
    )
    with open(os.path.join(acl, "train", "neg", neg[0]), "rb") as f:
        first = f.read()
    # max_length=48 keeps whole reviews, so the tokens are the whole file.
    assert text_bytes.decode(tokens[:1]) == [first]
    for split in ("train", "test"):
        for label, ratings in (("neg", range(1, 5)), ("pos", range(7, 11))):
            names = os.listdir(os.path.join(acl, split, label))
            assert len(names) == 3
            assert all(int(n[:-4].split("_")[1]) in ratings for n in names)


def test_write_fixture_classes_use_their_own_words(tmp_path):
    acl = imdb.write_fixture(str(tmp_path), 4)
    for label, words in zip(imdb.CLASSES, imdb._SENTIMENT_WORDS):
        others = imdb._SENTIMENT_WORDS[1 - imdb.CLASSES.index(label)]
        folder = os.path.join(acl, "test", label)
        for name in os.listdir(folder):
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                review = set(re.findall(r"[a-zé]+", f.read().lower()))
            assert review & set(words) and not review & set(others)


def _files(folder):
    """{relative path: bytes} of every file under `folder`."""
    files = {}
    for where, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(where, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, folder)] = f.read()
    return files


def test_write_fixture_is_deterministic(tmp_path):
    first = imdb.load(imdb.write_fixture(str(tmp_path / "a"), 2), split="test")[
        0
    ]
    again = imdb.load(imdb.write_fixture(str(tmp_path / "a"), 2), split="test")[
        0
    ]
    np.testing.assert_array_equal(first, again)


@pytest.mark.parametrize(
    "seed, size",
    [(1, 2), (0, 3), (5, 1)],
    ids=["other-seed", "larger", "smaller"],
)
def test_write_fixture_replaces_a_fixture_of_other_settings(
    tmp_path, seed, size
):
    # `text.py --smoke --seed 1` after a seed-0 run writes into the same folder.
    imdb.write_fixture(str(tmp_path / "a"), 2, seed=0)
    imdb.write_fixture(str(tmp_path / "a"), size, seed=seed)
    imdb.write_fixture(str(tmp_path / "fresh"), size, seed=seed)
    assert _files(tmp_path / "a") == _files(tmp_path / "fresh")
    tokens, labels = imdb.load(str(tmp_path / "a"), split="train")
    assert len(tokens) == 2 * size


def test_write_fixture_never_touches_another_data_set(root):
    before = _files(root)
    with pytest.raises(
        ValueError,
        match=r"aclImdb.*did not write.*\.txt.*"
        r"keras_elm_fixture\.json.*empty or new",
    ):
        imdb.write_fixture(root, 2)
    assert _files(root) == before


def test_write_fixture_into_a_file_names_the_folder(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError, match="afile.*cannot be written"):
        imdb.write_fixture(str(tmp_path / "afile" / "sub"), 2)


def test_write_fixture_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        acl = imdb.write_fixture(str(tmp_path), 2)
    finally:
        os.umask(old)
    files = _files(acl)
    assert "keras_elm_fixture.json" in files and len(files) == 9
    for name in files:
        assert stat.S_IMODE(os.stat(os.path.join(acl, name)).st_mode) == 0o644


def test_an_interrupted_fixture_leaves_no_temporary_and_is_rewritten(
    tmp_path, monkeypatch
):
    calls = []
    write = text_bytes.write_atomically

    def failing(path, data):
        calls.append(path)
        if len(calls) == 5:
            data = None  # fails inside the write, after the file is opened
        return write(path, data)

    monkeypatch.setattr(imdb, "write_atomically", failing)
    with pytest.raises(TypeError):
        imdb.write_fixture(str(tmp_path / "a"), 2, seed=1)
    monkeypatch.undo()
    written = _files(tmp_path / "a")
    assert not [name for name in written if name.endswith(".tmp")]
    assert len(written) == 1 + 4  # the marker and four whole reviews
    imdb.write_fixture(str(tmp_path / "a"), 2, seed=2)
    imdb.write_fixture(str(tmp_path / "fresh"), 2, seed=2)
    assert _files(tmp_path / "a") == _files(tmp_path / "fresh")


def test_an_empty_review_names_the_file(root):
    path = os.path.join(root, "aclImdb", "test", "pos", "0_7.txt")
    open(path, "wb").close()
    with pytest.raises(ValueError, match=rf"{re.escape(path)} is empty"):
        imdb.load(root, split="test")


def test_non_utf8_bytes_are_tokens(root):
    path = os.path.join(root, "aclImdb", "test", "pos", "0_7.txt")
    with open(path, "wb") as f:
        f.write(b"ok \xff\xc3")
    tokens, _ = imdb.load(root, split="test", max_length=6)
    np.testing.assert_array_equal(tokens[1], [112, 108, 33, 256, 196, 0])


@pytest.mark.parametrize(
    "tokens, error, expected",
    [
        ([[300, 1]], ValueError, "tokens 0..256.*from 1 to 300"),
        ([[-1, 1]], ValueError, "tokens 0..256.*from -1 to 1"),
        ([[1.5, 2.0]], TypeError, "integers 0..256.*float64"),
        ([1, 2], ValueError, r"shape \(N, L\)"),
    ],
    ids=["300", "-1", "float", "1d"],
)
def test_decode_refuses_tokens_that_are_no_bytes(tokens, error, expected):
    with pytest.raises(error, match=expected):
        text_bytes.decode(np.asarray(tokens))


def test_encode_names_a_text_that_is_not_utf8():
    with pytest.raises(ValueError, match="Text 1 of `texts` cannot be encoded"):
        text_bytes.encode(["fine", "bad \ud800"], 8)


def test_write_atomically_follows_the_umask_and_leaves_nothing_on_error(
    tmp_path,
):
    path = str(tmp_path / "a.bin")
    old = os.umask(0o022)
    try:
        text_bytes.write_atomically(path, b"old")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    with pytest.raises(TypeError):
        text_bytes.write_atomically(path, "not bytes")
    assert os.listdir(tmp_path) == ["a.bin"]
    with open(path, "rb") as f:
        assert f.read() == b"old"


def test_the_raw_folder_wins_over_tfds(root):
    os.makedirs(os.path.join(root, "imdb_reviews"))
    assert len(imdb.load(root, split="train", max_length=4)[0]) == 5


def _prepared_tfds(data_dir, name, splits):
    """A mocked prepared tfds data set: real metadata, `splits`' examples."""
    tfds = pytest.importorskip("tensorflow_datasets")
    import tensorflow as tf

    builder = tfds.builder(name, data_dir=data_dir)
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

    return tfds.testing.mock_data(
        data_dir=data_dir,
        policy=tfds.testing.MockPolicy.USE_FILES,
        as_dataset_fn=as_dataset,
    )


def test_reads_a_prepared_tfds_imdb_reviews(tmp_path):
    splits = {
        "train": {
            "text": [b"train one", "tr\u00e9s".encode(), b"x" * 40],
            "label": np.array([1, 0, 1]),
        },
        "test": {"text": [b"test one", b"test two"], "label": np.array([0, 1])},
    }
    with _prepared_tfds(str(tmp_path), "imdb_reviews", splits):
        train_x, train_y = imdb.load(
            str(tmp_path), split="train", max_length=12
        )
        val_x, val_y = imdb.load(str(tmp_path), split="val", max_length=12)
        test_x, test_y = imdb.load(str(tmp_path), split="test", max_length=12)
    assert train_x.dtype == np.int32 and train_y.dtype == np.int32
    np.testing.assert_array_equal(
        train_x,
        np.stack([_tokens(t.decode(), 12) for t in splits["train"]["text"]]),
    )
    np.testing.assert_array_equal(train_y, [1, 0, 1])
    np.testing.assert_array_equal(
        test_x,
        np.stack([_tokens(t.decode(), 12) for t in splits["test"]["text"]]),
    )
    np.testing.assert_array_equal(test_y, [0, 1])
    np.testing.assert_array_equal(val_x, test_x)
    np.testing.assert_array_equal(val_y, test_y)


@pytest.mark.parametrize(
    "folder",
    ["imdb_reviews", os.path.join("imdb_reviews", "1.0.0")],
    ids=["empty", "empty-version"],
)
def test_an_unprepared_tfds_folder_names_both_sources(tmp_path, folder):
    pytest.importorskip("tensorflow_datasets")
    os.makedirs(tmp_path / folder)
    with pytest.raises(FileNotFoundError, match="imdb_reviews.*aclImdb_v1"):
        imdb.load(str(tmp_path))


def test_tfds_labels_other_than_0_and_1_are_refused(tmp_path):
    splits = {
        "train": {"text": [b"a", b"b"], "label": np.array([1, 2])},
        "test": {"text": [b"c"], "label": np.array([0])},
    }
    with (
        _prepared_tfds(str(tmp_path), "imdb_reviews", splits),
        pytest.raises(ValueError, match=r"'imdb_reviews'.*'train'.*0 and 1"),
    ):
        imdb.load(str(tmp_path), split="train", max_length=4)
