"""NeuronIO cannot be downloaded by keras_elm: `download()` says how to get it.

The release (about 115 GB) is two Kaggle datasets of `selfishgene`, which
need a Kaggle login: `KAGGLE_DATASETS`. `download()` touches no network; it
raises a `FileNotFoundError` naming them, the layout `load()` reads, and
the offline stand-in, `keras_elm.data.neuronio.simulate`.
"""

import os

from keras_elm.checks import check_bool
from keras_elm.checks import check_folder
from keras_elm.data import download as _download
from keras_elm.data.neuronio.files import KAGGLE_URLS

# `<owner>/<dataset>` on Kaggle: the training (train/ and valid/) and the
# test simulations.
KAGGLE_DATASETS = tuple(url.split("/datasets/", 1)[1] for url in KAGGLE_URLS)
# Bytes of the release, approximate, for the plan.
DOWNLOAD_SIZE = 115_000_000_000


def download(data_dir=None, *, mirror=None, progress=True):
    """Raises: NeuronIO is on Kaggle, behind a login. The message says how
    to get it.

    The signature is that of every data module's `download()`, so that the
    examples' `--download` can call it; nothing is fetched.

    Args:
        data_dir: the folder the files should go into; None:
            `<keras home>/datasets/keras_elm/neuronio`.
        mirror: ignored (there is no public URL to mirror).
        progress: ignored.

    Raises:
        FileNotFoundError: always, naming the two Kaggle datasets
            (`KAGGLE_DATASETS`), the layout under `data_dir`, the size
            (about 115 GB) and `keras_elm.data.neuronio.simulate`, the
            offline stand-in.

    Example:

    >>> try:
    ...     download("~/data/neuronio")
    ... except FileNotFoundError as error:
    ...     print("selfishgene/" in str(error))
    True
    """
    check_folder("data_dir", data_dir)
    check_bool("progress", progress)
    if mirror is not None:
        _download.source_url(KAGGLE_URLS[0], mirror)  # checks it
    if data_dir:
        data_dir = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
    else:
        data_dir = _download.default_data_dir("neuronio")
    train, test = KAGGLE_DATASETS
    raise FileNotFoundError(
        f"NeuronIO cannot be downloaded by keras_elm: it is on Kaggle, "
        f"behind a login, about 115 GB. Get the two datasets {train} and "
        f"{test} ({KAGGLE_URLS[0]}, {KAGGLE_URLS[1]}; with a Kaggle API "
        f"token: `kaggle datasets download -d {train}` and the same for "
        f"the test data), then put the .p files in "
        f"{os.path.join(data_dir, 'train')}, "
        f"{os.path.join(data_dir, 'valid')} and "
        f"{os.path.join(data_dir, 'test')} (or all in {data_dir}) and pass "
        f"that folder as `data_dir` (--data-dir). Offline, "
        f"`keras_elm.data.neuronio.simulate(directory)` writes a small "
        f"stand-in in the same format (what the examples use without "
        f"--data-dir)."
    )
