"""ListOps' tree generator: LRA's recipe, drawn with NumPy on every core.

`generate()` (re-exported as `keras_elm.data.listops.generate`) has the
recipe; `keras_elm.data.listops.release` reads and writes the release's
files.
"""

import numpy as np

from keras_elm.checks import check_int as _check_int
from keras_elm.data import caches
from keras_elm.data import processes

OPERATORS = ("MIN", "MAX", "MED", "SM")
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


def _cache_name(num_samples, seed, min_length, max_length, max_depth, max_args):
    return (
        f"listops_n{num_samples}_seed{seed}_length{min_length}-"
        f"{max_length}_depth{max_depth}_args{max_args}"
        f"_v{GENERATOR_VERSION}.npz"
    )


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
    """`{"ids", "lengths", "targets"}` of a sound cache, or None.

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
    return data


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
            cached. Generation is resumable: each finished chunk of trees
            is saved at once in a hidden folder beside the cache
            (`caches.parts_folder`), so a call stopped half way (Ctrl-C,
            a kill) and made again with the same settings draws only the
            trees that are missing, with the same result as a call that
            was never stopped; the folder is removed once the cache is
            written.
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
    seed, workers, cache_dir = processes.generator_settings(
        seed, workers, progress, cache_dir
    )
    data = caches.cached_arrays(
        cache_dir,
        _cache_name(num_samples, seed, *settings),
        _cache_settings(num_samples, seed, *settings),
        _read_cache,
        lambda parts: _generate(
            num_samples, seed, settings, workers, progress, parts
        ),
        resume=True,
    )
    return _decode(data["ids"], data["lengths"]), data["targets"].astype(
        np.int32
    )


def _check_chunk(chunk, result):
    """What is wrong with a saved chunk `(chunk, ids, lengths, values)`."""
    _, _, index, count, min_length, max_length, _, _ = chunk
    got_index, ids, lengths, values = result
    if got_index != index:
        return f"holds chunk {got_index}, expected {index}"
    for name, array, dtype, shape in (
        ("lengths", lengths, np.int32, (count,)),
        ("values", values, np.int8, (count,)),
    ):
        if array.dtype != dtype or array.shape != shape:
            return (
                f"`{name}` is {array.dtype} of the shape {array.shape}, "
                f"expected {np.dtype(dtype)} of the shape {shape}"
            )
    if ids.dtype != np.uint8 or ids.ndim != 1:
        return f"`ids` is {ids.dtype} with {ids.ndim} dimensions"
    if int(lengths.sum(dtype=np.int64)) != ids.size or (
        lengths.min() <= min_length or lengths.max() >= max_length
    ):
        return "`lengths` do not fit the bounds or the ids"
    if (
        ids.min() < 1
        or ids.max() > _CLOSE
        or values.min() < 0
        or (values.max() > 9)
    ):
        return "`ids` or `values` holds values out of range"
    return None


def _generate(num_samples, seed, settings, workers, progress, parts):
    sizes = [
        min(_CHUNK, num_samples - start)
        for start in range(0, num_samples, _CHUNK)
    ]
    chunks = [
        (size, seed, chunk, size, *settings) for chunk, size in enumerate(sizes)
    ]
    results = [None] * len(chunks)
    for index, result in processes.generate_in_chunks(
        _draw_chunk,
        chunks,
        workers=workers,
        progress=progress,
        unit_name="tree",
        resume_dir=parts,
        check=_check_chunk,
    ):
        results[index] = result[1:]
    ids, lengths, targets = (np.concatenate(part) for part in zip(*results))
    return {"ids": ids, "lengths": lengths, "targets": targets}
