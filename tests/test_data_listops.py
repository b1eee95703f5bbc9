"""ListOps: the generator, the release writer and the loader."""

import io
import math
import os
import random
import signal
import stat
import statistics
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_elm.data import listops

SHORT = {"min_length": 50, "max_length": 200}
BACKEND = keras.backend.backend()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _parse(tokens, start=0, depth=1):
    """Reads one expression from `tokens[start:]`, recursively.

    Returns:
        `(value, end, deepest, arities)`: the index after the expression,
        the depth of its deepest node (itself at `depth`) and the operand
        counts of its operators.
    """
    token = tokens[start]
    if token.isdigit():
        return int(token), start + 1, depth, []
    assert token.startswith("["), token
    operands, arities, deepest = [], [], depth
    position = start + 1
    while tokens[position] != "]":
        value, position, below, inner = _parse(tokens, position, depth + 1)
        operands.append(value)
        arities.extend(inner)
        deepest = max(deepest, below)
    arities.append(len(operands))
    name = token[1:]
    if name == "MIN":
        value = min(operands)
    elif name == "MAX":
        value = max(operands)
    elif name == "MED":
        value = math.floor(statistics.median(operands))
    elif name == "SM":
        value = sum(operands) % 10
    else:
        raise AssertionError(f"unknown operator {token}")
    return value, position + 1, deepest, arities


def _read(source):
    """Value, depth and operand counts of a whole plain source."""
    tokens = source.split()
    value, end, deepest, arities = _parse(tokens)
    assert end == len(tokens), "tokens after the expression"
    return value, deepest, arities


def _naive_tree(rng, depth, max_depth, max_args, budget):
    """LRA's recipe drawn node by node, depth first; None when too long."""
    if depth > 1 and (
        depth == max_depth or rng.random() >= listops.OPERATOR_PROBABILITY
    ):
        return 1
    length = 2
    for _ in range(rng.randint(2, max_args)):
        below = _naive_tree(
            rng, depth + 1, max_depth, max_args, budget - length
        )
        if below is None:
            return None
        length += below
        if length >= budget:
            return None
    return length


@pytest.mark.parametrize(
    "source,value",
    [
        ("[MAX 2 9 [MIN 4 7 ] 0 ]", 9),
        ("[MED 1 2 3 4 ]", 2),
        ("[MED 1 2 4 4 ]", 3),
        ("[SM 5 7 ]", 2),
        ("[MIN [MED 9 [MED 3 8 ] 6 1 ] 7 ]", 5),
        ("[SM [MAX 0 0 ] [MED 7 7 8 8 ] 9 ]", 6),
    ],
)
def test_reference_evaluator_on_hand_written_cases(source, value):
    assert _read(source)[0] == value


def test_vocabulary():
    assert listops.VOCABULARY_SIZE == 16 == len(set(listops.VOCABULARY))
    assert listops.VOCABULARY[0] == "<pad>"
    assert listops.VOCABULARY[1:11] == tuple("0123456789")
    assert listops.VOCABULARY[11:15] == ("[MIN", "[MAX", "[MED", "[SM")
    assert listops.VOCABULARY[15] == "]"
    assert listops.NUM_CLASSES == 10


# --- generate ----------------------------------------------------------------


@pytest.fixture(scope="module")
def short_trees():
    return listops.generate(2000, seed=0, workers=1, progress=False, **SHORT)


def test_targets_are_the_values_of_short_trees(short_trees):
    sources, targets = short_trees
    assert isinstance(sources, list) and len(sources) == 2000
    assert targets.dtype == np.int32 and targets.shape == (2000,)
    assert [_read(source)[0] for source in sources] == targets.tolist()


def test_short_trees_fit_the_recipe(short_trees):
    sources, _ = short_trees
    for source in sources:
        tokens = source.split()
        assert 50 < len(tokens) < 200
        assert tokens[0] in ("[MIN", "[MAX", "[MED", "[SM")
        _, deepest, arities = _read(source)
        assert deepest <= 10
        assert 2 <= min(arities) and max(arities) <= 10
        assert " ".join(tokens) == source


def test_every_label_appears(short_trees):
    _, targets = short_trees
    assert set(np.unique(targets).tolist()) == set(range(10))


def test_root_operator_is_uniform(short_trees):
    sources, _ = short_trees
    roots = [source.split()[0] for source in sources]
    for operator in ("[MIN", "[MAX", "[MED", "[SM"):
        assert 400 < roots.count(operator) < 600


def test_lra_bounds():
    sources, targets = listops.generate(6, seed=3, workers=1, progress=False)
    for source, target in zip(sources, targets):
        assert 500 < len(source.split()) < 2000
        value, deepest, arities = _read(source)
        assert value == target
        assert deepest <= 10 and 2 <= min(arities) and max(arities) <= 10


def test_depth_and_operands_bind_on_small_trees():
    sources, targets = listops.generate(
        300,
        seed=1,
        min_length=5,
        max_length=30,
        max_depth=3,
        max_args=4,
        workers=1,
        progress=False,
    )
    depths, arities = set(), set()
    for source, target in zip(sources, targets):
        assert 5 < len(source.split()) < 30
        value, deepest, counts = _read(source)
        assert value == target
        depths.add(deepest)
        arities.update(counts)
    assert depths == {2, 3}
    assert arities == {2, 3, 4}


def test_lengths_are_distributed_as_by_the_naive_recipe():
    # The vectorised generator with early rejection against LRA's recipe
    # drawn one node at a time with plain rejection.
    settings = {
        "min_length": 8,
        "max_length": 60,
        "max_depth": 5,
        "max_args": 6,
    }
    sources, _ = listops.generate(
        3000, seed=2, workers=1, progress=False, **settings
    )
    ours = np.array([len(source.split()) for source in sources])
    rng = random.Random(0)
    naive = []
    while len(naive) < 3000:
        length = _naive_tree(rng, 1, 5, 6, settings["max_length"])
        if length is not None and length > settings["min_length"]:
            naive.append(length)
    naive = np.array(naive)
    error = math.hypot(
        ours.std() / math.sqrt(len(ours)), naive.std() / math.sqrt(len(naive))
    )
    assert abs(ours.mean() - naive.mean()) < 4 * error
    for cut in (15, 25, 40):
        assert abs((ours < cut).mean() - (naive < cut).mean()) < 0.04


def test_generate_is_deterministic_and_independent_of_workers():
    # More trees than one chunk, so that two workers share the work.
    count = listops._CHUNK + 300
    sources_1, targets_1 = listops.generate(
        count, seed=7, workers=1, progress=False, **SHORT
    )
    sources_2, targets_2 = listops.generate(
        count, seed=7, workers=2, progress=False, **SHORT
    )
    assert sources_1 == sources_2
    np.testing.assert_array_equal(targets_1, targets_2)
    # A prefix of a larger set is the smaller set.
    sources_3, targets_3 = listops.generate(
        10, seed=7, workers=1, progress=False, **SHORT
    )
    assert sources_3 == sources_1[:10]
    np.testing.assert_array_equal(targets_3, targets_1[:10])
    other, _ = listops.generate(10, seed=8, workers=1, progress=False, **SHORT)
    assert other != sources_3


def test_seed_none_draws_fresh_trees():
    first, _ = listops.generate(3, workers=1, progress=False, **SHORT)
    second, _ = listops.generate(3, workers=1, progress=False, **SHORT)
    assert first != second


def test_progress_bar(capsys):
    listops.generate(5, seed=0, workers=1, progress=True, **SHORT)
    assert "5/5" in capsys.readouterr().out


def test_cache_is_reused_and_written_atomically(tmp_path, monkeypatch):
    kwargs = dict(
        seed=4, workers=1, progress=False, cache_dir=tmp_path, **SHORT
    )
    sources, targets = listops.generate(20, **kwargs)
    names = os.listdir(tmp_path)
    assert len(names) == 1 and names[0].endswith(".npz")
    assert "seed4" in names[0] and "length50-200" in names[0]

    def fail(*args, **kwargs):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(listops.trees, "_generate", fail)
    cached_sources, cached_targets = listops.generate(20, **kwargs)
    assert cached_sources == sources
    assert cached_targets.dtype == np.int32
    np.testing.assert_array_equal(cached_targets, targets)
    # Another setting is another file.
    with pytest.raises(AssertionError, match="cache was not used"):
        listops.generate(20, **{**kwargs, "max_depth": 9})
    assert os.listdir(tmp_path) == names


def test_failed_cache_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    def broken(f, **arrays):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        listops.generate(
            5, seed=0, workers=1, progress=False, cache_dir=tmp_path, **SHORT
        )
    # The finished chunks stay for a rerun, in the hidden parts folder;
    # no temporary file is left.
    (parts,) = os.listdir(tmp_path)
    assert parts.endswith(".parts")
    assert all(n.endswith(".npz") for n in os.listdir(tmp_path / parts))


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"num_samples": 0}, ValueError, "num_samples"),
        ({"num_samples": 2.0}, TypeError, "num_samples"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": "1"}, TypeError, "seed"),
        ({"min_length": 0}, ValueError, "min_length"),
        ({"min_length": 50.5}, TypeError, "min_length"),
        ({"min_length": 100, "max_length": 101}, ValueError, "max_length"),
        ({"max_length": True}, TypeError, "max_length"),
        ({"max_depth": 1}, ValueError, "max_depth"),
        ({"max_args": 1}, ValueError, "max_args"),
        ({"workers": 0}, ValueError, "workers"),
        ({"progress": 1}, TypeError, "progress"),
        ({"min_length": 1, "max_length": 4}, ValueError, "max_length"),
        # No tree of depth 3 and 3 operands has more than 2 * 4 + 9 tokens.
        (
            {"min_length": 17, "max_length": 40, "max_depth": 3, "max_args": 3},
            ValueError,
            "lower `min_length` or raise `max_depth` or `max_args`",
        ),
    ],
)
def test_bad_arguments(kwargs, error, match):
    kwargs = {
        "num_samples": 2,
        "workers": 1,
        "progress": False,
        **SHORT,
        **kwargs,
    }
    with pytest.raises(error, match=match):
        listops.generate(**kwargs)


def test_rare_bounds_raise_instead_of_looping():
    # Possible (at most 122 tokens) but only for trees almost full.
    with pytest.raises(ValueError, match="widen the bounds"):
        listops.generate(
            2,
            seed=0,
            min_length=115,
            max_length=200,
            max_depth=3,
            workers=1,
            progress=False,
        )


# --- write_tsv, tokenize, load -----------------------------------------------


def _strip(text):
    return " ".join(t for t in text.split() if t not in ("(", ")"))


def test_write_tsv_writes_the_release_form(tmp_path):
    path = tmp_path / "basic_test.tsv"
    listops.write_tsv(path, ["[MAX 2 9 [MIN 4 7 ] 0 ]", "[SM 5 7 ]"], [9, 2])
    assert path.read_text() == (
        "Source\tTarget\n"
        "( ( ( ( ( [MAX 2 ) 9 ) ( ( ( [MIN 4 ) 7 ) ] ) ) 0 ) ] )\t9\n"
        "( ( ( [SM 5 ) 7 ) ] )\t2\n"
    )


def test_write_tsv_then_load(tmp_path, short_trees):
    sources, targets = short_trees
    listops.write_tsv(tmp_path / "basic_val.tsv", sources[:300], targets[:300])
    lines = (tmp_path / "basic_val.tsv").read_text().splitlines()
    assert lines[0] == "Source\tTarget" and len(lines) == 301
    for line, source, target in zip(lines[1:], sources, targets):
        wrapped, written = line.split("\t")
        assert "(" in wrapped and ")" in wrapped
        assert wrapped.count("(") == wrapped.count(")")
        assert _strip(wrapped) == source
        assert int(written) == target
    tokens, labels = listops.load(tmp_path, split="val", max_length=200)
    assert tokens.dtype == np.int32 and tokens.shape == (300, 200)
    np.testing.assert_array_equal(tokens, listops.tokenize(sources[:300], 200))
    np.testing.assert_array_equal(labels, targets[:300])
    assert labels.dtype == np.int32
    assert os.listdir(tmp_path) == ["basic_val.tsv"]


def test_tokenize_maps_pads_and_truncates():
    tokens = listops.tokenize(
        ["[MAX 2 9 [MIN 4 7 ] 0 ]", "[SM 5 7 ]"], max_length=8
    )
    assert tokens.dtype == np.int32
    np.testing.assert_array_equal(
        tokens,
        [
            [12, 3, 10, 11, 5, 8, 15, 1],
            [14, 6, 8, 15, 0, 0, 0, 0],
        ],
    )
    words = listops.tokenize(["[MED 0 9 ]"], max_length=4)[0]
    assert [listops.VOCABULARY[i] for i in words] == ["[MED", "0", "9", "]"]
    # Round brackets and extra blanks are dropped.
    np.testing.assert_array_equal(
        listops.tokenize(["( ( ( [SM 5 )  7 )\t] )"], max_length=8),
        listops.tokenize(["[SM 5 7 ]"], max_length=8),
    )


def test_tokenize_names_an_unknown_token():
    with pytest.raises(ValueError, match=r"Source 1 .*'\[AVG'"):
        listops.tokenize(["[SM 5 7 ]", "[AVG 1 2 ]"])
    with pytest.raises(ValueError, match="'10'"):
        listops.tokenize(["[SM 10 7 ]"])
    # Glued to a token, a bracket is part of it.
    with pytest.raises(ValueError, match=r"'\(5'"):
        listops.tokenize(["( [SM (5 ) 7 ) ]"])
    # Counted across the pieces `tokenize` works in.
    with pytest.raises(ValueError, match="Source 1500 .*'x'"):
        listops.tokenize(["[SM 1 2 ]"] * 1500 + ["[SM x 2 ]"])


def _fixture(folder, body, name="basic_train.tsv"):
    path = folder / name
    path.write_text("Source\tTarget\n" + body)
    return path


def test_load_a_hand_written_release_file(tmp_path):
    _fixture(
        tmp_path,
        "( ( [MAX 2 ) 9 ) ]\t9\n"
        "( ( ( [MED 1 ) 2 ) ( ( ( [SM 5 ) 7 ) ] ) ) ] )\t2.0\n"
        "[MIN 4 7 ]\t4",
    )
    tokens, labels = listops.load(tmp_path, max_length=6)
    np.testing.assert_array_equal(
        tokens,
        [
            [12, 3, 10, 15, 0, 0],
            [13, 2, 3, 14, 6, 8],
            [11, 5, 8, 15, 0, 0],
        ],
    )
    np.testing.assert_array_equal(labels, [9, 2, 4])


@pytest.mark.parametrize(
    "line,number,match",
    [
        ("[MAX 2 9 ]", 3, "expected '<source>"),
        ("[MAX 2 9 ]\tx", 3, "expected '<source>"),
        ("[MAX 2 9 ]\t12", 3, "expected '<source>"),
        ("[MAX 2 9 ]\t2.5", 3, "expected '<source>"),
        ("[MAX 2 9 ]\t9\textra", 3, "expected '<source>"),
        ("( ( [MAX 2 ) 9 ) } )\t9", 3, "unknown token '}'"),
    ],
)
def test_load_names_the_file_and_line_of_a_malformed_line(
    tmp_path, line, number, match
):
    path = _fixture(tmp_path, f"[SM 5 7 ]\t2\n{line}\n[SM 1 1 ]\t2\n")
    with pytest.raises(ValueError, match=match) as info:
        listops.load(tmp_path)
    assert str(path) in str(info.value)
    assert f"line {number}" in str(info.value)


def test_load_checks_the_header(tmp_path):
    path = tmp_path / "basic_test.tsv"
    path.write_text("[SM 5 7 ]\t2\n")
    with pytest.raises(ValueError, match="line 1: expected the header"):
        listops.load(tmp_path, split="test")


def test_load_without_files(tmp_path):
    with pytest.raises(
        FileNotFoundError, match="basic_train.tsv.*write_release"
    ):
        listops.load(tmp_path / "missing")


def test_load_bad_split(tmp_path):
    with pytest.raises(ValueError, match="'train', 'val', 'test'"):
        listops.load(tmp_path, split="dev")


def test_loader_never_modifies_the_file(tmp_path):
    path = _fixture(tmp_path, "( ( [MAX 2 ) 9 ) ]\t9\n")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    before = (path.read_bytes(), os.stat(path).st_mtime_ns)
    listops.load(tmp_path, max_length=4)
    assert (path.read_bytes(), os.stat(path).st_mtime_ns) == before
    assert os.listdir(tmp_path) == ["basic_train.tsv"]


def test_write_tsv_rejects_bad_input(tmp_path):
    path = tmp_path / "basic_train.tsv"
    with pytest.raises(ValueError, match="Source 1 .*unknown token '7.0'"):
        listops.write_tsv(path, ["[SM 5 7 ]", "[SM 5 7.0 ]"], [2, 2])
    with pytest.raises(ValueError, match=r"starts with '\(', not an operator"):
        listops.write_tsv(path, ["( [SM 5 ) 7 ]"], [2])
    with pytest.raises(ValueError, match="Source 0 .*not closed"):
        listops.write_tsv(path, ["[SM 5 7"], [2])
    with pytest.raises(ValueError, match="0 to 9"):
        listops.write_tsv(path, ["[SM 5 7 ]"], [12])
    with pytest.raises(ValueError, match="one value per source"):
        listops.write_tsv(path, ["[SM 5 7 ]"], [2, 3])
    assert os.listdir(tmp_path) == []


def test_write_release_writes_three_splits(tmp_path):
    directory = listops.write_release(
        tmp_path / "listops-1000", 60, seed=5, workers=1, **SHORT
    )
    assert sorted(os.listdir(directory)) == sorted(listops.FILES.values())
    sources, targets = listops.generate(
        60, seed=5, workers=1, progress=False, **SHORT
    )
    sizes = {"train": 52, "val": 4, "test": 4}
    assert listops.split_sizes(60) == sizes
    start = 0
    for split, size in sizes.items():
        tokens, labels = listops.load(directory, split=split, max_length=200)
        np.testing.assert_array_equal(
            tokens, listops.tokenize(sources[start : start + size], 200)
        )
        np.testing.assert_array_equal(labels, targets[start : start + size])
        start += size


def test_write_release_with_sizes_per_split(tmp_path):
    listops.write_release(
        tmp_path, {"train": 4, "test": 2}, seed=0, workers=1, **SHORT
    )
    assert sorted(os.listdir(tmp_path)) == ["basic_test.tsv", "basic_train.tsv"]
    assert listops.load(tmp_path, split="test", max_length=200)[0].shape == (
        2,
        200,
    )
    with pytest.raises(ValueError, match="num_samples"):
        listops.write_release(tmp_path, {"dev": 4}, seed=0, **SHORT)


# --- bad release files and sources --------------------------------------------


@pytest.mark.parametrize(
    "body,number,match",
    [
        # A NUL glued to a digit is not the digit.
        ("[SM 5 7 ]\t2\n[MAX 2 9\x00 ]\t9\n", 3, r"unknown token '9\\x00'"),
        ("[SM 5 7 ]\t2\n[MAX 2 9 ]\t9\x00\n", 3, "expected '<source>"),
        ("[SM 5 7 ]\t2\n[MAX 2 9 ]\t1e0\n", 3, "expected '<source>"),
        ("[SM 5 7 ]\t2\n[MAX 2 9 ]\t-1\n", 3, "expected '<source>"),
        ("[SM 5 7 ]\t2\n\t9\n", 3, "holds no token"),
        ("[SM 5 7 ]\t2\n( ( ) )\t9\n", 3, "holds no token"),
        ("[SM 5 7 ]\t2\n\n[SM 1 1 ]\t\n", 4, "expected '<source>"),
        ("[SM 5 7 ]\t2\n\x1c\n", 3, "expected '<source>"),
    ],
)
def test_load_rejects_garbage_and_empty_sources(tmp_path, body, number, match):
    path = _fixture(tmp_path, body)
    with pytest.raises(ValueError, match=match) as info:
        listops.load(tmp_path)
    assert f"{path}, line {number}" in str(info.value)


def test_load_names_a_non_utf8_line(tmp_path):
    path = tmp_path / "basic_train.tsv"
    path.write_bytes(b"Source\tTarget\n[SM 5 7 ]\t2\n[SM 5 \xff ]\t2\n")
    with pytest.raises(ValueError, match="line 3: not UTF-8") as info:
        listops.load(tmp_path)
    assert str(path) in str(info.value) and "0xff" in str(info.value)


@pytest.mark.parametrize("end", ["\n", "\n\n", "\r\n\r\n", "\n  \n"])
def test_trailing_blank_lines_are_ignored(tmp_path, end):
    _fixture(tmp_path, "[SM 5 7 ]\t2\n[MAX 2 9 ]\t9" + end)
    tokens, labels = listops.load(tmp_path, max_length=5)
    np.testing.assert_array_equal(
        tokens, [[14, 6, 8, 15, 0], [12, 3, 10, 15, 0]]
    )
    np.testing.assert_array_equal(labels, [2, 9])


@pytest.mark.parametrize("text", ["Source\tTarget\n", "Source\tTarget\n\n", ""])
def test_a_file_without_samples_is_named(tmp_path, text):
    path = tmp_path / "basic_val.tsv"
    path.write_text(text)
    with pytest.raises(ValueError, match="holds no sample") as info:
        listops.load(tmp_path, split="val")
    assert str(path) in str(info.value)


@pytest.mark.parametrize("bad", [b"[SM 5 7 ]", None, 5, ["[SM 5 7 ]"]])
def test_tokenize_and_write_tsv_name_a_source_that_is_not_a_string(
    tmp_path, bad
):
    with pytest.raises(TypeError, match=r"`sources\[1\]` must be a string"):
        listops.tokenize(["[SM 1 2 ]", bad])
    with pytest.raises(TypeError, match=r"`sources\[1\]` must be a string"):
        listops.write_tsv(
            tmp_path / "basic_test.tsv", ["[SM 1 2 ]", bad], [3, 2]
        )
    with pytest.raises(TypeError, match="`sources` must be a list"):
        listops.tokenize(b"[SM 5 7 ]")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("source", ["", "  ", "( )", "[SM 5 9\x00 ]"])
def test_tokenize_rejects_empty_and_garbage_sources(source):
    with pytest.raises(ValueError, match="Source 1 "):
        listops.tokenize(["[SM 1 2 ]", source])


# --- caches: checked, regenerated, written whole and readable ----------------

_CACHE = dict(seed=4, workers=1, progress=False, **SHORT)


def _npz(**arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _corrupt_caches(path, other):
    """Bad contents for the cache `path`; `other` is a valid foreign one."""
    whole = path.read_bytes()
    with np.load(path) as stored:
        good = dict(stored)
    ids, lengths, targets = good["ids"], good["lengths"], good["targets"]
    first = ids.copy()
    first[0] = 3  # a digit where the root operator was
    return {
        "empty": b"",
        "garbage": bytes(range(256)) * 2,
        "truncated": whole[:-40],
        "wrong keys": _npz(ids=ids, lengths=lengths, targets=targets),
        "wrong dtype": _npz(**{**good, "ids": ids.astype(np.int32)}),
        "wrong shape": _npz(**{**good, "targets": targets[:3]}),
        "too short": _npz(**{**good, "lengths": np.full_like(lengths, 5)}),
        "too few ids": _npz(**{**good, "ids": ids[:-1]}),
        "bad id": _npz(**{**good, "ids": np.zeros_like(ids)}),
        "bad target": _npz(**{**good, "targets": targets + 10}),
        "bad tree": _npz(**{**good, "ids": first}),
        "other settings": other.read_bytes(),
    }


def test_corrupt_or_stale_caches_are_generated_again(tmp_path, capsys):
    if BACKEND != "jax":
        pytest.skip("runs in the jax test process (numpy only)")
    cache_dir = tmp_path / "cache"
    sources, targets = listops.generate(5, cache_dir=cache_dir, **_CACHE)
    (path,) = (cache_dir / name for name in os.listdir(cache_dir))
    listops.generate(5, cache_dir=tmp_path / "other", **{**_CACHE, "seed": 5})
    (other,) = (
        tmp_path / "other" / name for name in os.listdir(tmp_path / "other")
    )
    capsys.readouterr()
    for case, data in _corrupt_caches(path, other).items():
        path.write_bytes(data)
        got_sources, got_targets = listops.generate(
            5, cache_dir=cache_dir, **_CACHE
        )
        out = capsys.readouterr().out
        assert str(path) in out and "generating it again" in out, case
        assert out.count("\n") == 1, case
        assert got_sources == sources, case
        np.testing.assert_array_equal(got_targets, targets, err_msg=case)
        assert os.listdir(cache_dir) == [path.name], case
    listops.generate(5, cache_dir=cache_dir, **_CACHE)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("under_a_file", [False, True])
def test_unwritable_folders_fail_before_generating(
    tmp_path, monkeypatch, under_a_file
):
    (tmp_path / "afile").write_bytes(b"")
    folder = tmp_path / "afile"
    if under_a_file:
        folder = folder / "sub"

    def fail(*args, **kwargs):
        raise AssertionError("generated before checking the folder")

    monkeypatch.setattr(listops.trees, "_generate", fail)
    with pytest.raises(ValueError, match="cache_dir.*afile"):
        listops.generate(5, cache_dir=folder, **_CACHE)
    with pytest.raises(ValueError, match="directory.*afile"):
        listops.write_release(folder, 6, seed=0, **SHORT)


def test_every_file_written_is_readable_under_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        listops.generate(5, cache_dir=tmp_path / "cache", **_CACHE)
        listops.write_release(
            tmp_path / "release", 6, seed=0, workers=1, **SHORT
        )
        listops.write_tsv(tmp_path / "one.tsv", ["[SM 5 7 ]"], [2])
    finally:
        os.umask(old)
    written = [
        os.path.join(folder, name)
        for folder, _, names in os.walk(tmp_path)
        for name in names
    ]
    assert len(written) == 1 + 3 + 1
    for path in written:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644, path


def test_a_kill_while_saving_the_cache_is_cleaned_up_by_the_rerun(tmp_path):
    if BACKEND != "tensorflow":
        pytest.skip("runs in the tensorflow test process")
    cache_dir = tmp_path / "cache"
    # The data modules alone, without keras (seconds saved); the save
    # writes half a cache and waits to be killed.
    script = (
        "import sys, time, types\n"
        "for name, path in (('keras_elm', 'keras_elm'),\n"
        "                   ('keras_elm.data', 'keras_elm/data')):\n"
        "    sys.modules[name] = types.ModuleType(name)\n"
        "    sys.modules[name].__path__ = [path]\n"
        "import numpy as np\n"
        "from keras_elm.data import listops\n"
        "def savez(f, **arrays):\n"
        "    f.write(b'half a cache')\n"
        "    f.flush()\n"
        "    print('saving', flush=True)\n"
        "    time.sleep(60)\n"
        "np.savez = savez\n"
        f"listops.generate(1100, seed=4, workers=2, cache_dir="
        f"{str(cache_dir)!r}, min_length=50, max_length=200, "
        f"progress=False)\n"
    )
    run = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert run.stdout.readline() == "saving\n"
    finally:
        os.kill(run.pid, signal.SIGKILL)
        run.wait()
        run.stdout.close()
    # Beside the finished chunks, kept for the rerun (a hidden folder).
    names = sorted(os.listdir(cache_dir), key=lambda n: n.endswith(".parts"))
    temporary, parts = names
    assert parts.endswith(".parts")
    assert temporary.startswith(".") and temporary.endswith(".tmp")
    sources, _ = listops.generate(1100, cache_dir=cache_dir, **_CACHE)
    assert len(sources) == 1100
    (name,) = os.listdir(cache_dir)
    assert name.endswith(".npz") and not name.startswith(".")
