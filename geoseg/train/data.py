"""Training data: images read and normalized as inference does, a spatial split, chips.

Preprocessing is the inference code, not a copy of it: each image is opened
with :func:`geoseg.io.scene.open_scene`, read with :meth:`Scene.read` (``raw=True``,
as the engine reads a block) and turned into model input with
:meth:`Normalizer.prepare` of the normalizer built from the very spec stored in
the bundle (per-scene percentiles measured with the same function). ``prepare``
is element-wise, so normalizing the whole image once equals normalizing each
chip; ``tests/train/test_train.py`` checks a training chip against what the
predictor receives for the same window.

The split is spatial, never random pixels: validation is a seeded draw of
square blocks (or the pixels inside validation polygons); training chips lie
entirely at least ``gap`` pixels away from every validation pixel, and
validation windows see validation pixels only (the rest is masked as nodata),
so no chip straddles both.

Length: the module (~430 lines) is that one job, from a scene to a chip; the split
and the sampler share :class:`TrainingImage` and its masks, and keeping them
together keeps the one invariant above (no chip straddles train and validation)
in one file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from geoseg.errors import (
    TrainingDataError as TrainingDataError,  # re-exported: defined in errors since 0.2
)
from geoseg.grid.windows import PixelWindow
from geoseg.io.normalize import (
    Normalizer,
    build_normalizer,
    scene_percentiles,
    validate_normalization,
)
from geoseg.io.scene import Scene, open_scene
from geoseg.schemes import ClassInfo
from geoseg.train.config import DataItem, TrainConfig
from geoseg.train.labels import IGNORE, rasterize_mask, read_labels, sha256_file

PAD_MULTIPLE = 32
"""Validation windows are padded to a multiple of this (encoders downsample up to 32x)."""


@dataclass
class TrainingImage:
    """One image in memory: raw pixels, validity, labels and its split."""

    scene: Scene
    item: DataItem
    raw: NDArray[Any]
    valid: NDArray[np.bool_]
    labels: NDArray[np.uint8]
    val: NDArray[np.bool_] = field(default_factory=lambda: np.zeros((0, 0), bool))
    train_zone: NDArray[np.bool_] = field(default_factory=lambda: np.zeros((0, 0), bool))
    x: NDArray[np.float32] = field(default_factory=lambda: np.zeros((0, 0, 0), np.float32))
    normalizer: Normalizer | None = None
    stats: list[tuple[float, float]] | None = None
    sensor: str | None = None
    """The preset whose scale and offset made :attr:`raw` reflectance (``units: reflectance``)."""

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)``."""
        return self.scene.shape


def open_training_scene(item: DataItem, cfg: TrainConfig) -> Scene:
    """Open an image with the bands the model takes, as ``geoseg predict`` would pick them.

    The data entry's ``bands``, else the file's band roles (band names, color
    interpretation, or the band ids of the entry's or config's sensor), as predict
    finds them (:func:`geoseg.sensors.bands.choose_bands`); never a silent file order.

    Raises
    ------
    TrainingDataError
        The file does not say which band is which.
    """
    from geoseg.errors import SceneError
    from geoseg.sensors.bands import FileBands, choose_bands

    path = str(cfg.path(item.image))
    if item.bands is not None:
        return open_scene(path, bands=item.bands)
    try:
        choice = choose_bands(
            FileBands.read(path),
            cfg.bands,
            sensor=item.sensor or cfg.sensor,
            bundle_name="the training config",
        )
    except SceneError as err:
        what = str(err).split("; pass ", 1)[0]
        what = what.replace("bundle 'the training config' takes", "the model takes")
        raise TrainingDataError(
            f"{what}; give its data entry 'bands: [...]' (1-based, in the model's band "
            "order; --image-bands on the command line) or 'sensor: NAME' (geoseg sensors)"
        ) from err
    if choice.bands is None:  # the model's inputs are not band roles: the file's bands
        return open_scene(path)
    return open_scene(path, bands=list(choice.bands))


def load_images(cfg: TrainConfig, classes: Sequence[ClassInfo]) -> list[TrainingImage]:
    """Open, read and label every training image (no split, no normalization yet).

    Raises
    ------
    TrainingDataError
        Images with different band counts, or a band count that differs from ``bands``.
    LabelError
        Labels that do not overlap their image, or a missing class attribute.
    """
    scenes = [open_training_scene(item, cfg) for item in cfg.data]
    first = scenes[0]
    for s in scenes[1:]:
        if len(s.bands) != len(first.bands):
            raise TrainingDataError(
                f"{s.path} has {len(s.bands)} bands but {first.path} has {len(first.bands)}; "
                "every image of one training set needs the same bands — select them with "
                "'bands' in its data entry"
            )
    if len(first.bands) != len(cfg.bands):
        raise TrainingDataError(
            f"{first.path} gives {len(first.bands)} bands ({', '.join(first.band_names)}) but "
            f"the model takes {len(cfg.bands)} ({', '.join(cfg.bands)}); select them with "
            "'bands' in the data entry (--image-bands)"
        )
    out = []
    for scene, item in zip(scenes, cfg.data, strict=True):
        raw, valid = scene.read(PixelWindow(0, 0, *scene.shape), raw=True)
        labels = read_labels(
            str(cfg.path(item.labels)), scene, classes, field=item.label_field, valid=valid
        )
        sensor = None
        if cfg.units == "reflectance":
            raw, sensor = to_reflectance(raw, scene, item, cfg)
        out.append(
            TrainingImage(
                scene=scene, item=item, raw=raw, valid=valid, labels=labels, sensor=sensor
            )
        )
    if not any((img.labels != IGNORE).any() for img in out):
        raise TrainingDataError(
            "no labelled pixel is left after filtering ("
            + ", ".join(str(cfg.path(i.labels)) for i in cfg.data)
            + f"): every label is nodata, outside scheme '{cfg.scheme}' "
            f"(ids {', '.join(str(c.id) for c in classes)}) or on invalid image pixels; "
            "check the scheme and the label values"
        )
    return out


def to_reflectance(
    raw: NDArray[Any], scene: Scene, item: DataItem, cfg: TrainConfig
) -> tuple[NDArray[np.float32], str]:
    """``raw`` as reflectance through the image's sensor preset, and the preset's name.

    The preset is the data entry's ``sensor``, else the config's, else the one the
    file's name or tags name; the offset is the product's own where it states one
    (Sentinel-2 baseline 04.00+), as ``geoseg predict`` reads it.

    Raises
    ------
    TrainingDataError
        No preset is known for the image.
    """
    import rasterio

    from geoseg.sensors.presets import detect_preset, get_preset, preset_offset

    with rasterio.open(scene.path) as ds:
        tags = {**ds.tags(), **ds.tags(1)}
    name = item.sensor or cfg.sensor
    preset = get_preset(name) if name else detect_preset(scene.path, tags)
    if preset is None:
        raise TrainingDataError(
            f"units: reflectance needs the sensor of {scene.path}; add 'sensor: NAME' to its "
            "data entry (geoseg sensors lists the names)"
        )
    offset = preset_offset(preset, tags)
    return (raw.astype(np.float32) * np.float32(preset.scale) + np.float32(offset)), preset.name


# -- split -------------------------------------------------------------------


def block_val_mask(
    shape: tuple[int, int], labelled: NDArray[np.bool_], *, block: int, fraction: float, seed: int
) -> NDArray[np.bool_]:
    """Validation pixels: a seeded draw of ``block``-sized squares among labelled ones.

    At least one block goes to validation and at least one stays for training.
    """
    rows, cols = shape
    nbr, nbc = -(-rows // block), -(-cols // block)
    candidates = [
        (i, j)
        for i in range(nbr)
        for j in range(nbc)
        if labelled[i * block : (i + 1) * block, j * block : (j + 1) * block].any()
    ]
    if len(candidates) < 2:
        raise TrainingDataError(
            f"only {len(candidates)} split block(s) of {block} px hold labels; a spatial "
            "split needs at least two — lower split.block or add labelled images"
        )
    rng = np.random.default_rng(seed)
    n_val = min(len(candidates) - 1, max(1, round(fraction * len(candidates))))
    chosen = rng.permutation(len(candidates))[:n_val]
    val = np.zeros(shape, dtype=bool)
    for k in chosen:
        i, j = candidates[int(k)]
        val[i * block : (i + 1) * block, j * block : (j + 1) * block] = True
    return val


def train_zone(val: NDArray[np.bool_], gap: int) -> NDArray[np.bool_]:
    """Pixels farther than ``gap`` (Chebyshev distance) from every validation pixel."""
    from scipy.ndimage import maximum_filter

    if gap == 0:
        return ~val
    near: NDArray[np.bool_] = maximum_filter(val.view(np.uint8), size=2 * gap + 1) > 0
    return ~near


def split_images(images: list[TrainingImage], cfg: TrainConfig) -> dict[str, Any]:
    """Assign validation pixels and training zones in place; return the split's description."""
    sc = cfg.split
    gap = sc.gap if sc.gap is not None else cfg.model.chip // 2
    seed = sc.seed if sc.seed is not None else cfg.seed
    held = set(sc.hold_out or [])
    for k, img in enumerate(images):
        labelled = img.labels != IGNORE
        if sc.method == "region":  # a whole entry is validation, the others train
            img.val = np.full(img.shape, k + 1 in held)
            img.train_zone = ~img.val
            continue
        if sc.method == "polygon":
            img.val = rasterize_mask(str(cfg.path(str(sc.polygon))), img.scene)
        else:
            img.val = block_val_mask(
                img.shape, labelled, block=sc.block, fraction=sc.val_fraction, seed=seed + k
            )
        img.train_zone = train_zone(img.val, gap)
    n_val = sum(int((img.val & (img.labels != IGNORE)).sum()) for img in images)
    n_train = sum(int((img.train_zone & (img.labels != IGNORE)).sum()) for img in images)
    if n_val == 0:
        raise TrainingDataError(
            "the validation region holds no labelled pixel; "
            + (
                f"check that {sc.polygon} covers labelled areas"
                if sc.method == "polygon"
                else f"data entries {sorted(held)} hold no label"
                if sc.method == "region"
                else "raise split.val_fraction or lower split.block"
            )
        )
    return {
        "method": sc.method,
        "block": sc.block if sc.method == "blocks" else None,
        "val_fraction": sc.val_fraction if sc.method == "blocks" else None,
        "polygon": sc.polygon if sc.method == "polygon" else None,
        **({"hold_out": sorted(held)} if sc.method == "region" else {}),
        "seed": seed,
        "gap_px": gap if sc.method != "region" else None,
        "train_labelled_px": n_train,
        "val_labelled_px": n_val,
        "description": (
            "by region (leave out): validation = every labelled pixel of data entry "
            + ", ".join(f"{k} ({Path(cfg.data[k - 1].image).name})" for k in sorted(held))
            + ", trained on none of them"
            if sc.method == "region"
            else f"spatial, {sc.method}: "
            + (
                f"{sc.block}-px blocks drawn for validation (fraction {sc.val_fraction}, "
                f"seed {seed})"
                if sc.method == "blocks"
                else f"validation = pixels inside {sc.polygon}"
            )
            + f"; training chips stay >= {gap} px from every validation pixel"
        ),
    }


# -- normalization -----------------------------------------------------------


def resolve_normalization(images: list[TrainingImage], cfg: TrainConfig) -> dict[str, Any]:
    """The bundle's normalization spec; ``fixed`` without mean/std gets them measured.

    Mean and standard deviation are measured over the valid pixels of the
    training zones only, so validation pixels never inform the model.
    """
    spec = dict(cfg.normalization)
    if spec.get("type") == "fixed" and ("mean" not in spec or "std" not in spec):
        n = len(cfg.bands)
        s1, s2, cnt = np.zeros(n), np.zeros(n), 0
        for img in images:
            keep = img.valid & img.train_zone
            px = img.raw[:, keep].astype(np.float64)
            s1 += px.sum(axis=1)
            s2 += (px**2).sum(axis=1)
            cnt += px.shape[1]
        if cnt == 0:
            raise TrainingDataError("no valid training pixel to measure normalization from")
        mean = s1 / cnt
        std = np.sqrt(np.maximum(s2 / cnt - mean**2, 1e-12))
        spec["mean"] = [round(float(v), 4) for v in mean]
        spec["std"] = [round(float(max(v, 1e-6)), 4) for v in std]
    return validate_normalization(spec, len(cfg.bands))


def normalize_images(images: list[TrainingImage], spec: dict[str, Any]) -> None:
    """Build each image's normalizer as inference would and prepare its pixels once."""
    for img in images:
        stats = None
        if spec["type"] == "percentile":
            stats = scene_percentiles(img.scene, spec["low"], spec["high"])
        img.stats = stats
        img.normalizer = build_normalizer(spec, stats=stats)
        img.x = img.normalizer.prepare(img.raw[None], img.valid[None])[0]


# -- chips -------------------------------------------------------------------


def window_sums(mask: NDArray[np.bool_], size: int) -> NDArray[np.int64]:
    """Count of true pixels in every ``size x size`` window, indexed by origin."""
    ii = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), dtype=np.int64)
    ii[1:, 1:] = mask.astype(np.int64).cumsum(0).cumsum(1)
    out: NDArray[np.int64] = (
        ii[size:, size:] - ii[:-size, size:] - ii[size:, :-size] + ii[:-size, :-size]
    )
    return out


def allowed_origins(img: TrainingImage, size: int) -> NDArray[np.bool_]:
    """Origins whose ``size`` window lies in the training zone and holds a label."""
    rows, cols = img.shape
    if size > rows or size > cols:
        return np.zeros((0, 0), dtype=bool)
    inside = window_sums(img.train_zone, size) == size * size
    labelled = window_sums(img.train_zone & (img.labels != IGNORE), size) > 0
    ok: NDArray[np.bool_] = inside & labelled
    return ok


@dataclass(frozen=True, slots=True)
class ChipRef:
    """A training chip: image index, origin and read size (resized to the chip)."""

    image: int
    row: int
    col: int
    size: int


class ChipSampler:
    """Draws training chips (random or grid, optionally class-balanced) with one RNG."""

    def __init__(self, images: list[TrainingImage], cfg: TrainConfig, n_classes: int) -> None:
        self.images = images
        self.chip = cfg.model.chip
        self.read_max = int(np.ceil(self.chip * (1 + cfg.augment.scale_jitter)))
        self.jitter = cfg.augment.scale_jitter
        self.mode = cfg.sampling.mode
        self.per_epoch = cfg.sampling.chips_per_epoch
        self.balanced = cfg.sampling.class_balanced
        self.allowed = [allowed_origins(img, self.read_max) for img in images]
        self.flat = [np.flatnonzero(a) for a in self.allowed]
        total = sum(f.size for f in self.flat)
        if total == 0:
            raise TrainingDataError(
                f"no {self.read_max}-px training chip fits in the labelled training region of "
                f"{', '.join(img.scene.path for img in images)}; the training set is empty after "
                "the split — lower model.chip, split.gap or split.val_fraction, or add labels"
            )
        self.grid = self._grid()
        # per class: flat pixel indexes (per image) of labelled training pixels
        self.pools: list[list[NDArray[np.intp]]] = [
            [np.flatnonzero((img.labels == c) & img.train_zone) for img in images]
            for c in range(n_classes)
        ]
        self.present = [c for c in range(n_classes) if sum(p.size for p in self.pools[c])]

    def _grid(self) -> list[ChipRef]:
        out = []
        for k, a in enumerate(self.allowed):
            for r in range(0, a.shape[0], self.chip):
                for c in range(0, a.shape[1], self.chip):
                    if a[r, c]:
                        out.append(ChipRef(k, r, c, self.read_max))
        return out

    def _uniform(self, rng: np.random.Generator) -> tuple[int, int, int]:
        sizes = np.array([f.size for f in self.flat], dtype=np.float64)
        k = int(rng.choice(len(sizes), p=sizes / sizes.sum()))
        idx = int(self.flat[k][rng.integers(self.flat[k].size)])
        r, c = divmod(idx, self.allowed[k].shape[1])
        return k, r, c

    def _balanced(self, rng: np.random.Generator) -> tuple[int, int, int]:
        cls = self.present[int(rng.integers(len(self.present)))]
        pools = self.pools[cls]
        sizes = np.array([p.size for p in pools], dtype=np.float64)
        for _ in range(20):
            k = int(rng.choice(len(pools), p=sizes / sizes.sum()))
            pr, pc = divmod(int(pools[k][rng.integers(pools[k].size)]), self.shape(k)[1])
            r = pr - int(rng.integers(self.read_max))
            c = pc - int(rng.integers(self.read_max))
            a = self.allowed[k]
            if 0 <= r < a.shape[0] and 0 <= c < a.shape[1] and a[r, c]:
                return k, r, c
        return self._uniform(rng)

    def shape(self, k: int) -> tuple[int, int]:
        """``(rows, cols)`` of image ``k``."""
        return self.images[k].shape

    def epoch(self, rng: np.random.Generator) -> list[ChipRef]:
        """The chips of one epoch, in training order."""
        if self.mode == "grid":
            order = rng.permutation(len(self.grid))[: self.per_epoch]
            return [self._jittered(self.grid[int(i)], rng) for i in order]
        out = []
        for _ in range(self.per_epoch):
            use_bal = self.balanced and rng.random() < 0.5
            k, r, c = self._balanced(rng) if use_bal else self._uniform(rng)
            out.append(self._jittered(ChipRef(k, r, c, self.read_max), rng))
        return out

    def _jittered(self, ref: ChipRef, rng: np.random.Generator) -> ChipRef:
        """Shrink the read window for scale jitter, keeping it inside the allowed one."""
        if not self.jitter:
            return ChipRef(ref.image, ref.row, ref.col, self.chip)
        size = int(round(self.chip * rng.uniform(1 - self.jitter, 1 + self.jitter)))
        size = max(8, min(size, self.read_max))
        dr = int(rng.integers(self.read_max - size + 1))
        dc = int(rng.integers(self.read_max - size + 1))
        return ChipRef(ref.image, ref.row + dr, ref.col + dc, size)


def val_windows(img: TrainingImage, block: int) -> list[tuple[int, int, int, int]]:
    """Block windows ``(row_off, col_off, rows, cols)`` holding labelled validation pixels."""
    rows, cols = img.shape
    scored = img.val & (img.labels != IGNORE)
    out = []
    for r in range(0, rows, block):
        for c in range(0, cols, block):
            h, w = min(block, rows - r), min(block, cols - c)
            if scored[r : r + h, c : c + w].any():
                out.append((r, c, h, w))
    return out


def val_input(
    img: TrainingImage, window: tuple[int, int, int, int]
) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
    """Model input and truth of a validation window, padded to :data:`PAD_MULTIPLE`.

    Pixels outside the validation region are masked exactly as nodata is
    (``prepare``'s neutral 0) and their truth is :data:`IGNORE`, so a
    validation window never sees a training pixel.
    """
    r, c, h, w = window
    sl = (slice(r, r + h), slice(c, c + w))
    inval = img.val[sl]
    ph, pw = -h % PAD_MULTIPLE, -w % PAD_MULTIPLE
    x = np.zeros((img.x.shape[0], h + ph, w + pw), dtype=np.float32)
    x[:, :h, :w] = np.where(inval[None], img.x[(slice(None), *sl)], np.float32(0.0))
    y = np.full((h + ph, w + pw), IGNORE, dtype=np.uint8)
    y[:h, :w] = np.where(inval, img.labels[sl], np.uint8(IGNORE))
    return x, y


def class_counts(images: list[TrainingImage], n_classes: int) -> NDArray[np.int64]:
    """Labelled pixels per class in the training zones."""
    counts = np.zeros(n_classes, dtype=np.int64)
    for img in images:
        lab = img.labels[img.train_zone]
        counts += np.bincount(lab[lab != IGNORE], minlength=n_classes)[:n_classes]
    return counts


def data_record(images: list[TrainingImage], cfg: TrainConfig) -> list[dict[str, Any]]:
    """Paths and SHA-256 of every training file, for the record and the bundle."""
    out = []
    for img in images:
        labels = str(cfg.path(img.item.labels))
        out.append(
            {
                "image": img.item.image,
                "image_sha256": sha256_file(img.scene.path),
                "labels": img.item.labels,
                "labels_sha256": sha256_file(labels),
                "label_field": img.item.label_field,
                "bands": list(img.scene.bands),
                "band_names": list(img.scene.band_names),
                "shape": list(img.shape),
                "crs": str(img.scene.crs) if img.scene.crs else None,
                "percentiles": img.stats,
            }
        )
    return out
