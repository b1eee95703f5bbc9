"""ListOps (Nangia and Bowman 2018), the Long Range Arena's "ListOps" task.

Nested prefix expressions over the digits 0-9 with four operators on lists:
`MIN`, `MAX`, `MED` (the median, rounded down: for an even count the floor
of the mean of the two middle values) and `SM` (the sum modulo 10). The
label is the value of the expression, 0 to 9 (10 classes). A source is
written as space-separated tokens, an operator as `"[" + name`, the end of
its list as `"]"`:

    [MAX 2 9 [MIN 4 7 ] 0 ]        -> 9

Two sources:

- `generate()` draws expressions here with LRA's recipe, seeded, on every
  core, optionally cached as one `.npz`;
- `load()` reads the LRA release, `lra_release/listops-1000/basic_{train,
  val,test}.tsv`, or a folder written by `write_release()`.

The release files are TSV with the header `Source\\tTarget`. Their sources
also wrap operands in round brackets: an operator with operands
`a1 ... ak` is written

    ( ( ... ( [OP a1 ) a2 ) ... ak ) ] )      (k + 1 opening brackets)

that is, the list is built as nested pairs `(((OP, a1), a2), ..., "]")`
and each pair is written `( left right )`. `write_tsv()` writes that form
and `tokenize()` drops every `(` and `)`, as LRA does, so the model sees
the plain source. `VOCABULARY` lists the tokens left; index 0 is padding.

Nothing is downloaded. The generator follows LRA's recipe (`generate()`)
but is written afresh and draws its own random numbers, so its trees are
distributed as the release's, not identical to them.
"""

import concurrent.futures
import os
import re

import numpy as np

from keras_elm.checks import check_choice as _check_choice
from keras_elm.checks import check_int as _check_int
from keras_elm.data import caches
from keras_elm.data import files
from keras_elm.data import processes

OPERATORS = ("MIN", "MAX", "MED", "SM")
SPLITS = ("train", "val", "test")
FILES = {
    "train": "basic_train.tsv",
    "val": "basic_val.tsv",
    "test": "basic_test.tsv",
}
# Token ids: 0 padding, 1-10 the digits 0-9, 11-14 the operators in the
# order of OPERATORS, 15 the closing bracket.
VOCABULARY = (
    "<pad>",
    *(str(digit) for digit in range(10)),
    *("[" + name for name in OPERATORS),
    "]",
)
VOCABULARY_SIZE = len(VOCABULARY)
NUM_CLASSES = 10
# The split sizes of the LRA release.
RELEASE_SIZES = {"train": 96_000, "val": 2_000, "test": 2_000}
HEADER = "Source\tTarget"
# Part of the cache key: bump it whenever a seed would draw different trees
# (the recipe, the chunk and batch sizes, the order of the draws).
GENERATOR_VERSION = 1

# LRA's recipe: below the maximum depth a node is an operator with this
# probability, a digit otherwise.
OPERATOR_PROBABILITY = 0.25
_CLOSE = VOCABULARY_SIZE - 1
_SHORTEST = 4  # tokens of the shortest tree, `[OP d d ]`
_CHUNK = 1024  # trees per task of a worker process
_BATCH_NODES = 1_000_000  # about the most nodes one batch of candidates holds
# Raised on rather than looped on: the bounds accept fewer than one
# candidate in _RARE, measured over at least _VERDICT candidates.
_VERDICT = 100_000
_RARE = 10_000


# --- checks ------------------------------------------------------------------


def _check_split(split):
    _check_choice("split", split, SPLITS)


def _longest(max_depth, max_args, enough):
    """Tokens of the largest tree, or a number over `enough` once one is.

    The largest tree has operators of `max_args` operands down to the
    digits at depth `max_depth`.
    """
    length = 1
    for _ in range(max_depth - 1):
        if length > enough:
            break
        length = 2 + max_args * length
    return length


def _check_settings(min_length, max_length, max_depth, max_args):
    """The generator's settings as ints; raises where no tree can fit them."""
    min_length = _check_int("min_length", min_length, 1)
    max_length = _check_int("max_length", max_length, 1)
    max_depth = _check_int("max_depth", max_depth, 1)
    max_args = _check_int("max_args", max_args, 2)
    if max_length < min_length + 2:
        raise ValueError(
            f"`max_length` must exceed `min_length` + 1: lengths are kept "
            f"strictly between the two. Received: min_length={min_length}, "
            f"max_length={max_length}"
        )
    if max_depth < 2:
        raise ValueError(
            f"`max_depth` must be at least 2: the root (depth 1) is an "
            f"operator and a node at depth `max_depth` is a digit. "
            f"Received: max_depth={max_depth}"
        )
    if max_length <= _SHORTEST:
        raise ValueError(
            f"`max_length` must be at least {_SHORTEST + 1}: the shortest "
            f"tree, `[MAX 2 9 ]`, has {_SHORTEST} tokens. Received: "
            f"max_length={max_length}"
        )
    longest = _longest(max_depth, max_args, min_length)
    if min_length >= longest:
        raise ValueError(
            f"No tree of max_depth={max_depth} and max_args={max_args} is "
            f"longer than {longest} tokens, so none is longer than "
            f"min_length={min_length}: lower `min_length` or raise "
            f"`max_depth` or `max_args`."
        )
    return min_length, max_length, max_depth, max_args


# --- the generator -----------------------------------------------------------


def _evaluate(symbols, values, starts, counts):
    """Values of operators `symbols` (10 + OPERATORS index) on segments.

    The operands of operator i are `values[starts[i]:starts[i] + counts[i]]`.
    """
    minimum = np.minimum.reduceat(values, starts)
    maximum = np.maximum.reduceat(values, starts)
    total = np.add.reduceat(values, starts) % 10
    segment = np.repeat(np.arange(len(starts)), counts)
    # Values are digits, so sorting segment * 10 + value sorts each segment
    # in place.
    ordered = np.sort(segment * 10 + values) - segment * 10
    median = (
        ordered[starts + (counts - 1) // 2] + ordered[starts + counts // 2]
    ) // 2
    return np.choose(symbols - 10, [minimum, maximum, median, total])


def _draw_levels(rng, count, max_length, max_depth, max_args):
    """Draws `count` candidate trees breadth first, all at once.

    Each level is `(tree, symbol, operands)` over its nodes, in order of
    their parents: `symbol` is a digit 0-9 or 10 + an index of OPERATORS,
    `operands` 0 for a digit. A tree stops growing as soon as it cannot
    stay shorter than `max_length`.

    Returns:
        `(levels, lengths, complete)`: lengths in tokens, and whether each
        tree grew to the end under `max_length`.
    """
    tree = np.arange(count)
    lengths = np.zeros(count, np.int64)
    complete = np.ones(count, bool)
    levels = []
    for depth in range(1, max_depth + 1):
        if depth == 1:
            is_operator = np.ones(tree.size, bool)
        elif depth == max_depth:
            is_operator = np.zeros(tree.size, bool)
        else:
            is_operator = rng.random(tree.size) < OPERATOR_PROBABILITY
        operators = np.count_nonzero(is_operator)
        symbol = np.empty(tree.size, np.int64)
        symbol[is_operator] = 10 + rng.integers(0, len(OPERATORS), operators)
        symbol[~is_operator] = rng.integers(0, 10, tree.size - operators)
        operands = np.zeros(tree.size, np.int64)
        operands[is_operator] = rng.integers(2, max_args + 1, operators)
        levels.append((tree, symbol, operands))
        # A digit is one token, an operator two (its name and "]").
        lengths += np.bincount(tree, minlength=count)
        lengths += np.bincount(tree[is_operator], minlength=count)
        children = np.repeat(tree, operands)
        # Each child adds at least one token.
        bound = lengths + np.bincount(children, minlength=count)
        complete &= bound < max_length
        tree = children[complete[children]]
        if not tree.size:
            break
    return levels, lengths, complete


def _build(levels, keep):
    """Token ids and values of the trees `keep` (sorted) of `levels`.

    Returns:
        `(ids, lengths, values)`: `uint8` token ids of the kept trees, one
        after the other, their lengths and their values.
    """
    renumber = np.full(len(levels[0][0]), -1, np.int64)
    renumber[keep] = np.arange(len(keep))
    kept = []
    for tree, symbol, operands in levels:
        mask = renumber[tree] >= 0
        if not mask.any():
            break
        kept.append((renumber[tree[mask]], symbol[mask], operands[mask]))
    # Bottom up: the size (tokens) and value of every subtree.
    sizes = [None] * len(kept)
    values = [None] * len(kept)
    for depth in reversed(range(len(kept))):
        _, symbol, operands = kept[depth]
        size = np.ones(len(symbol), np.int64)
        value = symbol.copy()
        operators = np.flatnonzero(operands)
        if operators.size:
            counts = operands[operators]
            starts = np.cumsum(counts) - counts
            size[operators] = 2 + np.add.reduceat(sizes[depth + 1], starts)
            value[operators] = _evaluate(
                symbol[operators], values[depth + 1], starts, counts
            )
        sizes[depth], values[depth] = size, value
    # Top down: the position of every node in its tree's tokens, after its
    # parent's name and its elder siblings' subtrees.
    lengths = sizes[0]
    offsets = np.cumsum(lengths) - lengths
    ids = np.empty(int(lengths.sum()), np.uint8)
    position = np.zeros(len(keep), np.int64)
    for depth, (tree, symbol, operands) in enumerate(kept):
        where = offsets[tree] + position
        ids[where] = symbol + 1
        operators = np.flatnonzero(operands)
        ids[where[operators] + sizes[depth][operators] - 1] = _CLOSE
        if depth + 1 < len(kept):
            counts = operands[operators]
            starts = np.cumsum(counts) - counts
            before = np.cumsum(sizes[depth + 1]) - sizes[depth + 1]
            position = (
                np.repeat(position[operators] + 1 - before[starts], counts)
                + before
            )
    return ids, lengths.astype(np.int32), values[0].astype(np.int8)


def _batch_size(max_length):
    return int(np.clip(_BATCH_NODES // max_length, 64, 16_384))


def _draw_chunk(
    seed, chunk, count, min_length, max_length, max_depth, max_args
):
    """Trees `chunk * _CHUNK` to `chunk * _CHUNK + count`: a worker's task.

    Candidates come in batches of a size fixed by the settings, from a
    stream seeded by `(seed, chunk)`, and the first `count` accepted ones
    are kept: a data set is the same whatever the workers, and the first
    `n` trees of a larger set are the set of `n`.
    """
    rng = np.random.default_rng([seed, chunk])
    batch = _batch_size(max_length)
    parts = []
    found = 0
    candidates = 0
    while found < count:
        levels, lengths, complete = _draw_levels(
            rng, batch, max_length, max_depth, max_args
        )
        accepted = np.flatnonzero(complete & (lengths > min_length))
        candidates += batch
        if accepted.size:
            parts.append(_build(levels, accepted[: count - found]))
            found += min(accepted.size, count - found)
        if (
            found < count
            and candidates >= _VERDICT
            and (found * _RARE < candidates)
        ):
            raise ValueError(
                f"Only {found} of {candidates} candidate trees had a length "
                f"strictly between min_length={min_length} and max_length="
                f"{max_length} (max_depth={max_depth}, max_args={max_args}): "
                f"widen the bounds (lower `min_length` or raise "
                f"`max_length`) or change `max_depth` or `max_args`."
            )
    ids, lengths, values = (np.concatenate(part) for part in zip(*parts))
    return chunk, ids, lengths, values


_WIDTHS = np.array([len(token) for token in VOCABULARY], np.int64)
_WIDEST = int(_WIDTHS.max())
_CHARACTERS = np.zeros((VOCABULARY_SIZE, _WIDEST), np.uint8)
for _id, _token in enumerate(VOCABULARY):
    _CHARACTERS[_id, : len(_token)] = np.frombuffer(_token.encode(), np.uint8)


def _decode(ids, lengths):
    """The space-separated sources of concatenated token ids."""
    sources = []
    ends = np.cumsum(lengths, dtype=np.int64)
    for first in range(0, len(lengths), _CHUNK):
        last = min(first + _CHUNK, len(lengths))
        begin = ends[first] - lengths[first]
        part = ids[begin : ends[last - 1]]
        widths = _WIDTHS[part]
        # Every token is followed by a space.
        char_ends = np.cumsum(widths + 1)
        char_starts = char_ends - widths - 1
        chars = np.full(int(char_ends[-1]), ord(" "), np.uint8)
        for column in range(_WIDEST):
            wide = widths > column
            chars[char_starts[wide] + column] = _CHARACTERS[part[wide], column]
        text = chars.tobytes().decode("ascii")
        tree_ends = ends[first:last] - begin
        tree_starts = tree_ends - lengths[first:last]
        sources.extend(
            text[char_starts[start] : char_ends[end - 1] - 1]
            for start, end in zip(tree_starts, tree_ends)
        )
    return sources


def _cache_path(
    cache_dir, num_samples, seed, min_length, max_length, max_depth, max_args
):
    name = (
        f"listops_n{num_samples}_seed{seed}_length{min_length}-"
        f"{max_length}_depth{max_depth}_args{max_args}"
        f"_v{GENERATOR_VERSION}.npz"
    )
    return os.path.join(cache_dir, name)


def _cache_settings(
    num_samples, seed, min_length, max_length, max_depth, max_args
):
    return {
        "generator": "listops",
        "generator_version": GENERATOR_VERSION,
        "num_samples": num_samples,
        "seed": seed,
        "min_length": min_length,
        "max_length": max_length,
        "max_depth": max_depth,
        "max_args": max_args,
    }


def _read_cache(path, settings):
    """`(ids, lengths, targets)` of a sound cache, or None.

    See `caches.load_cache`; besides dtypes and shapes, every token id is
    known, every length within the bounds, the lengths add up to the ids,
    and every tree starts with an operator and ends with `]`.
    """
    count = settings["num_samples"]

    def check(data):
        ids, lengths, targets = data["ids"], data["lengths"], data["targets"]
        if lengths.shape != (count,) or targets.shape != (count,):
            return (
                f"`lengths` and `targets` have the shapes "
                f"{lengths.shape} and {targets.shape}, expected "
                f"{(count,)}"
            )
        if (
            lengths.min() <= settings["min_length"]
            or lengths.max() >= settings["max_length"]
        ):
            return "`lengths` holds lengths outside the bounds"
        if int(lengths.sum(dtype=np.int64)) != ids.size:
            return (
                f"`lengths` add up to {int(lengths.sum(dtype=np.int64))}"
                f" tokens, `ids` holds {ids.size}"
            )
        if (
            ids.min() < 1
            or ids.max() > _CLOSE
            or (targets.min() < 0 or targets.max() > 9)
        ):
            return "`ids` or `targets` holds values out of range"
        ends = np.cumsum(lengths, dtype=np.int64)
        roots = ids[ends - lengths]
        if (
            (ids[ends - 1] != _CLOSE).any()
            or (roots < 11).any()
            or (roots >= _CLOSE).any()
        ):
            return "a tree does not start with an operator and end with ']'"
        return None

    data = caches.load_cache(
        path,
        settings,
        {
            "ids": (np.uint8, 1),
            "lengths": (np.int32, 1),
            "targets": (np.int8, 1),
        },
        check,
    )
    return (
        None
        if data is None
        else (data["ids"], data["lengths"], data["targets"])
    )


def _default_workers():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def generate(
    num_samples,
    *,
    seed=None,
    min_length=500,
    max_length=2000,
    max_depth=10,
    max_args=10,
    workers=None,
    cache_dir=None,
    progress=True,
):
    """Generates ListOps expressions and their values with LRA's recipe.

    A tree is drawn from the root down; the root (depth 1) is an operator.
    Below it, a node at depth `max_depth` is a digit; above, it is an
    operator with probability 0.25 (`OPERATOR_PROBABILITY`), a digit
    otherwise. An operator is uniform over `OPERATORS` and has a number of
    operands uniform in 2..`max_args`; a digit is uniform in 0..9. Trees
    whose length in tokens (operators, digits and closing brackets) is not
    strictly between `min_length` and `max_length` are drawn again; a tree
    stops growing as soon as it is too long. (LRA also lets the root be a
    digit, a tree of length 1 that its bounds always reject.) Values are
    computed as the trees are built.

    Many candidates are drawn at once with NumPy, in chunks of trees run by
    a process pool (forked where the platform can fork; the workers end
    with this process, even when it is killed). Each chunk has its
    own random stream, seeded by `(seed, chunk)`, so a seed gives the same
    trees whatever `workers` is, and the first `n` trees of a larger set
    are the set of `n`. With LRA's bounds about a third of the candidates
    are kept; `benchmarks/bench_listops.py` measures the speed.

    Args:
        num_samples: number of trees.
        seed: a non-negative integer, or None for a fresh random seed.
        min_length: trees are longer than this many tokens. LRA: 500.
        max_length: trees are shorter than this many tokens. LRA: 2000.
            For quick experiments on a CPU, `min_length=50,
            max_length=200`.
        max_depth: depth of the deepest digits; operators nest at most
            `max_depth - 1` deep. LRA: 10.
        max_args: most operands of one operator, at least 2. LRA: 10.
        workers: processes to draw with; None means every core this
            process may use, 1 draws in this process.
        cache_dir: a folder where the result is kept as one `.npz`, named
            after every setting, and read back by the next identical call.
            The cache also holds its settings and is checked when read; one
            that is unreadable, made with other settings, or of the wrong
            arrays, shapes, dtypes or values is generated again (a line
            says which and why). The folder is checked to be writable
            before any tree is drawn. Calls with `seed=None` are not
            cached.
        progress: show a `keras.utils.Progbar`.

    Returns:
        `(sources, targets)`: a list of `num_samples` strings such as
        `"[MAX 2 9 [MIN 4 7 ] 0 ]"` and their values, `int32` of shape
        `(num_samples,)`, 0 to 9.

    Example:

    >>> sources, targets = generate(4, seed=0, min_length=50, max_length=200,
    ...                             workers=1, progress=False)
    >>> len(sources), targets.shape
    (4, (4,))
    """
    num_samples = _check_int("num_samples", num_samples, 1)
    settings = _check_settings(min_length, max_length, max_depth, max_args)
    if seed is not None:
        seed = _check_int("seed", seed, 0)
    workers = (
        _default_workers()
        if workers is None
        else _check_int("workers", workers, 1)
    )
    if not isinstance(progress, bool):
        raise TypeError(
            f"`progress` must be True or False. Received: progress={progress!r}"
        )
    cache = None
    if cache_dir is not None and seed is not None:
        cache_dir = os.path.expanduser(os.fspath(cache_dir))
        # Temporaries of a run killed while saving.
        files.remove_stale_temporaries(cache_dir)
        cache = _cache_path(cache_dir, num_samples, seed, *settings)
        stored = _cache_settings(num_samples, seed, *settings)
        cached = _read_cache(cache, stored)
        if cached is not None:
            ids, lengths, targets = cached
            return _decode(ids, lengths), targets.astype(np.int32)
        files.check_writable(cache_dir, what="`cache_dir`")
    if seed is None:
        seed = int(np.random.SeedSequence().entropy)
    ids, lengths, targets = _generate(
        num_samples, seed, settings, workers, progress
    )
    if cache is not None:
        caches.save_cache(
            cache, stored, ids=ids, lengths=lengths, targets=targets
        )
    return _decode(ids, lengths), targets.astype(np.int32)


def _generate(num_samples, seed, settings, workers, progress):
    tasks = [
        (seed, chunk, min(_CHUNK, num_samples - start), *settings)
        for chunk, start in enumerate(range(0, num_samples, _CHUNK))
    ]
    results = [None] * len(tasks)
    bar = None
    if progress:
        import keras

        bar = keras.utils.Progbar(num_samples, unit_name="tree")
    done = 0

    def collect(result):
        nonlocal done
        results[result[0]] = result[1:]
        done += len(result[2])
        if bar is not None:
            bar.update(done)

    workers = min(workers, len(tasks))
    if workers == 1:
        for task in tasks:
            collect(_draw_chunk(*task))
    else:
        with processes.worker_pool(workers) as pool:
            futures = [pool.submit(_draw_chunk, *task) for task in tasks]
            for future in concurrent.futures.as_completed(futures):
                collect(future.result())
    ids, lengths, targets = (np.concatenate(part) for part in zip(*results))
    return ids, lengths, targets


# --- the release format ------------------------------------------------------

_DIGITS = frozenset(VOCABULARY[1:11])
_OPERATOR_TOKENS = frozenset(VOCABULARY[11:15])


def _wrap(source):
    """The release form of a plain source (see the module docstring)."""
    tokens = source.split()
    if not tokens:
        raise ValueError("it is empty")
    if tokens[0] not in _OPERATOR_TOKENS:
        raise ValueError(
            f"it starts with {tokens[0]!r}, not an operator "
            f"(sources are written without round brackets)"
        )
    out = []
    # Of each operator not yet closed: its index in `out`, its operands.
    opened, operands = [], []
    for token in tokens:
        if not opened and out:
            raise ValueError(f"{token!r} follows the end of the expression")
        if token in _DIGITS:
            operands[-1] += 1
            out.append(token + " )")
        elif token == "]":
            index = opened.pop()
            out[index] = "( " * (operands.pop() + 1) + out[index]
            out.append("] ) )" if opened else "] )")
        elif token in _OPERATOR_TOKENS:
            if operands:
                operands[-1] += 1
            opened.append(len(out))
            operands.append(0)
            out.append(token)
        else:
            raise ValueError(
                f"unknown token {token!r}; a source holds only "
                f"the tokens {VOCABULARY[1:]}"
            )
    if opened:
        raise ValueError("an operator is not closed")
    return " ".join(out)


def write_tsv(path, sources, targets):
    """Writes sources and targets as one file of the LRA release.

    A TSV file with the header `Source\\tTarget` and one line per sample:
    the source with its operands wrapped in round brackets, as the release
    writes them (see the module docstring), a tab, and the target as an
    integer. `[MAX 2 9 ]` is written `( ( ( [MAX 2 ) 9 ) ] )`; dropping
    every `(` and `)` gives back the plain source. The file is written
    whole or not at all (to a temporary file beside `path`, then moved onto
    it), with the mode the umask gives.

    Args:
        path: the file to write, for example `.../basic_train.tsv`.
        sources: plain sources as `generate()` returns them.
        targets: their values, integers 0 to 9.

    Example:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "basic_test.tsv")
    >>> write_tsv(path, ["[MAX 2 9 ]"], [9])
    >>> open(path).read()
    'Source\\tTarget\\n( ( ( [MAX 2 ) 9 ) ] )\\t9\\n'
    """
    targets = np.asarray(targets)
    if targets.shape != (len(sources),):
        raise ValueError(
            f"`targets` must hold one value per source: expected shape "
            f"({len(sources)},). Received: shape {targets.shape}"
        )
    if targets.size and (
        not np.issubdtype(targets.dtype, np.integer)
        or targets.min() < 0
        or targets.max() > 9
    ):
        raise ValueError(
            f"`targets` must be integers 0 to 9. Received: dtype "
            f"{targets.dtype}, values {np.unique(targets)[:10]}"
        )
    lines = [HEADER + "\n"]
    for index, (source, target) in enumerate(zip(sources, targets)):
        if not isinstance(source, str):
            raise TypeError(
                f"`sources[{index}]` must be a string. Received: "
                f"sources[{index}]={source!r:.80} of type "
                f"{type(source).__name__}"
            )
        try:
            wrapped = _wrap(source)
        except ValueError as error:
            raise ValueError(
                f"Source {index} is not a ListOps expression: {error}. "
                f"Received: {source[:80]!r}"
            ) from None
        lines.append(f"{wrapped}\t{int(target)}\n")
    path = os.path.expanduser(os.fspath(path))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with files.atomic_write(path, "w", encoding="ascii", newline="\n") as f:
        f.writelines(lines)


def _split_sizes(num_samples):
    if isinstance(num_samples, dict):
        unknown = sorted(set(num_samples) - set(SPLITS), key=str)
        if unknown or not num_samples:
            raise ValueError(
                f"`num_samples` as a dict maps some of {SPLITS} to sizes. "
                f"Received: {num_samples!r}"
            )
        return {
            split: _check_int(f"num_samples[{split!r}]", num_samples[split], 1)
            for split in SPLITS
            if split in num_samples
        }
    total = _check_int("num_samples", num_samples, len(SPLITS))
    share = RELEASE_SIZES["val"] / sum(RELEASE_SIZES.values())
    held_out = max(1, round(total * share))
    if total - 2 * held_out < 1:
        held_out = 1
    return {"train": total - 2 * held_out, "val": held_out, "test": held_out}


def write_release(
    directory,
    num_samples,
    *,
    seed=None,
    min_length=500,
    max_length=2000,
    max_depth=10,
    max_args=10,
    workers=None,
    progress=False,
):
    """Generates trees and writes them as LRA's `listops-1000/` folder.

    Writes `<directory>/basic_train.tsv`, `basic_val.tsv` and
    `basic_test.tsv` with `write_tsv()`; `load(directory, split=...)`
    reads them back. The splits are consecutive slices of one
    `generate()` call, train first. No other file is touched.

    Args:
        directory: the folder to write into (created if needed).
        num_samples: the total, split as the release's 96,000 / 2,000 /
            2,000 (each at least 1); or a dict such as `{"train": 100,
            "val": 20, "test": 20}`, whose splits only are written.
        seed: seed of `generate()`; None for a fresh one.
        min_length: see `generate()`.
        max_length: see `generate()`.
        max_depth: see `generate()`.
        max_args: see `generate()`.
        workers: see `generate()`.
        progress: show a progress bar while generating.

    Returns:
        The path of `directory`, as a string.

    Example:

    >>> import tempfile
    >>> directory = write_release(tempfile.mkdtemp(), 50, seed=0,
    ...                           min_length=50, max_length=200)
    >>> tokens, labels = load(directory, split="val", max_length=200)
    >>> tokens.shape
    (1, 200)
    """
    sizes = _split_sizes(num_samples)
    _check_settings(min_length, max_length, max_depth, max_args)
    directory = os.path.expanduser(os.fspath(directory))
    # Found out now, not after the trees are drawn.
    files.check_writable(directory, what="`directory`")
    sources, targets = generate(
        sum(sizes.values()),
        seed=seed,
        min_length=min_length,
        max_length=max_length,
        max_depth=max_depth,
        max_args=max_args,
        workers=workers,
        progress=progress,
    )
    start = 0
    for split, size in sizes.items():
        write_tsv(
            os.path.join(directory, FILES[split]),
            sources[start : start + size],
            targets[start : start + size],
        )
        start += size
    return directory


# --- tokens and the loader ---------------------------------------------------


def _token_key(chars, starts, widths):
    """One integer per token: its bytes, little end first, and its width.

    The width keeps `"9\\x00"` from the key of `"9"`; a token too long to
    be known is -1.
    """
    keys = widths.astype(np.int64) << (8 * _WIDEST)
    for column in range(_WIDEST):
        wide = widths > column
        keys[wide] |= chars[starts[wide] + column].astype(np.int64) << (
            8 * column
        )
    keys[widths > _WIDEST] = -1
    return keys


_KNOWN = {token: i for i, token in enumerate(VOCABULARY) if i}
_KNOWN_KEYS = _token_key(
    np.frombuffer("".join(_KNOWN).encode(), np.uint8),
    np.cumsum([0] + [len(token) for token in _KNOWN])[:-1],
    np.array([len(token) for token in _KNOWN]),
)
_KEY_ORDER = np.argsort(_KNOWN_KEYS)
_SORTED_KEYS = _KNOWN_KEYS[_KEY_ORDER]
_SORTED_IDS = np.array(list(_KNOWN.values()))[_KEY_ORDER]


_WHITESPACE = " \t\n\r\v\f"
_BLANK = np.zeros(256, bool)
_BLANK[np.frombuffer(_WHITESPACE.encode(), np.uint8)] = True


class _UnknownToken(ValueError):
    def __init__(self, index, token):
        super().__init__(index, token)
        self.index = index
        self.token = token


class _EmptySource(ValueError):
    def __init__(self, index):
        super().__init__(index)
        self.index = index


def _tokenize(sources, max_length):
    """Token ids of `sources`.

    Raises `_UnknownToken` at the first unknown token, `_EmptySource` at
    the first source without a token but round brackets.
    """
    tokens = np.zeros((len(sources), max_length), np.int32)
    # A piece at a time, to keep the arrays of characters small.
    for first in range(0, len(sources), _CHUNK):
        try:
            _tokenize_into(
                tokens[first : first + _CHUNK], sources[first : first + _CHUNK]
            )
        except _UnknownToken as error:
            raise _UnknownToken(first + error.index, error.token) from None
        except _EmptySource as error:
            raise _EmptySource(first + error.index) from None
    return tokens


def _tokenize_into(tokens, sources):
    encoded = [source.encode("utf-8", "replace") for source in sources]
    max_length = tokens.shape[1]
    # A space before and after every source, so that no token spans two
    # and every token starts after a blank and ends before one.
    chars = np.frombuffer(b" " + b" ".join(encoded) + b" ", np.uint8)
    blank = _BLANK[chars]
    # Round brackets are tokens of their own, dropped here: blanks.
    bracket = (chars[1:-1] == ord("(")) | (chars[1:-1] == ord(")"))
    blank[1:-1] |= bracket & blank[:-2] & blank[2:]
    starts = np.flatnonzero(blank[:-1] > blank[1:]) + 1
    widths = np.flatnonzero(blank[:-1] < blank[1:]) + 1 - starts
    source_starts = (
        np.cumsum(
            [0] + [len(source) + 1 for source in encoded], dtype=np.int64
        )[:-1]
        + 1
    )
    # The first token of each row, and the row of each token.
    row_starts = np.searchsorted(starts, source_starts)
    counts = np.diff(row_starts, append=len(starts))
    if not counts.all():
        raise _EmptySource(int(np.argmin(counts)))
    rows = np.repeat(np.arange(len(encoded)), counts)
    keys = _token_key(chars, starts, widths)
    found = np.minimum(
        np.searchsorted(_SORTED_KEYS, keys), len(_SORTED_KEYS) - 1
    )
    unknown = np.flatnonzero(_SORTED_KEYS[found] != keys)
    if unknown.size:
        first = unknown[0]
        token = chars[starts[first] : starts[first] + widths[first]]
        raise _UnknownToken(
            int(rows[first]), token.tobytes().decode("utf-8", "replace")
        )
    ids = _SORTED_IDS[found]
    columns = np.arange(len(rows)) - row_starts[rows]
    fits = columns < max_length
    tokens.reshape(-1)[rows[fits] * max_length + columns[fits]] = ids[fits]


def tokenize(sources, max_length=2000):
    """Token ids of sources, plain or wrapped in round brackets.

    Drops every `(` and `)`, maps the other tokens to their index in
    `VOCABULARY` (digit `d` is `d + 1`, the operators 11 to 14, `]` 15)
    and pads with 0 at the end or truncates to `max_length`.

    Args:
        sources: a list of strings of space-separated tokens; each holds
            at least one token.
        max_length: tokens per row.

    Returns:
        `int32` array of shape `(len(sources), max_length)`.

    Example:

    >>> tokenize(["[MAX 2 9 ]", "( ( [SM 5 ) 7 ) ]"], max_length=6)
    array([[12,  3, 10, 15,  0,  0],
           [14,  6,  8, 15,  0,  0]], dtype=int32)
    """
    max_length = _check_int("max_length", max_length, 1)
    if isinstance(sources, (str, bytes)):
        raise TypeError(
            f"`sources` must be a list of strings, not one "
            f"{type(sources).__name__}. Received: sources={sources[:80]!r}"
        )
    sources = list(sources)
    for index, source in enumerate(sources):
        if not isinstance(source, str):
            raise TypeError(
                f"`sources[{index}]` must be a string. Received: "
                f"sources[{index}]={source!r:.80} of type "
                f"{type(source).__name__}"
            )
    try:
        return _tokenize(sources, max_length)
    except _UnknownToken as error:
        raise ValueError(
            f"Source {error.index} has the unknown token {error.token!r}; "
            f"expected round brackets and the tokens {VOCABULARY[1:]}."
        ) from None
    except _EmptySource as error:
        raise ValueError(
            f"Source {error.index} holds no token; expected a ListOps "
            f"expression such as '[MAX 2 9 ]'. Received: "
            f"{sources[error.index]!r:.80}"
        ) from None


# A target is one digit; "9.0" is read as 9, as `float` would.
_TARGET = re.compile(r" *([0-9])(?:\.0*)? *")


def _read_tsv(path):
    """The sources, targets and line numbers of one release file.

    Blank lines are skipped (a file may end with one).
    """
    sources, targets, numbers = [], [], []
    number = 0
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as error:
                raise ValueError(
                    f"{path}, line {number}: not UTF-8 text (byte "
                    f"{raw[error.start]:#04x} at column {error.start + 1}); "
                    f"expected '<source>\\t<target 0 to 9>'."
                ) from None
            if number == 1:
                if line != HEADER:
                    raise ValueError(
                        f"{path}, line 1: expected the header {HEADER!r}. "
                        f"Received: {line[:80]!r}"
                    )
                continue
            if not line.strip(_WHITESPACE):
                continue
            fields = line.split("\t")
            target = _TARGET.fullmatch(fields[1]) if len(fields) == 2 else None
            if target is None:
                raise ValueError(
                    f"{path}, line {number}: expected '<source>\\t<target "
                    f"0 to 9>'. Received: {line.rstrip()[-80:]!r}"
                )
            sources.append(fields[0])
            targets.append(int(target.group(1)))
            numbers.append(number)
    if not sources:
        raise ValueError(
            f"{path} holds no sample{' and no header' if not number else ''}"
            f": expected the header {HEADER!r}, then one line "
            f"'<source>\\t<target 0 to 9>' per sample."
        )
    return sources, np.array(targets, np.int32), numbers


def load(data_dir, *, split="train", max_length=2000):
    """Loads ListOps from the LRA release (or `write_release()`).

    Reads `<data_dir>/basic_{split}.tsv`, drops the round brackets and
    maps the tokens as `tokenize()` does. Blank lines are skipped; a line
    that is not UTF-8, not `<source>\\t<digit>`, has an unknown token or
    no token at all, and a file of no sample raise, naming the file and
    line. The file is only read.

    Args:
        data_dir: the folder holding `basic_train.tsv`, `basic_val.tsv`
            and `basic_test.tsv`: the `lra_release/listops-1000/` folder of
            the Long Range Arena release, or the `directory` of
            `write_release()`.
        split: `"train"`, `"val"` or `"test"`.
        max_length: tokens per row, padded with 0 or truncated. LRA: 2000.

    Returns:
        `(tokens, labels)`: `int32` token ids `(N, max_length)` (see
        `VOCABULARY`) and `int32` labels `(N,)`, 0 to 9.

    Example:

    >>> tokens, labels = load("~/data/lra_release/listops-1000",
    ...                       split="val")  # doctest: +SKIP
    """
    _check_split(split)
    max_length = _check_int("max_length", max_length, 1)
    data_dir = os.path.expanduser(os.fspath(data_dir))
    path = os.path.join(data_dir, FILES[split])
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No ListOps file {path}. `load` expects <data_dir>/"
            f"{FILES['train']}, {FILES['val']} and {FILES['test']}, as in "
            f"the Long Range Arena release (pass data_dir='.../lra_release/"
            f"listops-1000'), or write them with keras_elm.data.listops."
            f"write_release({data_dir!r}, num_samples)."
        )
    sources, labels, numbers = _read_tsv(path)
    try:
        tokens = _tokenize(sources, max_length)
    except _UnknownToken as error:
        raise ValueError(
            f"{path}, line {numbers[error.index]}: unknown token "
            f"{error.token!r}; expected round brackets and the tokens "
            f"{VOCABULARY[1:]}."
        ) from None
    except _EmptySource as error:
        raise ValueError(
            f"{path}, line {numbers[error.index]}: the source holds no "
            f"token; expected '<source>\\t<target 0 to 9>' with a ListOps "
            f"expression as the source."
        ) from None
    return tokens, labels
