"""The sensor-difference augmentations: 8-bit quantization, haze, coarser pixels, band dropout."""

from __future__ import annotations

import re

import numpy as np
import pytest

from geoseg.errors import ConfigError
from geoseg.train import config_from_dict
from geoseg.train.augment import HAZE_LEVEL, augment, haze_weights
from geoseg.train.config import AugmentConfig

BANDS = ["blue", "green", "red", "nir", "swir1", "swir2"]


def _chip(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (len(BANDS), 64, 64)).astype(np.float32)
    y = rng.integers(0, 3, (64, 64)).astype(np.uint8)
    v = np.ones((64, 64), bool)
    v[:8] = False  # a nodata strip
    x[:, ~v] = 0
    return x, y, v


def _run(aug: AugmentConfig, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y, v = _chip()
    out, labels = augment(x, y, v, aug, np.random.default_rng(seed), haze_weights(BANDS))
    return out, labels, v


def _plain(**kw: float) -> AugmentConfig:
    return AugmentConfig(flips=False, rot90=False, **kw)


def test_off_is_a_no_op_and_draws_nothing() -> None:
    x, y, v = _chip()
    rng = np.random.default_rng(3)
    out, labels = augment(x, y, v, _plain(), rng)
    assert np.array_equal(out, x) and np.array_equal(labels, y)
    assert rng.random() == np.random.default_rng(3).random()  # the stream is untouched


def test_quantize_leaves_at_most_256_levels_per_band() -> None:
    out, labels, v = _run(_plain(quantize=1.0))
    x, y, _ = _chip()
    for band in out:
        assert len(np.unique(band[v])) <= 256
    assert len(np.unique(x[0][v])) > 256  # it had many more
    assert np.abs(out - x)[:, v].max() < (x.max() - x.min()) / 255  # within half a step*2
    assert np.array_equal(labels, y) and (out[:, ~v] == 0).all()


def test_haze_veils_blue_more_than_swir() -> None:
    out, _, v = _run(_plain(haze=0.5))
    x, _, _ = _chip()
    toward = [
        np.mean(np.abs(out[b][v] - HAZE_LEVEL)) / np.mean(np.abs(x[b][v] - HAZE_LEVEL))
        for b in range(len(BANDS))
    ]
    assert toward[0] < toward[3] < toward[5] < 1.0  # blue pulled most, SWIR2 least
    assert (out[:, ~v] == 0).all()


def test_resolution_coarsens_pixels_not_labels() -> None:
    aug = _plain(resolution=4.0)
    for seed in range(20):  # applied to half the chips: find a draw that applies it
        out, labels, v = _run(aug, seed)
        x, y, _ = _chip()
        if not np.array_equal(out, x):
            break
    else:
        pytest.fail("resolution never applied in 20 draws")
    rough = lambda a: float(np.mean(np.abs(np.diff(a[:, 16:, :], axis=2))))  # noqa: E731
    assert rough(out) < 0.6 * rough(x)
    assert np.array_equal(labels, y)


def test_band_dropout_blanks_one_band() -> None:
    out, _, v = _run(_plain(band_dropout=1.0))
    blank = [b for b in range(len(BANDS)) if not out[b].any()]
    assert len(blank) == 1
    x, _, _ = _chip()
    keep = [b for b in range(len(BANDS)) if b not in blank]
    assert np.array_equal(out[keep], x[keep])


def test_ranges_are_checked() -> None:
    base = {"data": [{"image": "a.tif", "labels": "b.tif"}], "scheme": "water", "bands": ["red"]}
    for key, value, words in [
        ("haze", 1.5, "augment.haze must be in [0, 1]"),
        ("resolution", 0.5, "augment.resolution must be 0 (off) or in [1, 8]"),
        ("quantize", -0.1, "augment.quantize must be in [0, 1]"),
        ("band_dropout", 2, "augment.band_dropout must be in [0, 1]"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(words)):
            config_from_dict({**base, "augment": {key: value}})
