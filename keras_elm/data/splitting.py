"""What the datasets' `splits()` share: their keywords' checks, and the
path of the datasets that cannot be generated (real files or a smoke
fixture in their format)."""

from keras_elm.checks import check_bool  # noqa: F401  (re-exported)
from keras_elm.checks import check_folder  # noqa: F401  (re-exported)
from keras_elm.checks import check_int
from keras_elm.data import files

SPLITS = ("train", "val", "test")


def from_files(
    load,
    data_dir,
    *,
    smoke,
    cache_dir,
    write_fixture,
    missing,
    num_samples,
    seed,
    settings,
):
    """Each split of real files through `load`, or of a smoke fixture.

    For the datasets that cannot be generated (CIFAR-10, IMDB, AAN).

    Args:
        load: `(data_dir, *, split) -> (x, y)` (a loader with its other
            arguments bound, `functools.partial`).
        data_dir: the folder of the files, or None.
        smoke: without `data_dir`, write a fixture in the real format
            (`files.made_once`) and read that.
        cache_dir: the folder of the fixture (`files.made_once`).
        write_fixture: `(folder) -> path or None`, writing the fixture.
        missing: the message of the `FileNotFoundError` raised when there
            is neither `data_dir` nor `smoke`.
        num_samples: the fixture's size, part of its folder's name.
        seed: the fixture's seed, part of its folder's name.
        settings: the other values the fixture depends on, in the order of
            its folder's name.

    Returns:
        `{"train": (x, y), "val": ..., "test": ...}`.

    Raises:
        FileNotFoundError: no `data_dir` and no `smoke` (`missing`), or a
            file of `data_dir` is missing (the loader's message).

    Example:

    ```python
    from keras_elm.data import splitting

    try:
        splitting.from_files(
            print, None, smoke=False, cache_dir=None, write_fixture=print,
            missing="give data_dir", num_samples=4, seed=0, settings={},
        )
    except FileNotFoundError as error:
        assert str(error) == "give data_dir"
    ```
    """
    data_dir = check_folder("data_dir", data_dir)
    cache_dir = check_folder("cache_dir", cache_dir)
    smoke = check_bool("smoke", smoke)
    seed = check_int("seed", seed, 0)
    if smoke and not data_dir:
        num_samples = check_int("num_samples", num_samples, 1)
        data_dir = files.made_once(
            cache_dir,
            write_fixture,
            num_samples=num_samples,
            seed=seed,
            **settings,
        )
    if not data_dir:
        raise FileNotFoundError(missing)
    return {split: load(data_dir, split=split) for split in SPLITS}
