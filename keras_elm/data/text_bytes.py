"""Byte-level tokens of the Long Range Arena's text tasks (Text, Retrieval).

A text becomes its UTF-8 bytes, each shifted up by one, so that token 0
stays free for padding: tokens run from 1 (byte 0) to 256 (byte 255), and a
one-hot input has `VOCABULARY_SIZE = 257` channels. Long texts are cut at
`max_length` bytes (possibly inside a multi-byte character, as in LRA),
short ones padded with zeros at the end.
"""

import json
import os

import numpy as np

from keras_elm.checks import check_int
from keras_elm.data.files import atomic_write
from keras_elm.data.files import check_writable

VOCABULARY_SIZE = 257
PADDING = 0
# The file by which `write_fixture` knows a folder of its own making.
FIXTURE_MARKER = "keras_elm_fixture.json"


def check_max_length(max_length):
    """`max_length` as an `int` (`keras_elm.checks.check_int`, at least 1).

    Args:
        max_length: the number of tokens per text.

    Returns:
        `max_length` as a Python `int`.

    Raises:
        TypeError: `max_length` is not an integer (bools are not).
        ValueError: `max_length` is below 1.

    Example:

    >>> check_max_length(4096)
    4096
    """
    return check_int("max_length", max_length, 1)


def _as_bytes(text, index):
    if isinstance(text, (bytes, bytearray, memoryview)):
        return bytes(text)
    if isinstance(text, str):
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError(
                f"Text {index} of `texts` cannot be encoded as UTF-8 "
                f"({error.reason} at character {error.start}: "
                f"{text[error.start : error.end]!r}); pass valid text or bytes."
            ) from None
    raise TypeError(
        f"Each text must be `str` or `bytes`. Received: {type(text).__name__}"
        f" (text {index} of `texts`)"
    )


def encode(texts, max_length):
    """Byte tokens of texts: UTF-8 byte + 1, 0 = padding at the end.

    Args:
        texts: a sequence of `str` (encoded as UTF-8) or `bytes` (taken as
            they are).
        max_length: tokens per text; longer texts are truncated.

    Returns:
        `int32` array of shape `(len(texts), max_length)`.

    Example:

    >>> encode(["hi", b"\\x00"], 3)
    array([[105, 106,   0],
           [  1,   0,   0]], dtype=int32)
    """
    max_length = check_max_length(max_length)
    if isinstance(texts, (str, bytes, bytearray)):
        raise TypeError(
            "Argument `texts` must be a sequence of texts, not one text. "
            f"Received: {texts[:20]!r}"
        )
    texts = list(texts)
    tokens = np.zeros((len(texts), max_length), np.int32)
    for index, (row, text) in enumerate(zip(tokens, texts)):
        values = np.frombuffer(_as_bytes(text, index)[:max_length], np.uint8)
        row[: values.size] = values
        row[: values.size] += 1
    return tokens


def decode(tokens):
    """The bytes that `encode` tokens stand for, padding dropped.

    Args:
        tokens: integer array `(N, L)` of tokens 0..256 (`VOCABULARY_SIZE -
            1`); anything else is a `TypeError` (not integers) or a
            `ValueError` (another shape, or a token out of range), never
            wrapped into a byte.

    Returns:
        A list of `N` `bytes`; decode them with `.decode("utf-8",
        "replace")` when a truncation may have cut a character.

    Example:

    >>> decode(encode(["hi"], 4))
    [b'hi']
    """
    tokens = np.asarray(tokens)
    if tokens.ndim != 2:
        raise ValueError(
            f"Argument `tokens` must have shape (N, L). Received shape "
            f"{tokens.shape}."
        )
    if tokens.size == 0:
        return [b"" for _ in range(len(tokens))]
    if tokens.dtype.kind not in "iu":
        raise TypeError(
            f"Argument `tokens` must hold integers 0..{VOCABULARY_SIZE - 1}. "
            f"Received dtype {tokens.dtype}."
        )
    low, high = tokens.min(), tokens.max()
    if low < 0 or high > VOCABULARY_SIZE - 1:
        raise ValueError(
            f"Argument `tokens` must hold tokens 0..{VOCABULARY_SIZE - 1} "
            f"(byte + 1, 0 = padding). Received values from {low} to {high}."
        )
    return [
        (row[row != PADDING] - 1).astype(np.uint8).tobytes() for row in tokens
    ]


def write_atomically(path, data):
    """Writes `bytes` to `path` whole or not at all (`files.atomic_write`).

    The bytes go to a temporary file in the same folder, which is synced
    and renamed over `path`: a reader never sees a half-written file, an
    interrupted write leaves `path` as it was and no temporary file, and
    the file gets the mode a plain `open` would give (0666 less the umask).

    Args:
        path: the file to write; its folder must exist.
        data: the `bytes` to write.

    Returns:
        `path`.

    Example:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "a.txt")
    >>> write_atomically(path, b"hello") == path
    True
    """
    with atomic_write(path, "wb") as f:
        f.write(data)
    return path


def claim_fixture_folder(folder, data_files, writer, settings):
    """Marks `folder` as a fixture's, unless it holds data of another origin.

    The text tasks' `write_fixture` functions replace their own fixture
    (another seed's or size's, or one a killed call left half written) but
    never data they did not write: a folder whose data files are there
    without the marker file `FIXTURE_MARKER` is refused. The marker is
    written (atomically) before any data file, so a fixture interrupted
    midway is still known as one.

    Args:
        folder: the folder the marker goes into (created if needed).
        data_files: paths of the data files already there that the fixture
            would replace or mix with.
        writer: the writing function's name, recorded in the marker.
        settings: a JSON-able dict of its arguments, recorded in the marker.

    Raises:
        ValueError: `data_files` is not empty and `folder` holds no marker,
            or `folder` cannot be written.

    Example:

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> claim_fixture_folder(folder, [], "example", {"seed": 0})
    """
    marker = os.path.join(folder, FIXTURE_MARKER)
    if data_files and not os.path.isfile(marker):
        shown = ", ".join(sorted(data_files)[:3])
        raise ValueError(
            f"{folder} holds data that {writer} did not write ({shown}"
            f"{', ...' if len(data_files) > 3 else ''}; no {FIXTURE_MARKER}),"
            f" which it would replace or mix with: give an empty or new "
            f"`directory`, or delete those files first."
        )
    check_writable(folder, what="The fixture folder")
    with atomic_write(marker, "w", encoding="utf-8") as f:
        json.dump(
            {"writer": writer, **settings}, f, sort_keys=True, default=repr
        )
        f.write("\n")
