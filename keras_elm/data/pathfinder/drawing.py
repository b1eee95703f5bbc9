"""Pathfinder's images: the snakes, the discs, and `render()` of one image.

`keras_elm.data.pathfinder` describes the recipe; `generator` draws whole
data sets with it, `release` reads and writes the release's files.
"""

import dataclasses
import math

import numpy as np

from keras_elm.checks import check_choice as _check_choice
from keras_elm.checks import check_int as _check_int

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
