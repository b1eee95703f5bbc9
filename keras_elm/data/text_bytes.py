"""Byte-level tokens of the Long Range Arena's text tasks (Text, Retrieval).

A text becomes its UTF-8 bytes, each shifted up by one, so that token 0
stays free for padding: tokens run from 1 (byte 0) to 256 (byte 255), and a
one-hot input has `VOCABULARY_SIZE = 257` channels. Long texts are cut at
`max_length` bytes (possibly inside a multi-byte character, as in LRA),
short ones padded with zeros at the end.
"""

import os
import tempfile

import numpy as np

VOCABULARY_SIZE = 257
PADDING = 0


def check_max_length(max_length):
    """`max_length` as an `int`, or a ValueError if it is not an integer >= 1.

    Args:
        max_length: the number of tokens per text.

    Returns:
        `max_length` as a Python `int`.

    Example:

    >>> check_max_length(4096)
    4096
    """
    if (isinstance(max_length, bool)
            or not isinstance(max_length, (int, np.integer))
            or max_length < 1):
        raise ValueError(
            f"Argument `max_length` must be an integer >= 1. Received: "
            f"max_length={max_length!r}"
        )
    return int(max_length)


def _as_bytes(text):
    if isinstance(text, (bytes, bytearray, memoryview)):
        return bytes(text)
    if isinstance(text, str):
        return text.encode("utf-8")
    raise TypeError(
        f"Each text must be `str` or `bytes`. Received: {type(text).__name__}"
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
    for row, text in zip(tokens, texts):
        values = np.frombuffer(_as_bytes(text)[:max_length], np.uint8)
        row[:values.size] = values
        row[:values.size] += 1
    return tokens


def decode(tokens):
    """The bytes that `encode` tokens stand for, padding dropped.

    Args:
        tokens: integer array `(N, L)` of tokens 0..256.

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
    return [(row[row != PADDING] - 1).astype(np.uint8).tobytes()
            for row in tokens]


def write_atomically(path, data):
    """Writes `bytes` to `path` through a temporary file in the same folder.

    A reader never sees a half-written file, and an interrupted write
    leaves no file behind.

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
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path) or ".",
                                         prefix=".", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return path
