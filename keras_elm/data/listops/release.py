"""ListOps' files: the LRA release's TSV format, its tokens and its loader.

See `keras_elm.data.listops` for the format; every name here is also
reachable there.
"""

import os
import re

import numpy as np

from keras_elm.checks import check_choice as _check_choice
from keras_elm.checks import check_int as _check_int
from keras_elm.data import files
from keras_elm.data.listops.trees import _CHUNK
from keras_elm.data.listops.trees import _WIDEST
from keras_elm.data.listops.trees import VOCABULARY
from keras_elm.data.listops.trees import _check_settings
from keras_elm.data.listops.trees import generate

SPLITS = ("train", "val", "test")
FILES = {
    "train": "basic_train.tsv",
    "val": "basic_val.tsv",
    "test": "basic_test.tsv",
}
# The split sizes of the LRA release.
RELEASE_SIZES = {"train": 96_000, "val": 2_000, "test": 2_000}
HEADER = "Source\tTarget"


def _check_split(split):
    _check_choice("split", split, SPLITS)


def _check_sources(sources):
    for index, source in enumerate(sources):
        if not isinstance(source, str):
            raise TypeError(
                f"`sources[{index}]` must be a string. Received: "
                f"sources[{index}]={source!r:.80} of type "
                f"{type(source).__name__}"
            )


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
    _check_sources(sources)
    for index, (source, target) in enumerate(zip(sources, targets)):
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


def split_sizes(num_samples):
    """ListOps' one split rule: LRA's 96/2/2 shares, train first.

    The release's 96,000 / 2,000 / 2,000 as shares of `num_samples`: val
    and test get 2% each (rounded), train the rest; but a held-out set
    keeps at least 4 samples where the total has 10 for each (else at
    least 1), so that a small run (`--smoke`, 40 trees: 32 / 4 / 4) still
    validates on every device of up to 4 under `--distribute`. Generated
    trees, the smoke fixture and `write_release()` are all split by it,
    as consecutive slices in generation order (the trees are independent
    draws).

    Args:
        num_samples: the total, at least 3; or a dict such as
            `{"train": 100, "val": 20, "test": 20}` of some splits' sizes,
            returned checked.

    Returns:
        A dict from split name to size, in the order train, val, test.

    Example:

    >>> split_sizes(1000)
    {'train': 960, 'val': 20, 'test': 20}
    >>> split_sizes(40)
    {'train': 32, 'val': 4, 'test': 4}
    """
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
    held_out = max(1, round(total * share), min(4, total // 10))
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
    (4, 200)
    """
    sizes = split_sizes(num_samples)
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
    _check_sources(sources)
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
