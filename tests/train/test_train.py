"""geoseg train: labels, split, preprocessing parity, determinism, resume, bundle, bad input.

Real rasters: crops of the Zion Landsat-8 scene and its NLCD labels (data/zion,
CC0), written as GeoTIFFs with rasterio; real polygons written with geopandas.
Models are tiny (ConvStack, a few hundred weights) so the whole file stays fast.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import torch
from click.testing import CliRunner
from rasterio.transform import Affine
from rasterio.windows import Window
from shapely.geometry import box

from geoseg.engine.local import LocalEngine
from geoseg.errors import CheckpointError, ConfigError, GeosegError, LabelError, TrainingDataError
from geoseg.models.bundle import ModelBundle, load_bundle
from geoseg.pipeline.predict import predict
from geoseg.schemes import load_scheme
from geoseg.train import config_from_dict, load_config, prepare_data, run_training, train
from geoseg.train.augment import cut_chip
from geoseg.train.data import ChipRef, val_input
from geoseg.train.labels import IGNORE, read_labels
from geoseg.train.loop import Prepared
from geoseg.train.losses import build_loss

ROOT = Path(__file__).resolve().parents[2]
ZION = ROOT / "data" / "zion" / "landsat8_2015-08-18_b2345.tif"
NLCD = ROOT / "data" / "zion" / "nlcd2011_8class.tif"
CROP = Window(300, 500, 160, 160)  # cols 300.., rows 500..: forest, shrub, barren, developed
BANDS = ["blue", "green", "red", "nir"]


def _write_crop(src: Path, dst: Path, window: Window, count: int | None = None) -> None:
    with rasterio.open(src) as ds:
        profile = ds.profile.copy()
        idx = list(range(1, (count or ds.count) + 1))
        data = ds.read(idx, window=window)
        descs = [ds.descriptions[i - 1] for i in idx]
        profile.update(
            width=window.width,
            height=window.height,
            count=len(idx),
            transform=ds.window_transform(window),
            tiled=False,
            compress="deflate",
        )
        profile.pop("blockxsize", None)
        profile.pop("blockysize", None)
    with rasterio.open(dst, "w", **profile) as out:
        out.write(data)
        for i, d in enumerate(descs, 1):
            if d:
                out.set_band_description(i, d)


@pytest.fixture(scope="module")
def crop(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("train_data")
    paths = {"image": d / "image.tif", "labels": d / "labels.tif", "image3": d / "image3.tif"}
    _write_crop(ZION, paths["image"], CROP)
    _write_crop(NLCD, paths["labels"], CROP)
    _write_crop(ZION, paths["image3"], CROP, count=3)
    return paths


def _cfg(crop: dict[str, Path], tmp: Path, **over: Any) -> Any:
    doc: dict[str, Any] = {
        "data": [{"image": str(crop["image"]), "labels": str(crop["labels"])}],
        "scheme": "nlcd8",
        "bands": BANDS,
        "sensor": "landsat8-c2l1",  # the crop's band ids B2..B5
        "model": {
            "architecture": "ConvStack",
            "encoder": None,
            "arch_params": {"layers": 2, "width": 8},
            "chip": 32,
            "overlap": 8,
        },
        "split": {"block": 48, "val_fraction": 0.3, "gap": 6},
        "sampling": {"chips_per_epoch": 16, "class_balanced": True},
        "augment": {"brightness": 0.05, "contrast": 0.05, "scale_jitter": 0.2},
        "loss": [{"name": "ce"}, {"name": "dice", "weight": 0.5}],
        "epochs": 2,
        "batch": 4,
        "threads": 1,
        "device": "cpu",
        "out": str(tmp / "model.bundle"),
    }
    doc.update(over)
    return config_from_dict(doc)


@pytest.fixture(scope="module")
def prepared(crop: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    return prepare_data(_cfg(crop, tmp_path_factory.mktemp("prep")))


# -- labels ------------------------------------------------------------------


def test_vector_labels_rasterized_on_the_image_grid(crop: dict[str, Path], tmp_path: Path) -> None:
    from geoseg.io.scene import open_scene

    scene = open_scene(crop["image"])
    t = scene.transform
    # squares in pixel space (col0, row0, col1, row1) -> map coords, written in EPSG:4326
    squares = {1: (10, 10, 40, 30), 4: (60, 80, 100, 120), 99: (120, 10, 150, 40)}
    geoms = []
    for c0, r0, c1, r1 in squares.values():
        x0, y0 = t * (c0, r0)
        x1, y1 = t * (c1, r1)
        geoms.append(box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
    df = gpd.GeoDataFrame(
        {"cls": list(squares), "note": ["a", "b", "c"]}, geometry=geoms, crs=scene.crs
    ).to_crs("EPSG:4326")
    path = tmp_path / "labels.gpkg"
    df.to_file(path)
    classes = load_scheme("nlcd8")
    lab = read_labels(str(path), scene, classes, field="cls")
    assert lab.shape == scene.shape
    # interiors (1 px margin for the round trip through EPSG:4326)
    assert (lab[11:29, 11:39] == 0).all()  # id 1 water -> index 0
    assert (lab[81:119, 61:99] == 3).all()  # id 4 forest -> index 3
    assert (lab[11:39, 121:149] == IGNORE).all()  # id 99 not in the scheme
    labelled = int((lab != IGNORE).sum())
    assert abs(labelled - (30 * 20 + 40 * 40)) <= 2 * (2 * 50 + 2 * 80)  # edges only
    assert (lab[140:, :] == IGNORE).all() and (lab[:, 105:118] == IGNORE).all()
    # class names work as well as ids
    df["name"] = ["water", "forest", "nonsense"]
    df.to_file(path)
    by_name = read_labels(str(path), scene, classes, field="name")
    assert np.array_equal(by_name, lab)


def test_label_raster_on_another_grid_is_reprojected_nearest(
    crop: dict[str, Path], tmp_path: Path
) -> None:
    from geoseg.io.scene import open_scene

    scene = open_scene(crop["image"])
    with rasterio.open(crop["labels"]) as ds:
        fine = ds.read(1)
        profile = ds.profile.copy()
    coarse = fine[::2, ::2]  # 60 m cells: value of each 2x2 cell's top-left pixel
    profile.update(width=80, height=80, transform=scene.transform * Affine.scale(2))
    path = tmp_path / "coarse.tif"
    with rasterio.open(path, "w", **profile) as out:
        out.write(coarse, 1)
    lab = read_labels(str(path), scene, load_scheme("nlcd8"))
    expect = np.repeat(np.repeat(coarse, 2, 0), 2, 1).astype(np.int16) - 1
    expect[(expect < 0) | (expect > 7)] = IGNORE
    assert np.array_equal(lab, expect.astype(np.uint8))


# -- loss and split ----------------------------------------------------------


@pytest.mark.parametrize("name", ["ce", "dice", "focal", "lovasz"])
def test_losses_ignore_label_255(name: str) -> None:
    from geoseg.train.config import LossConfig, LossTerm

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 8, 8, generator=g)
    target = torch.randint(0, 3, (2, 8, 8), generator=g)
    target[:, :4] = IGNORE
    fn = build_loss(LossConfig(terms=[LossTerm(name=name)]), [1.0, 2.0, 0.5])
    base = fn(logits, target)
    changed = logits.clone()
    changed[:, :, :4] = torch.randn(2, 3, 4, 8, generator=g) * 10  # only ignored pixels
    assert torch.allclose(fn(changed, target), base)
    flipped = logits.clone()
    flipped[:, :, 4:] = -flipped[:, :, 4:]  # labelled pixels do count
    assert not torch.allclose(fn(flipped, target), base)
    assert float(fn(logits, torch.full_like(target, IGNORE))) == 0.0  # nothing labelled


def test_split_keeps_training_chips_away_from_validation(prepared: Prepared) -> None:
    from scipy.ndimage import distance_transform_cdt

    img = prepared.images[0]
    gap = prepared.split["gap_px"]
    assert gap == 6 and img.val.any() and img.train_zone.any()
    # Chebyshev distance of every pixel to the nearest validation pixel
    dist = distance_transform_cdt(~img.val, metric="chessboard")
    rng = np.random.default_rng(1)
    sampler = prepared.sampler
    refs = [r for _ in range(20) for r in sampler.epoch(rng)] + sampler.grid
    assert refs
    for ref in refs:
        sl = (slice(ref.row, ref.row + ref.size), slice(ref.col, ref.col + ref.size))
        assert ref.row >= 0 and ref.col >= 0
        assert ref.row + ref.size <= img.shape[0] and ref.col + ref.size <= img.shape[1]
        assert dist[sl].min() > gap, ref
        assert (img.labels[sl] != IGNORE).any() or ref.size != sampler.read_max
    # validation windows see validation pixels only
    for k, window in prepared.windows:
        x, y = val_input(prepared.images[k], window)
        r, c, h, w = window
        outside = ~img.val[r : r + h, c : c + w]
        assert (x[:, :h, :w][:, outside] == 0).all()
        assert (y[:h, :w][outside] == IGNORE).all()
    assert prepared.split["val_labelled_px"] > 0 and prepared.split["train_labelled_px"] > 0


def test_split_by_validation_polygon(crop: dict[str, Path], tmp_path: Path) -> None:
    from scipy.ndimage import distance_transform_cdt

    from geoseg.io.scene import open_scene

    scene = open_scene(crop["image"])
    t = scene.transform
    x0, y0 = t * (100, 0)  # columns 100..159, all rows: the validation region
    x1, y1 = t * (160, 160)
    path = tmp_path / "val.gpkg"
    gpd.GeoDataFrame(geometry=[box(x0, y1, x1, y0)], crs=scene.crs).to_file(path)
    prep = prepare_data(
        _cfg(crop, tmp_path, split={"method": "polygon", "polygon": str(path), "gap": 5})
    )
    img = prep.images[0]
    assert img.val[:, 100:].all() and not img.val[:, :100].any()
    dist = distance_transform_cdt(~img.val, metric="chessboard")
    assert img.train_zone.sum() == (dist > 5).sum() and not img.train_zone[:, 95:].any()
    for ref in prep.sampler.grid + prep.sampler.epoch(np.random.default_rng(0)):
        assert ref.col + ref.size <= 95
    assert prep.split["method"] == "polygon" and prep.split["val_labelled_px"] > 0


def _second_region(crop: dict[str, Path]) -> tuple[Path, Path]:
    """Another window of the Zion scene (rows 900.., no overlap with CROP): a second region."""
    d = crop["image"].parent
    image, labels = d / "region2.tif", d / "region2_labels.tif"
    if not image.exists():
        _write_crop(ZION, image, Window(600, 900, 128, 128))
        _write_crop(NLCD, labels, Window(600, 900, 128, 128))
    return image, labels


def test_split_leave_one_region_out(crop: dict[str, Path], tmp_path: Path) -> None:
    image2, labels2 = _second_region(crop)
    data = [
        {"image": str(crop["image"]), "labels": str(crop["labels"])},
        {"image": str(image2), "labels": str(labels2)},
    ]
    prep = prepare_data(
        _cfg(crop, tmp_path, data=data, split={"method": "region", "hold_out": [2]})
    )
    one, two = prep.images
    # entry 2 is validation whole and never trained on; entry 1 is training whole
    assert two.val.all() and not two.train_zone.any()
    assert not one.val.any() and one.train_zone.all()
    assert prep.split["val_labelled_px"] == int((two.labels != IGNORE).sum()) > 0
    assert prep.split["train_labelled_px"] == int((one.labels != IGNORE).sum()) > 0
    assert prep.split["method"] == "region" and prep.split["hold_out"] == [2]
    assert (
        "region2.tif" in prep.split["description"]
        and "trained on none" in prep.split["description"]
    )
    refs = [r for _ in range(10) for r in prep.sampler.epoch(np.random.default_rng(0))]
    assert refs and all(ref.image == 0 for ref in refs + prep.sampler.grid)
    assert {k for k, _ in prep.windows} == {1}


@pytest.mark.parametrize(
    ("split", "message"),
    [
        ({"method": "region"}, "split.method region needs split.hold_out"),
        ({"method": "region", "hold_out": [3]}, "split.hold_out [3] must name data entries 1..2"),
        (
            {"method": "region", "hold_out": [1, 2]},
            "must leave at least one data entry to train on",
        ),
    ],
)
def test_split_leave_one_region_out_bad_config(
    crop: dict[str, Path], tmp_path: Path, split: dict[str, Any], message: str
) -> None:
    image2, labels2 = _second_region(crop)
    data = [
        {"image": str(crop["image"]), "labels": str(crop["labels"])},
        {"image": str(image2), "labels": str(labels2)},
    ]
    with pytest.raises(ConfigError, match=re.escape(message)):
        _cfg(crop, tmp_path, data=data, split=split).check()


def test_cli_hold_out_writes_the_fold_beside_its_bundle(
    crop: dict[str, Path], tmp_path: Path
) -> None:
    """--hold-out K trains the fold; with --out, its record and card go beside that bundle,
    never over the config's own card (a shipped card must not be overwritten by a fold)."""
    from geoseg.cli.main import cli

    image2, labels2 = _second_region(crop)
    card = tmp_path / "shipped.md"
    card.write_text("the shipped card\n")
    cfg = tmp_path / "two.yaml"
    cfg.write_text(
        f"data:\n  - {{image: {crop['image']}, labels: {crop['labels']}}}\n"
        f"  - {{image: {image2}, labels: {labels2}}}\n"
        "scheme: nlcd8\nbands: [blue, green, red, nir]\nsensor: landsat8-c2l1\n"
        "model: {architecture: Pointwise, encoder: null, chip: 32, overlap: 4}\n"
        "sampling: {mode: grid, chips_per_epoch: 8}\nbatch: 4\nepochs: 1\ndevice: cpu\n"
        f"out: {tmp_path / 'shipped.bundle'}\ncard: {card}\n"
    )
    runner = CliRunner()
    fold = tmp_path / "folds" / "fold2.bundle"
    res = runner.invoke(cli, ["train", str(cfg), "--hold-out", "2", "--out", str(fold)])
    assert res.exit_code == 0, res.output
    assert fold.exists() and not (tmp_path / "shipped.bundle").exists()
    assert card.read_text() == "the shipped card\n"
    assert (tmp_path / "folds" / "fold2.md").exists()
    record = json.loads((tmp_path / "folds" / "fold2.bundle.train" / "record.json").read_text())
    assert record["split"]["method"] == "region" and record["split"]["hold_out"] == [2]
    assert record["validation"]["pixels"] == record["split"]["val_labelled_px"]
    bad = runner.invoke(cli, ["train", str(cfg), "--hold-out", "two"])
    assert bad.exit_code == 2 and "--hold-out 'two': give data entry numbers" in bad.output


# -- preprocessing parity with inference -------------------------------------


class _Recorder:
    logits = True

    def __init__(self, inner: Any) -> None:
        self.inner, self.device, self.n_classes = inner, inner.device, inner.n_classes
        self.chips: list[np.ndarray] = []
        self.lock = threading.Lock()

    def predict(self, chips: np.ndarray) -> np.ndarray:
        with self.lock:
            self.chips.extend(c.copy() for c in chips)
        out: np.ndarray = self.inner.predict(chips)
        return out


class _RecordingEngine(LocalEngine):
    def prepare(self, bundle: ModelBundle, device: str, *args: Any, **kwargs: Any) -> None:
        super().prepare(bundle, device, *args, **kwargs)
        self.recorder = _Recorder(self._predictor)
        self._predictor = self.recorder  # type: ignore[assignment]


@pytest.mark.parametrize("spec", [None, {"type": "percentile", "low": 2, "high": 98}])
def test_training_chip_equals_what_the_predictor_receives(
    prepared: Prepared, crop: dict[str, Path], tmp_path: Path, spec: dict[str, Any] | None
) -> None:
    if spec is not None:  # per-scene percentiles: measured by the same function both sides
        prepared = prepare_data(_cfg(crop, tmp_path, normalization=spec))
    bundle = ModelBundle.create(
        name="parity",
        architecture="Pointwise",
        bands=BANDS,
        classes=prepared.classes,
        normalization=prepared.normalization,
        chip=32,
        overlap=0,
    )
    engine = _RecordingEngine(threads=1)
    predict(
        str(crop["image"]),
        bundle,
        tmp_path,
        engine=engine,
        vector=False,
        batch_size=1,
        sensor="landsat8-c2l1",
    )
    seen = engine.recorder.chips
    starts = range(0, 160, 32)
    img = prepared.images[0]
    train_chips = {
        (r, c): cut_chip(img, ChipRef(0, r, c, 32), 32)[0] for r in starts for c in starts
    }
    assert len(seen) == len(train_chips) == 25
    for chip in seen:
        hits = [rc for rc, x in train_chips.items() if np.array_equal(x, chip)]
        assert len(hits) == 1


# -- the loop ----------------------------------------------------------------


def _weights(state: dict[str, torch.Tensor]) -> list[np.ndarray]:
    return [state[k].numpy() for k in sorted(state)]


UNET = {
    "architecture": "Unet",
    "encoder": "resnet18",
    "arch_params": {"encoder_depth": 3, "decoder_channels": [16, 8, 8]},
    "chip": 32,
    "overlap": 8,
}


@pytest.mark.parametrize("model", [None, UNET], ids=["convstack", "unet"])
def test_two_runs_give_identical_weights(
    crop: dict[str, Path], tmp_path: Path, model: dict[str, Any] | None
) -> None:
    over: dict[str, Any] = {"model": model} if model else {}
    a = train(_cfg(crop, tmp_path / "a", epochs=1, **over), progress=False)
    b = train(_cfg(crop, tmp_path / "b", epochs=1, **over), progress=False)
    for x, y in zip(_weights(a.model.state_dict()), _weights(b.model.state_dict()), strict=True):
        assert np.array_equal(x, y)
    assert a.history[0]["train_loss"] == b.history[0]["train_loss"]
    c = train(_cfg(crop, tmp_path / "c", epochs=1, seed=1, **over), progress=False)
    assert not all(
        np.array_equal(x, y)
        for x, y in zip(_weights(a.model.state_dict()), _weights(c.model.state_dict()), strict=True)
    )


@pytest.mark.parametrize("model", [None, UNET], ids=["convstack", "unet"])
def test_resume_after_interruption_equals_an_uninterrupted_run(
    crop: dict[str, Path], tmp_path: Path, model: dict[str, Any] | None
) -> None:
    over: dict[str, Any] = {"model": model} if model else {}
    full = train(_cfg(crop, tmp_path / "full", epochs=3, **over), progress=False)
    cfg = _cfg(crop, tmp_path / "cut", epochs=3, **over)
    first = train(cfg, max_epochs_this_run=1, progress=False)
    assert len(first.history) == 1 and not first.extra["finished"]

    def interrupt(epoch: int, entry: dict[str, Any]) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # dies right after epoch 2's checkpoint
        train(cfg, resume=True, on_epoch=interrupt, progress=False)
    rest = train(cfg, resume=True, progress=False)
    assert rest.resumed_from == 2 and rest.extra["finished"]
    assert [h["train_loss"] for h in rest.history] == [h["train_loss"] for h in full.history]
    assert [h["val"]["miou"] for h in rest.history] == [h["val"]["miou"] for h in full.history]
    for x, y in zip(_weights(full.best_state), _weights(rest.best_state), strict=True):
        assert np.array_equal(x, y)
    assert rest.best_epoch == full.best_epoch
    # a checkpoint belongs to its configuration
    changed = _cfg(crop, tmp_path / "cut", epochs=3, optimizer={"lr": 0.5}, **over)
    with pytest.raises(CheckpointError, match="different training configuration"):
        train(changed, resume=True, progress=False)
    # the checkpoint is safetensors with JSON metadata, not a pickle
    raw = (cfg.record_dir / "checkpoint.safetensors").read_bytes()
    assert b"geoseg-train" in raw[:200_000] and not raw.startswith(b"\x80")


def test_bundle_predicts_end_to_end_with_record_and_curves(
    crop: dict[str, Path], tmp_path: Path
) -> None:
    model = {
        "architecture": "ConvStack",
        "encoder": None,
        "arch_params": {"layers": 2, "width": 8},
        "chip": 32,
        "overlap": 8,
        "infer_chip": 48,  # trained on 32-px chips, predicts on 48-px ones
    }
    cfg = _cfg(crop, tmp_path, card=str(tmp_path / "card.md"), early_stopping=1, model=model)
    res, paths = run_training(cfg, progress=False)
    assert set(paths) == {"bundle", "record", "curves", "card"}
    bundle = load_bundle(paths["bundle"])
    assert (bundle.chip, bundle.overlap) == (48, 8)
    prov = bundle.meta["provenance"]
    assert prov["training_data"][0]["image_sha256"] and prov["training_data"][0]["labels_sha256"]
    assert prov["split"]["method"] == "blocks" and prov["epochs"]["best"] == res.best_epoch
    assert prov["validation"]["miou"] == res.best_val["miou"]
    assert "Validation (spatially held out)" in bundle.card_text()
    assert paths["card"].read_text().startswith("# model")
    record = json.loads(paths["record"].read_text())
    assert len(record["history"]) == len(res.history) >= 1
    assert paths["curves"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    [out] = predict(str(crop["image"]), paths["bundle"], tmp_path / "pred", vector=False)
    with rasterio.open(out.outputs["classes"]) as ds:
        cls = ds.read(1)
    assert cls.shape == (160, 160)
    assert set(np.unique(cls)) <= {c.id for c in load_scheme("nlcd8")} | {255}


# -- bad input and config ----------------------------------------------------


def test_labels_that_do_not_overlap_the_image(crop: dict[str, Path], tmp_path: Path) -> None:
    with rasterio.open(crop["labels"]) as ds:
        profile, data = ds.profile.copy(), ds.read()
    profile["transform"] = profile["transform"] * Affine.translation(100_000, 0)
    far = tmp_path / "far.tif"
    with rasterio.open(far, "w", **profile) as out:
        out.write(data)
    cfg = _cfg(crop, tmp_path, data=[{"image": str(crop["image"]), "labels": str(far)}])
    with pytest.raises(LabelError, match="do not overlap image .*image.tif"):
        prepare_data(cfg)


def test_polygons_without_the_class_attribute(crop: dict[str, Path], tmp_path: Path) -> None:
    from geoseg.io.scene import open_scene

    scene = open_scene(crop["image"])
    geom = box(*rasterio.transform.array_bounds(160, 160, scene.transform)[::1])
    path = tmp_path / "poly.geojson"
    gpd.GeoDataFrame({"landcover": [4], "id": [1]}, geometry=[geom], crs=scene.crs).to_file(path)
    data = [{"image": str(crop["image"]), "labels": str(path), "label_field": "class"}]
    with pytest.raises(LabelError, match=r"no attribute 'class'.*available: landcover, id"):
        prepare_data(_cfg(crop, tmp_path, data=data))


def test_images_with_different_band_counts(crop: dict[str, Path], tmp_path: Path) -> None:
    data = [
        {"image": str(crop["image"]), "labels": str(crop["labels"])},
        {"image": str(crop["image3"]), "labels": str(crop["labels"])},
    ]
    with pytest.raises(TrainingDataError, match="image3.tif has no nir band .*give its data entry"):
        prepare_data(_cfg(crop, tmp_path, data=data))


def test_empty_training_set_after_filtering(crop: dict[str, Path], tmp_path: Path) -> None:
    with rasterio.open(crop["labels"]) as ds:
        profile = ds.profile.copy()
    bad = tmp_path / "fifty.tif"
    with rasterio.open(bad, "w", **profile) as out:
        out.write(np.full((1, 160, 160), 50, np.uint8))  # no id of nlcd8
    cfg = _cfg(crop, tmp_path, data=[{"image": str(crop["image"]), "labels": str(bad)}])
    with pytest.raises(TrainingDataError, match="no labelled pixel is left.*fifty.tif"):
        prepare_data(cfg)
    # labels exist, but no training chip fits once validation and its gap are taken out
    big = _cfg(crop, tmp_path, model={"architecture": "Pointwise", "chip": 150, "overlap": 0})
    with pytest.raises(TrainingDataError, match="training set is empty after the split"):
        prepare_data(big)


def test_config_errors_name_file_line_and_key(tmp_path: Path, crop: dict[str, Path]) -> None:
    path = tmp_path / "train.yaml"
    path.write_text(
        f"data:\n  - image: {crop['image']}\n    labels: {crop['labels']}\n"
        "scheme: nlcd8\nbands: [blue, green, red, nir]\noptimizer:\n  lr: 0.01\n  lrate: 1\n"
    )
    unknown = r"train.yaml line 8: unknown key 'lrate' in optimizer; known keys: name, lr"
    with pytest.raises(ConfigError, match=unknown):
        load_config(path)
    path.write_text("scheme: nlcd8\nbands: [a]\ndata: []\nepochs: many\n")
    with pytest.raises(ConfigError, match=r"line 4: epochs must be int, got 'many'"):
        load_config(path)
    path.write_text("scheme: nlcd8\nbands: [a]\n")
    with pytest.raises(ConfigError, match="missing required key.*data"):
        load_config(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    path.write_text(
        "data:\n  - {image: a.tif, labels: b.tif}\nscheme: nlcd8\nbands: [x]\n"
        "sampling: {mode: spiral}\n"
    )
    with pytest.raises(ConfigError, match="line 5: sampling.mode must be 'random' or 'grid'"):
        load_config(path)
    with pytest.raises(ConfigError, match="model.chip 100 must be a multiple of 32 for Unet"):
        _cfg(crop, tmp_path, model={"architecture": "Unet", "chip": 100, "arch_params": {}})
    bad_infer = {"architecture": "Unet", "chip": 64, "infer_chip": 100, "arch_params": {}}
    with pytest.raises(ConfigError, match="model.infer_chip 100 must be a multiple of 32"):
        _cfg(crop, tmp_path, model=bad_infer)


def test_workflow_configs_load() -> None:
    names = sorted(p.name for p in (ROOT / "workflows").glob("train-*.yaml"))
    assert names == [
        "train-cloud.yaml",
        "train-forest-water.yaml",
        "train-forest.yaml",
        "train-landcover-wc5.yaml",
        "train-landcover.yaml",
        "train-water-swir.yaml",
        "train-water.yaml",
    ]
    for name in names:
        cfg = load_config(ROOT / "workflows" / name)
        for item in cfg.data:
            assert cfg.path(item.image).exists() and cfg.path(item.labels).exists()


def test_cli_flags_and_bad_input(crop: dict[str, Path], tmp_path: Path) -> None:
    from geoseg.cli.main import cli

    runner = CliRunner()
    args = [
        "train",
        "--image",
        str(crop["image"]),
        "--labels",
        str(crop["labels"]),
        "--scheme",
        "nlcd8",
        "--bands",
        "blue,green,red,nir",
        "--image-bands",
        "1,2,3,4",
        "--out",
        str(tmp_path / "cli.bundle"),
        "--epochs",
        "1",
        "--chip",
        "32",
        "--device",
        "cpu",
    ]
    cfg = tmp_path / "small.yaml"
    cfg.write_text(
        "model: {architecture: Pointwise, encoder: null, chip: 32, overlap: 4}\n"
        "split: {block: 48, gap: 4}\nsampling: {mode: grid, chips_per_epoch: 8}\nbatch: 4\n"
        "loss: [{name: focal}, {name: lovasz, weight: 0.5}]\n"
    )
    res = runner.invoke(cli, [*args[:1], str(cfg), *args[1:]])
    assert res.exit_code == 0, res.output
    assert "wrote bundle" in res.output and (tmp_path / "cli.bundle").exists()
    bad = runner.invoke(cli, ["train", "--image", str(crop["image"]), "--scheme", "nlcd8"])
    assert bad.exit_code == 2 and "give one --labels per --image" in bad.output
    assert isinstance(bad.exception, SystemExit) and not isinstance(bad.exception, GeosegError)


def test_shipped_forest_bundle_records_its_training() -> None:
    bundle = load_bundle("forest")
    prov = bundle.meta["provenance"]
    assert bundle.bands == ("green", "red", "nir")
    assert [c.name for c in bundle.classes] == ["non-forest", "forest"]
    assert prov["split"]["method"] == "blocks" and prov["split"]["val_labelled_px"] > 0
    assert prov["validation"]["miou"] > 0.5  # the card's number, measured at training time
    assert "## Known failure modes" in bundle.card_text()
    assert (ROOT / "docs" / "models" / "forest.md").read_text() == bundle.meta["card"]


def _recorded(config: dict[str, Any], recorded: dict[str, Any]) -> dict[str, Any]:
    """The config as a bundle recorded it: no base_dir, and fields added since then left out.

    A field added later is off by default (None or 0), so the bundle trained without it.
    """
    out: dict[str, Any] = {}
    for key, value in config.items():
        added_later = key not in recorded and (value is None or value == 0)
        if key == "base_dir" or added_later:
            continue
        if isinstance(value, dict):
            value = _recorded(value, recorded.get(key, {}))
        elif isinstance(value, list) and all(isinstance(v, dict) for v in value):
            had = recorded.get(key, [])
            value = [_recorded(v, had[i] if i < len(had) else {}) for i, v in enumerate(value)]
        out[key] = value
    return out


@pytest.mark.parametrize(
    ("name", "config"),
    [
        ("landcover-nlcd8", "train-landcover"),
        ("forest", "train-forest"),
        ("forest-water", "train-forest-water"),
        ("landcover-wc5", "train-landcover-wc5"),
        ("water", "train-water"),
        ("water-swir", "train-water-swir"),
        ("cloud", "train-cloud"),
    ],
)
def test_each_shipped_bundle_was_trained_by_its_workflow_config(name: str, config: str) -> None:
    bundle = load_bundle(name)
    prov = bundle.meta["provenance"]
    cfg = json.loads(json.dumps(load_config(ROOT / "workflows" / f"{config}.yaml").to_dict()))
    assert _recorded(cfg, prov["config"]) == {
        k: v for k, v in prov["config"].items() if k != "base_dir"
    }
    assert cfg["out"] == f"../geoseg/bundles/{name}.bundle"
    # held out in space, never by random pixels, and measured there
    assert prov["split"]["method"] in ("blocks", "polygon")
    assert prov["split"]["val_labelled_px"] > 0 and prov["split"]["gap_px"] > 0
    assert 0 < prov["validation"]["miou"] <= 1
    card = (ROOT / "docs" / "models" / f"{name}.md").read_text()
    assert card == bundle.meta["card"] and "## Known failure modes" in card
    # every card states the input domain the guard checks and its throughput (issue 15)
    assert "- Input domain (checked before every prediction" in card
    assert re.search(r"## Throughput\n\n[0-9.]+ Mpx/s end to end", card)


# -- units: reflectance ------------------------------------------------------


def test_reflectance_training_reads_each_image_through_its_preset(
    crop: dict[str, Path], tmp_path: Path
) -> None:
    from geoseg.train.domain import training_domain

    cfg = _cfg(crop, tmp_path, units="reflectance")
    prep = prepare_data(cfg)
    [img] = prep.images
    with rasterio.open(crop["image"]) as ds:
        dn = ds.read(1).astype(np.float64)
    valid = img.valid
    # Landsat-8 Collection 1/2 Level-1: DN * 2e-5 - 0.1, as predict will convert a scene
    assert np.allclose(img.raw[0][valid], dn[valid] * 2e-5 - 0.1, atol=1e-6)
    assert img.sensor == "landsat8-c2l1"
    assert all(0 < m < 0.5 for m in prep.normalization["mean"])  # reflectance, not DN
    domain = training_domain(prep.images, prep.counts, cfg)
    assert domain.quantity == "toa" and domain.dtype is None
    assert domain.sensors == ("landsat8-c2l1",)
    assert domain.p50 is not None and all(0 < v < 1 for v in domain.p50)


def test_reflectance_training_needs_a_known_sensor(crop: dict[str, Path], tmp_path: Path) -> None:
    data = [{"image": str(crop["image"]), "labels": str(crop["labels"]), "bands": [1, 2, 3, 4]}]
    cfg = _cfg(crop, tmp_path, units="reflectance", sensor=None, data=data)
    with pytest.raises(TrainingDataError, match="units: reflectance needs the sensor of"):
        prepare_data(cfg)
    cfg = _cfg(crop, tmp_path, sensor=None)  # B2..B5 without a sensor: which is which?
    with pytest.raises(TrainingDataError, match="does not say which band is which: the model"):
        prepare_data(cfg)
    with pytest.raises(ConfigError, match="units must be 'raw' or 'reflectance'"):
        _cfg(crop, tmp_path, units="dn")
