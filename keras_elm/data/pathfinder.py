"""Pathfinder (Linsley et al. 2018), the Long Range Arena's "Pathfinder" tasks.

Grey images of dashed curves ("snakes"); two discs mark two curve ends. The
label is 1 when both discs sit on the two ends of one curve, 0 when they sit
on the ends of two different curves. Pathfinder-32 and -64 are LRA's
"Pathfinder", Pathfinder-128 is "Path-X".

Two sources:

- `generate()` draws the images here, seeded, on every core, optionally
  cached as one `.npz`;
- `load()` reads the LRA release, `lra_release/pathfinder{32,64,128}/
  <folder>/{metadata,imgs}/` (PNG files listed by text "metadata" files),
  or a folder in that layout written by `write_release()`.

Nothing is downloaded. The generator follows the recipe of the release's
(dashes with margins, continuity-weighted turns, two target snakes seeded
close together, short distractors, `SETTINGS`) but is written afresh, so
its images are alike, not identical, to the release's. To fit long snakes
on small images it adds two things: each new dash prefers directions with
free room ahead, and a target pair at a dead end undoes its last steps
instead of starting over.
"""

import concurrent.futures
import dataclasses
import math
import os

import numpy as np

from keras_elm.checks import check_choice as _check_choice
from keras_elm.checks import check_int as _check_int
from keras_elm.data import caches
from keras_elm.data import files
from keras_elm.data import processes

IMAGE_SIZES = (32, 64, 128)
DIFFICULTIES = {
    "easy": ("curv_baseline", 6),
    "intermediate": ("curv_contour_length_9", 9),
    "hard": ("curv_contour_length_14", 14),
}
SPLITS = ("train", "val", "test")
# Part of the cache key: bump it whenever a seed would draw different images.
GENERATOR_VERSION = 1


@dataclasses.dataclass(frozen=True)
class PathfinderSettings:
    """How the images of one size are drawn (lengths in pixels).

    Attributes:
        image_size: side of the square image.
        seed_distance: distance between the starts of the two target snakes.
        marker_radius: radius of the two marker discs.
        paddle_length: length of one dash.
        paddle_thickness: thickness of one dash.
        margin: free space kept around every dash; consecutive dashes of a
            snake are `2 * margin` apart.
        continuity: how straight snakes run; a dash turns by less than
            `90 / continuity` degrees from the one before it.
        distractor_dashes: dashes of distractor snakes in all; there are
            `distractor_dashes // distractor_length` of them, each
            `contour_length // 3` dashes long.
        contrast: grey level of a dash relative to the markers (clipped to 1).
        padding: width of the border where nothing is drawn.
    """

    image_size: int
    seed_distance: float
    marker_radius: float
    paddle_length: float
    paddle_thickness: float
    margin: float
    continuity: float
    distractor_dashes: int
    contrast: float
    padding: int = 1


# The settings of LRA's Pathfinder generator runs. At 32 px the dashes are
# twice as bright as the paddle contrast (0.75) because they are thin.
SETTINGS = {
    32: PathfinderSettings(32, 7, 1.5, 2, 0.5, 1, 1.0, 20, 2 * 0.75),
    64: PathfinderSettings(64, 12, 2.5, 5, 1, 1, 1.8, 22, 0.8),
    128: PathfinderSettings(128, 20, 3, 5, 1.5, 2, 1.8, 35, 0.9),
}

_CANDIDATES = 16  # directions weighed for each new dash
_SEED_DIRECTIONS = 32  # directions weighed for the first dash of a snake
# The room ahead of a direction is probed at _LOOKAHEAD points half a dash
# pitch apart; its weight goes as room ** _ROOM_POWER, which makes snakes
# bend away from walls and other snakes before they run into them.
_LOOKAHEAD = 6
_ROOM_POWER = 8
_DASH_TRIES = 4  # draws for one dash before its snake fails
_BACKTRACKS = 16  # dead ends of the target pair before it starts over
_MAX_STEP_BACK = 3  # steps undone at a dead end: 1, 2, then 3 at most
_DISTRACTOR_SEED_TRIES = 10
_MAX_RESTARTS = 1000  # of the target pair; reached only by a bug
_FREE = -1
_BORDER = -2
_MAX_CHUNK = 64  # images per task of a worker process


def _unit(theta):
    """(row, col) unit vector of angle `theta`."""
    return np.array([math.sin(theta), math.cos(theta)])


class _Canvas:
    """The image being drawn, which dash claims each pixel, and undo.

    A dash claims the pixels within `margin` of its ink; no other dash's
    ink may fall on them, except the next dash of the same snake. `roomy`
    marks the pixels at least one more pixel away from every claim and the
    border, padded so that probes past the edge need no bounds checks.
    """

    def __init__(self, settings):
        size, pad = settings.image_size, settings.padding
        self.settings = settings
        self.owner = np.full((size, size), _BORDER, np.int32)
        self.owner[pad : size - pad, pad : size - pad] = _FREE
        self.layer = np.zeros((size, size), np.float32)
        # Coverage is 1 within half the thickness of the centre line,
        # fading to 0 over one pixel: an analytic anti-aliasing.
        half = settings.paddle_thickness / 2
        self.ink_radius = half + 0.5
        self.mask_radius = half + settings.margin
        self.room_radius = self.mask_radius + 1
        pitch = settings.paddle_length + 2 * settings.margin
        self.probe_radii = (
            settings.paddle_length
            + settings.margin
            + pitch / 2 * np.arange(_LOOKAHEAD)
        )
        self.offset = int(math.ceil(self.probe_radii[-1])) + 1
        o = self.offset
        self.roomy = np.zeros((size + 2 * o, size + 2 * o), bool)
        self.roomy[
            o + pad + 1 : o + size - pad - 1, o + pad + 1 : o + size - pad - 1
        ] = True
        self.history = []
        self.coords = np.arange(size, dtype=np.float64)
        self.lo = float(pad)
        self.hi = float(size - 1 - pad)

    @property
    def dashes(self):
        return len(self.history)

    def inside(self, point):
        lo, hi = self.lo, self.hi
        return lo <= point[0] <= hi and lo <= point[1] <= hi

    def room(self, start, directions):
        """Free room ahead of `start` along each direction, 0 (none) to 1.

        The fraction of the probes past the end of a dash that are roomy,
        counted up to the first one that is not.
        """
        ahead = np.rint(start + self.probe_radii[:, None, None] * directions)
        ahead = ahead.astype(np.intp) + self.offset
        free = self.roomy[ahead[..., 0], ahead[..., 1]]
        return np.logical_and.accumulate(free, axis=0).sum(axis=0) / _LOOKAHEAD

    def _distances(self, a, b, radius):
        """Distances of the pixels near segment a-b to it, on a local patch."""
        size = self.settings.image_size
        ar, ac, br, bc = float(a[0]), float(a[1]), float(b[0]), float(b[1])
        r0 = max(math.floor(min(ar, br) - radius), 0)
        r1 = min(math.ceil(max(ar, br) + radius) + 1, size)
        c0 = max(math.floor(min(ac, bc) - radius), 0)
        c1 = min(math.ceil(max(ac, bc) + radius) + 1, size)
        rows = self.coords[r0:r1, None] - ar
        cols = self.coords[None, c0:c1] - ac
        dr, dc = br - ar, bc - ac
        t = (rows * dr + cols * dc) * (1.0 / max(dr * dr + dc * dc, 1e-12))
        t = np.minimum(np.maximum(t, 0.0, out=t), 1.0, out=t)
        dist = np.hypot(rows - t * dr, cols - t * dc)
        return r0, r1, c0, c1, dist

    def try_dash(self, a, b, predecessor):
        """Draws dash a-b unless its ink falls on a claim but `predecessor`'s.

        Returns:
            The new dash's id, or None when it was rejected.
        """
        if not (self.inside(a) and self.inside(b)):
            return None
        r0, r1, c0, c1, dist = self._distances(a, b, self.room_radius)
        owner = self.owner[r0:r1, c0:c1]
        claimed = owner[dist < self.ink_radius]
        if np.any((claimed != _FREE) & (claimed != predecessor)):
            return None
        dash = len(self.history)
        # The first claim stays, so that a dash's start, claimed by the dash
        # before its predecessor, stays closed to the next one.
        claim = (dist <= self.mask_radius) & (owner == _FREE)
        owner[claim] = dash
        o = self.offset
        roomy = self.roomy[r0 + o : r1 + o, c0 + o : c1 + o]
        crowded = (dist <= self.room_radius) & roomy
        roomy[crowded] = False
        layer = self.layer[r0:r1, c0:c1]
        self.history.append(((r0, r1, c0, c1), claim, crowded, layer.copy()))
        ink = np.minimum(np.maximum(self.ink_radius - dist, 0.0), 1.0)
        np.maximum(
            layer, np.minimum(self.settings.contrast * ink, 1.0), out=layer
        )
        return dash

    def undo(self, dashes):
        """Removes the dashes drawn after the first `dashes`."""
        o = self.offset
        while len(self.history) > dashes:
            (r0, r1, c0, c1), claim, crowded, layer = self.history.pop()
            self.owner[r0:r1, c0:c1][claim] = _FREE
            self.roomy[r0 + o : r1 + o, c0 + o : c1 + o][crowded] = True
            self.layer[r0:r1, c0:c1] = layer

    def is_clear(self, centre, radius, allowed):
        """Whether the disc claims no pixel but for dashes in `allowed`."""
        r0, r1, c0, c1, dist = self._distances(centre, centre, radius)
        owners = self.owner[r0:r1, c0:c1][dist <= radius]
        return bool(np.all((owners == _FREE) | np.isin(owners, allowed)))

    def claim_disc(self, centre, radius, dash):
        """Claims the free pixels of a disc for `dash`, for good (no undo)."""
        r0, r1, c0, c1, dist = self._distances(centre, centre, radius + 1)
        owner = self.owner[r0:r1, c0:c1]
        owner[(dist <= radius) & (owner == _FREE)] = dash
        o = self.offset
        self.roomy[r0 + o : r1 + o, c0 + o : c1 + o][dist <= radius + 1] = False


class _Snake:
    """A dashed curve: the end points of its dashes, their directions, ids."""

    def __init__(self, start, end, theta, dash):
        self.start = start
        self.ends = [start, end]
        self.thetas = [theta]
        self.ids = [dash]

    def extend(self, end, theta, dash):
        self.ends.append(end)
        self.thetas.append(theta)
        self.ids.append(dash)

    def truncate(self, dashes):
        """Forgets the dashes of ids `dashes` and up (see `_Canvas.undo`)."""
        while self.ids[-1] >= dashes:
            self.ends.pop()
            self.thetas.pop()
            self.ids.pop()

    @property
    def end(self):
        return self.ends[-1]


def _place(canvas, rng, start, angles, weights, predecessor):
    """Draws a dash from `start` along one of `angles`, picked by weight.

    Returns:
        `(end, angle, dash)`, or None when no direction fits.
    """
    directions = np.empty((len(angles), 2))
    directions[:, 0] = np.sin(angles)
    directions[:, 1] = np.cos(angles)
    weights = weights * canvas.room(start, directions) ** _ROOM_POWER
    for _ in range(_DASH_TRIES):
        cumulative = np.cumsum(weights)
        if cumulative[-1] <= 0:
            return None
        k = min(
            int(
                np.searchsorted(
                    cumulative, rng.random() * cumulative[-1], side="right"
                )
            ),
            len(angles) - 1,
        )
        end = start + canvas.settings.paddle_length * directions[k]
        dash = canvas.try_dash(start, end, predecessor)
        if dash is not None:
            return end, angles[k], dash
        weights[k] = 0.0
    return None


def _start_snake(canvas, rng, start):
    """A snake of one dash from `start`, in any direction with room."""
    if not canvas.inside(start):
        return None
    angles = (np.arange(_SEED_DIRECTIONS) + rng.random()) * (
        2 * math.pi / _SEED_DIRECTIONS
    )
    placed = _place(
        canvas, rng, start, angles, np.ones(_SEED_DIRECTIONS), _FREE
    )
    return None if placed is None else _Snake(start, *placed)


def _grow(canvas, snake, rng):
    """Adds one dash to `snake`, following its direction; False if none fits.

    The next dash starts `2 * margin` past the end of the last one. Each
    candidate direction is weighted by how little it turns,
    `cos(turn * continuity) ** 2`, and by the room ahead of it.
    """
    s = canvas.settings
    theta = snake.thetas[-1]
    start = snake.end + 2 * s.margin * _unit(theta)
    if not canvas.inside(start):
        return False
    max_turn = math.pi / 2 / s.continuity
    turns = (
        (np.arange(_CANDIDATES) + rng.random()) / _CANDIDATES * 2 - 1
    ) * max_turn
    placed = _place(
        canvas,
        rng,
        start,
        theta + turns,
        np.cos(turns * s.continuity) ** 2,
        snake.ids[-1],
    )
    if placed is None:
        return False
    snake.extend(*placed)
    return True


def _target_pair(canvas, rng, contour_length):
    """Two snakes of `contour_length` dashes starting `seed_distance` apart.

    They grow in turns, so that neither takes the free space first. At a
    dead end the pair undoes its last steps (one more at each dead end, up
    to `_MAX_STEP_BACK`) and grows again; after `_BACKTRACKS` dead ends it
    gives up (None). Both free ends must leave room for a marker disc,
    whichever the label. The disc at the first snake's start, and its
    margin, belong to its first dash, so that only its second dash may come
    near it.
    """
    s = canvas.settings
    disc = s.marker_radius + 0.5
    reach = max(s.paddle_length, disc + 1) + s.padding
    start_a = rng.uniform(reach, s.image_size - 1 - reach, 2)
    snake_a = _start_snake(canvas, rng, start_a)
    if snake_a is None:
        return None
    canvas.claim_disc(start_a, disc + s.margin, snake_a.ids[0])
    for _ in range(_DASH_TRIES):
        start_b = start_a + s.seed_distance * _unit(
            rng.uniform(-math.pi, math.pi)
        )
        snake_b = _start_snake(canvas, rng, start_b)
        if snake_b is not None:
            break
    else:
        return None
    steps = 0
    backtracks = 0
    while True:
        if steps == contour_length - 1:
            if all(
                canvas.is_clear(snake.end, disc + 0.5, snake.ids[-2:])
                for snake in (snake_a, snake_b)
            ):
                break
        elif _grow(canvas, snake_a, rng) and _grow(canvas, snake_b, rng):
            steps += 1
            continue
        backtracks += 1
        if backtracks > _BACKTRACKS:
            return None
        steps = max(steps - min(backtracks, _MAX_STEP_BACK), 0)
        canvas.undo(2 + 2 * steps)
        snake_a.truncate(canvas.dashes)
        snake_b.truncate(canvas.dashes)
    for snake in (snake_a, snake_b):
        canvas.claim_disc(snake.end, disc + s.margin, snake.ids[-1])
    return snake_a, snake_b


def _distractor(canvas, rng, length):
    """A snake of up to `length` dashes started on a free pixel, or None."""
    for _ in range(_DISTRACTOR_SEED_TRIES):
        free = np.flatnonzero(canvas.owner == _FREE)
        if free.size == 0:
            return None
        pixel = free[rng.integers(free.size)]
        start = np.array(
            divmod(int(pixel), canvas.settings.image_size), np.float64
        ) + rng.uniform(-0.5, 0.5, 2)
        snake = _start_snake(canvas, rng, start)
        if snake is not None:
            break
    else:
        return None
    for _ in range(length - 1):
        if not _grow(canvas, snake, rng):
            break
    return snake


def _disc(size, centre, radius):
    """Anti-aliased disc of `radius` around `centre` on a `size`-px image."""
    layer = np.zeros((size, size), np.float32)
    r0, c0 = np.maximum(np.floor(centre - radius - 1), 0).astype(int)
    r1, c1 = np.minimum(np.ceil(centre + radius + 2), size).astype(int)
    rows = np.arange(r0, r1)[:, None] - centre[0]
    cols = np.arange(c0, c1)[None, :] - centre[1]
    layer[r0:r1, c0:c1] = np.clip(radius + 0.5 - np.hypot(rows, cols), 0, 1)
    return layer


def _draw(rng, settings, contour_length):
    """One image, its label and what it is made of (see `render`)."""
    label = int(rng.integers(2))
    for _ in range(_MAX_RESTARTS):
        canvas = _Canvas(settings)
        targets = _target_pair(canvas, rng, contour_length)
        if targets is not None:
            break
    else:
        raise RuntimeError(
            f"No pair of target snakes fits a {settings.image_size}-pixel "
            f"image after {_MAX_RESTARTS} tries: {settings}"
        )
    snake_a, snake_b = targets
    distractor_length = max(contour_length // 3, 1)
    distractors = []
    for _ in range(settings.distractor_dashes // distractor_length):
        snake = _distractor(canvas, rng, distractor_length)
        if snake is not None:
            distractors.append(snake)
    markers = np.stack([snake_a.start, snake_a.end if label else snake_b.end])
    size = settings.image_size
    marker_layer = np.maximum(
        _disc(size, markers[0], settings.marker_radius),
        _disc(size, markers[1], settings.marker_radius),
    )
    grey = np.clip(np.maximum(canvas.layer, marker_layer), 0.0, 1.0)
    image = np.rint(grey * 255).astype(np.uint8)
    parts = {
        "snakes": [
            np.stack(snake.ends) for snake in (snake_a, snake_b, *distractors)
        ],
        "markers": markers,
        "marker_layer": marker_layer,
        "snake_layer": canvas.layer,
    }
    return image, label, parts


def _image_rng(seed, index):
    # One stream per (seed, index): image i is the same whatever the chunks
    # and the number of workers.
    return np.random.default_rng([seed, index])


def render(
    seed, index, *, image_size=32, difficulty="hard", return_parts=False
):
    """Draws image number `index` of `generate(..., seed=seed)`.

    Args:
        seed: the seed of the data set, a non-negative integer.
        index: position of the image in the data set.
        image_size: 32, 64 or 128.
        difficulty: `"easy"`, `"intermediate"` or `"hard"` (contour length
            6, 9 or 14 dashes).
        return_parts: also return what the image is made of.

    Returns:
        `(image, label)`: a `uint8` array `(image_size, image_size)` and 0 or
        1. With `return_parts=True`, `(image, label, parts)` where `parts`
        is a dict: `"snakes"` a list of `(dashes + 1, 2)` arrays, the
        (row, col) end points of each snake's dashes in drawing order (the
        two target snakes first, each from its start), `"markers"` the
        `(2, 2)` centres of the two discs (the first target's start, then
        the end of the first target when the label is 1, of the second
        when it is 0), and the `float32` layers `"marker_layer"` and
        `"snake_layer"` in [0, 1].

    Example:

    >>> image, label = render(0, 0, image_size=32)
    >>> image.shape, image.dtype
    ((32, 32), dtype('uint8'))
    """
    _check_choice("image_size", image_size, IMAGE_SIZES)
    _check_choice("difficulty", difficulty, DIFFICULTIES)
    seed = _check_int("seed", seed, 0)
    index = _check_int("index", index, 0)
    image, label, parts = _draw(
        _image_rng(seed, index),
        SETTINGS[image_size],
        DIFFICULTIES[difficulty][1],
    )
    return (image, label, parts) if return_parts else (image, label)


def _render_chunk(seed, start, stop, image_size, contour_length):
    """Images `start` to `stop` of a data set: the task of a worker process."""
    settings = SETTINGS[image_size]
    images = np.empty((stop - start, image_size, image_size), np.uint8)
    labels = np.empty(stop - start, np.int32)
    for i, index in enumerate(range(start, stop)):
        images[i], labels[i], _ = _draw(
            _image_rng(seed, index), settings, contour_length
        )
    return start, images, labels


def _cache_path(cache_dir, num_samples, image_size, difficulty, seed):
    name = (
        f"pathfinder{image_size}_{difficulty}_n{num_samples}_seed{seed}"
        f"_v{GENERATOR_VERSION}.npz"
    )
    return os.path.join(cache_dir, name)


def _cache_settings(num_samples, image_size, difficulty, seed):
    return {
        "generator": "pathfinder",
        "generator_version": GENERATOR_VERSION,
        "num_samples": num_samples,
        "image_size": image_size,
        "difficulty": difficulty,
        "seed": seed,
    }


def _read_cache(path, settings):
    """`(images, labels)` of a sound cache, or None (`caches.load_cache`)."""
    count, size = settings["num_samples"], settings["image_size"]

    def check(data):
        if data["images"].shape != (count, size, size):
            return (
                f"`images` has the shape {data['images'].shape}, "
                f"expected {(count, size, size)}"
            )
        if data["labels"].shape != (count,):
            return (
                f"`labels` has the shape {data['labels'].shape}, "
                f"expected {(count,)}"
            )
        if not np.isin(data["labels"], (0, 1)).all():
            return "`labels` holds values other than 0 and 1"
        return None

    data = caches.load_cache(
        path,
        settings,
        {"images": (np.uint8, 3), "labels": (np.int32, 1)},
        check,
    )
    return None if data is None else (data["images"], data["labels"])


def generate(
    num_samples,
    *,
    image_size=32,
    difficulty="hard",
    seed=None,
    workers=None,
    cache_dir=None,
    progress=True,
):
    """Generates Pathfinder images and their labels.

    Image `i` is drawn from its own random stream, seeded by `(seed, i)`,
    so a seed gives the same bytes whatever `workers` is, and the first `n`
    images of a larger set equal a set of `n`. The work is split into
    chunks of images run by a process pool, forked where the platform can
    fork (elsewhere the calling script needs the usual
    `if __name__ == "__main__":` guard). The workers end with this
    process, even when it is killed.

    Args:
        num_samples: number of images.
        image_size: 32, 64 or 128 (Path-X); see `SETTINGS`.
        difficulty: `"easy"`, `"intermediate"` or `"hard"`: target
            snakes of 6, 9 or 14 dashes (`DIFFICULTIES`).
        seed: a non-negative integer, or None for a fresh random seed.
        workers: processes to draw with; None means `os.cpu_count()`, 1
            draws in this process.
        cache_dir: a folder where the result is kept as one `.npz`, named
            after every setting, and read back by the next identical call.
            The cache also holds its settings and is checked when read; one
            that is unreadable, made with other settings, or of the wrong
            arrays, shapes, dtypes or values is generated again (a line
            says which and why). The folder is checked to be writable
            before any image is drawn. Calls with `seed=None` are not
            cached.
        progress: show a `keras.utils.Progbar`.

    Returns:
        `(images, labels)`: `uint8` images of shape
        `(num_samples, image_size, image_size)`, 0 background to 255, and
        `int32` labels of shape `(num_samples,)`, 1 when the two discs
        are the ends of one curve. The labels are balanced in expectation.

    Example:

    >>> images, labels = generate(8, image_size=32, seed=0, workers=1,
    ...                           progress=False)
    >>> images.shape, labels.shape
    ((8, 32, 32), (8,))
    """
    num_samples = _check_int("num_samples", num_samples, 1)
    _check_choice("image_size", image_size, IMAGE_SIZES)
    _check_choice("difficulty", difficulty, DIFFICULTIES)
    if seed is not None:
        seed = _check_int("seed", seed, 0)
    workers = (
        (os.cpu_count() or 1)
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
        cache = _cache_path(
            cache_dir, num_samples, image_size, difficulty, seed
        )
        settings = _cache_settings(num_samples, image_size, difficulty, seed)
        cached = _read_cache(cache, settings)
        if cached is not None:
            return cached
        files.check_writable(cache_dir, what="`cache_dir`")
    if seed is None:
        seed = int(np.random.SeedSequence().entropy)
    images, labels = _generate(
        num_samples,
        image_size,
        DIFFICULTIES[difficulty][1],
        seed,
        workers,
        progress,
    )
    if cache is not None:
        caches.save_cache(cache, settings, images=images, labels=labels)
    return images, labels


def _generate(num_samples, image_size, contour_length, seed, workers, progress):
    # Several chunks per worker keep every core busy until the end and the
    # progress bar moving.
    chunk = max(1, min(_MAX_CHUNK, -(-num_samples // (4 * workers))))
    tasks = [
        (
            seed,
            start,
            min(start + chunk, num_samples),
            image_size,
            contour_length,
        )
        for start in range(0, num_samples, chunk)
    ]
    images = np.empty((num_samples, image_size, image_size), np.uint8)
    labels = np.empty(num_samples, np.int32)
    bar = None
    if progress:
        import keras

        bar = keras.utils.Progbar(num_samples, unit_name="image")
    done = 0

    def collect(result):
        nonlocal done
        start, chunk_images, chunk_labels = result
        images[start : start + len(chunk_images)] = chunk_images
        labels[start : start + len(chunk_labels)] = chunk_labels
        done += len(chunk_images)
        if bar is not None:
            bar.update(done)

    workers = min(workers, len(tasks))
    if workers == 1:
        for task in tasks:
            collect(_render_chunk(*task))
        return images, labels
    with processes.worker_pool(workers) as pool:
        futures = [pool.submit(_render_chunk, *task) for task in tasks]
        for future in concurrent.futures.as_completed(futures):
            collect(future.result())
    return images, labels


def _release_folder(data_dir, image_size, difficulty):
    return os.path.join(
        os.fspath(data_dir),
        f"pathfinder{image_size}",
        DIFFICULTIES[difficulty][0],
    )


def write_release(
    directory,
    num_samples,
    *,
    image_size=32,
    difficulty="hard",
    seed=0,
    images_per_batch=1000,
):
    """Writes generated images in the layout of the LRA release.

    `<directory>/pathfinder{S}/<folder>/imgs/<batch>/sample_<n>.png` are
    8-bit grey PNGs, and `<directory>/pathfinder{S}/<folder>/metadata/
    <batch>.npy` are text files (despite the suffix) with one line per
    image: `imgs/<batch> sample_<n>.png 0 <label>`. `load(directory, ...)`
    reads them back. Writing the same call again rewrites the same files.
    Each file is written whole or not at all, with the mode the umask
    gives; the folder is checked to be writable before any image is drawn.

    Args:
        directory: the folder to hold `pathfinder{S}/`.
        num_samples: number of images.
        image_size: 32, 64 or 128.
        difficulty: `"easy"`, `"intermediate"` or `"hard"`; names `<folder>`
            (`DIFFICULTIES`).
        seed: seed of `generate()`.
        images_per_batch: images per `imgs/<batch>/` folder and metadata
            file.

    Returns:
        The path of `<directory>/pathfinder{S}/<folder>`.

    Example:

    >>> import tempfile
    >>> directory = tempfile.mkdtemp()
    >>> root = write_release(directory, 10, image_size=32)
    >>> images, labels = load(directory, image_size=32, split="train")
    >>> images.shape
    (8, 32, 32)
    """
    from PIL import Image

    num_samples = _check_int("num_samples", num_samples, 1)
    images_per_batch = _check_int("images_per_batch", images_per_batch, 1)
    _check_choice("image_size", image_size, IMAGE_SIZES)
    _check_choice("difficulty", difficulty, DIFFICULTIES)
    if seed is not None:
        seed = _check_int("seed", seed, 0)
    root = _release_folder(
        os.path.expanduser(os.fspath(directory)), image_size, difficulty
    )
    metadata_dir = os.path.join(root, "metadata")
    batches = range(-(-num_samples // images_per_batch))
    names = {f"{batch}.npy" for batch in batches}
    if os.path.isdir(metadata_dir):
        # `load` reads every metadata file, so another set's would mix in.
        foreign = sorted(
            name
            for name in os.listdir(metadata_dir)
            if name.endswith(".npy") and name not in names
        )
        if foreign:
            raise FileExistsError(
                f"{metadata_dir} holds metadata files of another data set "
                f"({', '.join(foreign[:3])}); write to an empty `directory`."
            )
    # Found out now, not after the images are drawn.
    files.check_writable(metadata_dir, what="the release folder")
    images, labels = generate(
        num_samples,
        image_size=image_size,
        difficulty=difficulty,
        seed=seed,
        progress=False,
    )
    for batch in batches:
        image_dir = os.path.join(root, "imgs", str(batch))
        os.makedirs(image_dir, exist_ok=True)
        lines = []
        first = batch * images_per_batch
        for n, index in enumerate(
            range(first, min(first + images_per_batch, num_samples))
        ):
            with files.atomic_write(
                os.path.join(image_dir, f"sample_{n}.png")
            ) as f:
                Image.fromarray(images[index]).save(f, format="PNG")
            lines.append(f"imgs/{batch} sample_{n}.png 0 {labels[index]}\n")
        with files.atomic_write(
            os.path.join(metadata_dir, f"{batch}.npy"),
            "w",
            encoding="ascii",
            newline="\n",
        ) as f:
            f.writelines(lines)
    return root


def _metadata_order(name):
    stem = name[: -len(".npy")]
    return (0, int(stem), name) if stem.isdigit() else (1, 0, name)


def _read_metadata(path, root):
    """The (image path, label) pairs a metadata file lists, but empty files."""
    entries = []
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(
                    f"{path}, line {number}: not UTF-8 text (byte "
                    f"{raw[error.start]:#04x} at column {error.start + 1}); "
                    f"expected '<image folder> <file name> <any> <label 0 "
                    f"or 1>'."
                ) from None
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 4 or fields[3] not in ("0", "1"):
                raise ValueError(
                    f"{path}, line {number}: expected '<image folder> "
                    f"<file name> <any> <label 0 or 1> ...'. Received: "
                    f"{line.rstrip()!r}"
                )
            image = os.path.join(root, fields[0], fields[1])
            try:
                empty = os.path.getsize(image) == 0
            except FileNotFoundError as error:
                raise FileNotFoundError(
                    f"{image}, listed on line {number} of {path}, does not "
                    f"exist."
                ) from error
            if not empty:
                entries.append((image, int(fields[3])))
    return entries


# Image modes `load` reads, and how: 8-bit grey as it is; 1-bit, palette
# and RGB images converted to grey by Pillow (ITU-R 601-2 luma, exact for
# grey RGB); 16-bit grey scaled to 8 bits, v -> round(v * 255 / 65535).
_GREY_MODES = ("L",)
_CONVERTED_MODES = ("1", "P", "RGB")
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")


def _read_image(path, image_size):
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode in _SIXTEEN_BIT_MODES:
                wide = np.asarray(image).astype(np.uint32)
                pixels = ((wide * 255 + 32767) // 65535).astype(np.uint8)
            elif mode in _GREY_MODES + _CONVERTED_MODES:
                pixels = np.asarray(image.convert("L"), np.uint8)
            else:
                pixels = None
    except (OSError, ValueError, SyntaxError) as error:
        raise ValueError(f"Cannot read the image {path}: {error}") from error
    if pixels is None:
        raise ValueError(
            f"{path} has the image mode {mode!r}; expected 8-bit grey ('L'), "
            f"16-bit grey ('I;16', scaled to 8 bits), 1-bit ('1'), palette "
            f"('P') or RGB ('RGB') without transparency."
        )
    if pixels.shape != (image_size, image_size):
        raise ValueError(
            f"{path} is {pixels.shape[1]} x {pixels.shape[0]} pixels; "
            f"expected {image_size} x {image_size} for "
            f"image_size={image_size}."
        )
    return pixels


def split_indices(num_samples, seed):
    """The release's seeded 80/10/10 split: `{split: row indices}`.

    Args:
        num_samples: number of samples to split.
        seed: seed of the shuffle.

    Returns:
        A dict from `"train"`, `"val"`, `"test"` to int arrays of rows.
    """
    order = np.random.default_rng(seed).permutation(num_samples)
    n_train = int(0.8 * num_samples)
    n_val = int(0.1 * num_samples)
    return dict(zip(SPLITS, np.split(order, [n_train, n_train + n_val])))


def load(data_dir, *, image_size=32, difficulty="hard", split="train", seed=0):
    """Loads Pathfinder images from the LRA release (or `write_release()`).

    Reads every metadata file of `<data_dir>/pathfinder{S}/<folder>/
    metadata/` in order, skips the empty image files (the release has
    some), shuffles the images with `seed` and splits them 80/10/10 into
    `"train"`, `"val"` and `"test"`. Only the split's images are decoded:
    8-bit grey PNGs as they are, 16-bit grey ones scaled to 8 bits
    (`round(v * 255 / 65535)`), 1-bit, palette and RGB ones converted to
    grey; other modes (with transparency, for one) raise. A release that
    lists no image, or a split left empty, raises. The files are only
    read.

    Args:
        data_dir: the folder holding `pathfinder32/`, `pathfinder64/` and
            `pathfinder128/`: the `lra_release/` folder of the Long Range
            Arena release, or the `directory` of `write_release()`.
        image_size: 32, 64 or 128 (Path-X).
        difficulty: `"easy"` (`curv_baseline`), `"intermediate"`
            (`curv_contour_length_9`) or `"hard"`
            (`curv_contour_length_14`).
        split: `"train"`, `"val"` or `"test"`.
        seed: seed of the shuffle; the same seed gives disjoint splits.

    Returns:
        `(images, labels)`: `uint8` images `(N, image_size, image_size)` and
        `int32` labels `(N,)`.

    Example:

    >>> images, labels = load("~/data/lra_release", image_size=32,
    ...                       split="val")  # doctest: +SKIP
    """
    _check_choice("image_size", image_size, IMAGE_SIZES)
    _check_choice("difficulty", difficulty, DIFFICULTIES)
    _check_choice("split", split, SPLITS)
    seed = _check_int("seed", seed, 0)
    data_dir = os.path.expanduser(os.fspath(data_dir))
    root = _release_folder(data_dir, image_size, difficulty)
    metadata_dir = os.path.join(root, "metadata")
    if not os.path.isdir(metadata_dir):
        raise FileNotFoundError(
            f"No Pathfinder metadata folder {metadata_dir}. `load` expects "
            f"<data_dir>/pathfinder{image_size}/{DIFFICULTIES[difficulty][0]}"
            f"/metadata/*.npy and the imgs/ they list, as in the Long Range "
            f"Arena release (pass data_dir='.../lra_release', the folder of "
            f"the LRA repository's lra_release archive that holds "
            f"pathfinder32/), or write that layout with "
            f"keras_elm.data.pathfinder.write_release({data_dir!r}, "
            f"num_samples, image_size={image_size}, "
            f"difficulty={difficulty!r})."
        )
    names = sorted(
        (name for name in os.listdir(metadata_dir) if name.endswith(".npy")),
        key=_metadata_order,
    )
    entries = []
    for name in names:
        entries.extend(_read_metadata(os.path.join(metadata_dir, name), root))
    if not entries:
        raise ValueError(
            f"The Pathfinder metadata folder {metadata_dir} lists no image "
            f"(its {len(names)} metadata files *.npy are empty or list only "
            f"empty image files): expected the release's metadata, or the "
            f"folder of keras_elm.data.pathfinder.write_release()."
        )
    rows = split_indices(len(entries), seed)[split]
    if not len(rows):
        raise ValueError(
            f"The {split!r} split of the {len(entries)} images listed in "
            f"{metadata_dir} is empty (80/10/10 of {len(entries)}): the "
            f"release needs at least 10 images."
        )
    images = np.empty((len(rows), image_size, image_size), np.uint8)
    labels = np.empty(len(rows), np.int32)
    for i, row in enumerate(rows):
        path, labels[i] = entries[row]
        images[i] = _read_image(path, image_size)
    return images, labels
