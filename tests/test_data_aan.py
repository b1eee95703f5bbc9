"""`keras_elm.data.aan` on small TSV files in the release's format."""

import os
import stat

import numpy as np
import pytest

from keras_elm.data import aan

# (label as written, id1, id2, text1, text2, line end)
ROWS = [
    ("1.0", "P00-1001", "P00-1002", 'parsing "trees" well', "grammar", "\n"),
    ("0", "P00-1003", "J01-2001", "speech", "phrase naïve", "\r\n"),
    ("1", "W05-0001", "W05-0002", '"unbalanced quote', "ok", "\n"),
    ("0.0", "N09-0001", "N09-0002", "", "a much longer second text", "\n"),
]
LABELS = [1, 0, 1, 0]


def _line(row):
    return "\t".join(row[:5]) + row[5]


def _write(path, text):
    with open(path, "wb") as f:
        f.write(text.encode("utf-8"))


def _tokens(text, max_length):
    row = np.zeros(max_length, np.int32)
    data = list(text.encode("utf-8"))[:max_length]
    row[: len(data)] = np.asarray(data, np.int32) + 1
    return row


@pytest.fixture
def folder(tmp_path):
    """The three files; train ends with an empty line, as files often do."""
    _write(str(tmp_path / aan.FILES["train"]), "".join(map(_line, ROWS)) + "\n")
    _write(str(tmp_path / aan.FILES["val"]), _line(ROWS[1]))
    _write(str(tmp_path / aan.FILES["test"]), _line(ROWS[0]) + _line(ROWS[3]))
    return str(tmp_path)


def test_reads_pairs_exactly(folder):
    (a, b), labels = aan.load(folder, split="train", max_length=12)
    assert a.dtype == b.dtype == labels.dtype == np.int32
    assert a.shape == b.shape == (4, 12) and labels.shape == (4,)
    np.testing.assert_array_equal(labels, LABELS)
    np.testing.assert_array_equal(
        a, np.stack([_tokens(r[3], 12) for r in ROWS])
    )
    np.testing.assert_array_equal(
        b, np.stack([_tokens(r[4], 12) for r in ROWS])
    )


def test_quotes_are_kept_and_crlf_dropped(folder):
    (a, b), _ = aan.load(folder, split="train", max_length=32)
    assert a[0, 8] == ord('"') + 1 and a[2, 0] == ord('"') + 1
    # "phrase naïve" ends with "e" + 1, then padding: no "\r" token.
    assert b[1, 12] == ord("e") + 1 and not b[1, 13:].any()
    np.testing.assert_array_equal(b[1, 9:11], [0xC4, 0xB0])  # "ï" = C3 AF
    assert not a[3].any()  # an empty text is all padding


def test_each_split_reads_its_file(folder):
    (val_a, _), val_y = aan.load(folder, split="val", max_length=8)
    np.testing.assert_array_equal(val_a, [_tokens(ROWS[1][3], 8)])
    np.testing.assert_array_equal(val_y, [0])
    (test_a, _), test_y = aan.load(folder, split="test", max_length=8)
    np.testing.assert_array_equal(
        test_a, [_tokens(ROWS[0][3], 8), _tokens(ROWS[3][3], 8)]
    )
    np.testing.assert_array_equal(test_y, [1, 0])


def test_default_length_is_lra_s(folder):
    (a, b), _ = aan.load(folder, split="val")
    assert a.shape == b.shape == (1, 4000)


def test_the_folder_holding_tsv_data_works_too(folder, tmp_path):
    release = tmp_path / "lra_release"
    release.mkdir()
    tsv = release / "tsv_data"
    tsv.mkdir()
    for name in aan.FILES.values():
        os.replace(os.path.join(folder, name), tsv / name)
    (a, _), labels = aan.load(str(release), split="train", max_length=4)
    assert a.shape == (4, 4)
    np.testing.assert_array_equal(labels, LABELS)


@pytest.mark.parametrize(
    "line, expected",
    [
        (
            "1\tP1\tP2\tonly four fields\n",
            r"5 tab-separated fields.*Found: 4 fields",
        ),
        ("2\tP1\tP2\ta\tb\n", r"label 0 or 1.*Found: '2'"),
        ("yes\tP1\tP2\ta\tb\n", r"label 0 or 1.*Found: 'yes'"),
        ("0.5\tP1\tP2\ta\tb\n", r"label 0 or 1.*Found: '0.5'"),
        ("1\tP1\tP2\ta\tb\tc\n", r"5 tab-separated fields.*Found: 6 fields"),
    ],
)
def test_malformed_line_names_the_file_and_line(folder, line, expected):
    path = os.path.join(folder, aan.FILES["train"])
    _write(path, _line(ROWS[0]) + line + _line(ROWS[1]))
    with pytest.raises(
        ValueError,
        match=rf"new_aan_pairs\.train\.tsv, line 2: "
        rf"expected .*{expected}",
    ):
        aan.load(folder)


def test_an_empty_line_before_more_pairs_is_malformed(folder):
    path = os.path.join(folder, aan.FILES["test"])
    _write(path, _line(ROWS[0]) + "\n\r\n" + _line(ROWS[1]) + "\n\n")
    with pytest.raises(
        ValueError, match=r"test\.tsv, line 2: .*only at the end"
    ):
        aan.load(folder, split="test")


def test_a_file_without_pairs_is_an_error(folder):
    _write(os.path.join(folder, aan.FILES["val"]), "\n\n")
    with pytest.raises(ValueError, match=r"eval\.tsv holds no pairs"):
        aan.load(folder, split="val")


def test_missing_file_says_where_to_get_it(tmp_path):
    expected = os.path.join(str(tmp_path), aan.FILES["val"])
    with pytest.raises(FileNotFoundError) as info:
        aan.load(str(tmp_path), split="val")
    message = str(info.value)
    assert f"AAN file {expected} does not exist" in message
    assert "tsv_data/" in message and "lra_release.gz" in message
    assert "write_fixture" in message


def test_unknown_split_lists_the_splits(folder):
    with pytest.raises(ValueError, match="'train', 'val', 'test'.*eval"):
        aan.load(folder, split="eval")


@pytest.mark.parametrize(
    "max_length, error", [(0, ValueError), (1.0, TypeError), (None, TypeError)]
)
def test_bad_max_length(folder, max_length, error):
    with pytest.raises(error, match="max_length"):
        aan.load(folder, max_length=max_length)


def test_loading_does_not_modify_the_files(folder):
    def snapshot():
        return {
            name: open(os.path.join(folder, name), "rb").read()
            for name in os.listdir(folder)
        }

    before = snapshot()
    aan.load(folder, split="train")
    assert snapshot() == before


def test_write_fixture_round_trip(tmp_path):
    directory = aan.write_fixture(str(tmp_path / "aan"), 6, seed=3)
    assert sorted(os.listdir(directory)) == sorted(
        [*aan.FILES.values(), "keras_elm_fixture.json"]
    )
    for split, name in aan.FILES.items():
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            lines = f.read().split("\n")
        assert lines[-1] == "" and len(lines) == 7
        fields = [line.split("\t") for line in lines[:-1]]
        assert all(len(f) == 5 for f in fields)
        written = [f[0] for f in fields]
        assert {"0.0", "1.0"} & set(written) and {"0", "1"} & set(written)
        assert any('"' in f[3] + f[4] for f in fields)
        (a, b), labels = aan.load(directory, split=split, max_length=64)
        assert a.shape == b.shape == (6, 64)
        np.testing.assert_array_equal(labels, [int(float(w)) for w in written])
        assert labels.sum() == 3
        np.testing.assert_array_equal(a[0], _tokens(fields[0][3], 64))
    again = aan.write_fixture(str(tmp_path / "again"), 6, seed=3)
    for name in aan.FILES.values():
        with (
            open(os.path.join(directory, name), "rb") as f,
            open(os.path.join(again, name), "rb") as g,
        ):
            assert f.read() == g.read()


def test_write_fixture_links_papers_of_one_topic(tmp_path):
    directory = aan.write_fixture(str(tmp_path), 8)
    with open(
        os.path.join(directory, aan.FILES["train"]), encoding="utf-8"
    ) as f:
        for line in f:
            label, _, _, text1, text2 = line.rstrip("\n").split("\t")

            def topics(text):
                words = set(text.rstrip(".").split())
                return {
                    i
                    for i, topic in enumerate(aan._TOPICS)
                    if words & set(topic)
                }

            assert (topics(text1) == topics(text2)) == (float(label) == 1)


def _files(folder):
    return {
        name: open(os.path.join(folder, name), "rb").read()
        for name in os.listdir(folder)
    }


@pytest.mark.parametrize(
    "seed, size",
    [(1, 4), (0, 6), (2, 2)],
    ids=["other-seed", "larger", "smaller"],
)
def test_write_fixture_replaces_a_fixture_of_other_settings(
    tmp_path, seed, size
):
    # `retrieval.py --smoke --seed 1` after a seed-0 run: the same folder.
    aan.write_fixture(str(tmp_path / "a"), 4, seed=0)
    aan.write_fixture(str(tmp_path / "a"), size, seed=seed)
    aan.write_fixture(str(tmp_path / "fresh"), size, seed=seed)
    assert _files(tmp_path / "a") == _files(tmp_path / "fresh")
    assert len(aan.load(str(tmp_path / "a"), split="val")[1]) == size


@pytest.mark.parametrize("present", ["train", "test"])
def test_write_fixture_never_overwrites_other_aan_files(folder, present):
    for split in aan.SPLITS:
        if split != present:
            os.remove(os.path.join(folder, aan.FILES[split]))
    before = _files(folder)
    with pytest.raises(
        ValueError,
        match=rf"did not write .*"
        rf"{aan.FILES[present]}.*"
        rf"keras_elm_fixture\.json",
    ):
        aan.write_fixture(folder, 4)
    assert _files(folder) == before


def test_write_fixture_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        directory = aan.write_fixture(str(tmp_path / "aan"), 4)
    finally:
        os.umask(old)
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_an_interrupted_fixture_leaves_no_temporary_and_is_rewritten(
    tmp_path, monkeypatch
):
    from keras_elm.data import text_bytes

    aan.write_fixture(str(tmp_path / "a"), 4, seed=0)
    before = _files(tmp_path / "a")
    calls = []

    def failing(path, data):
        calls.append(path)
        # Fails inside the write of the second file, after it is opened.
        return text_bytes.write_atomically(
            path, None if len(calls) == 2 else data
        )

    monkeypatch.setattr(aan, "write_atomically", failing)
    with pytest.raises(TypeError):
        aan.write_fixture(str(tmp_path / "a"), 4, seed=1)
    monkeypatch.undo()
    after = _files(tmp_path / "a")
    assert sorted(after) == sorted(before)  # no temporary left
    assert after[aan.FILES["val"]] == before[aan.FILES["val"]]  # the old file
    assert after[aan.FILES["train"]] != before[aan.FILES["train"]]
    aan.write_fixture(str(tmp_path / "a"), 4, seed=1)
    aan.write_fixture(str(tmp_path / "fresh"), 4, seed=1)
    assert _files(tmp_path / "a") == _files(tmp_path / "fresh")


def test_non_utf8_bytes_are_tokens_and_a_non_utf8_label_is_named(folder):
    path = os.path.join(folder, aan.FILES["val"])
    with open(path, "wb") as f:
        f.write(b"1\tP1\tP2\t\xff\xc3\tok\n")
    (a, _), labels = aan.load(folder, split="val", max_length=3)
    np.testing.assert_array_equal(a, [[256, 196, 0]])
    assert labels.tolist() == [1]
    with open(path, "wb") as f:
        f.write(b"1\tP1\tP2\ta\tb\n\xff\tP1\tP2\ta\tb\n")
    with pytest.raises(ValueError, match=r"eval\.tsv, line 2: .*label 0 or 1"):
        aan.load(folder, split="val")
