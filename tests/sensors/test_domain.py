"""Input domain: real scenes of other sensors against a domain measured on the Zion scene."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from geoseg.errors import BundleError, DomainError
from geoseg.sensors.domain import (
    InputDomain,
    check_result,
    check_scene,
    pixel_size_m,
    sample_percentiles,
)
from tests.common import DATA, ZION

BANDS = ("blue", "green", "red", "nir")


def _sample(path: Path, bands: list[int], scale: float = 1.0, offset: float = 0.0) -> np.ndarray:
    """Valid pixels of a decimated read (about 64k), as predict's statistics read does."""
    with rasterio.open(path) as ds:
        f = max(1.0, (ds.height * ds.width / 65536) ** 0.5)
        shape = (len(bands), int(ds.height / f), int(ds.width / f))
        data = ds.read(bands, out_shape=shape, masked=True)
        ok = ~np.ma.getmaskarray(data).any(axis=0)
        return data.data[:, ok].astype(np.float64) * scale + offset


def _resolution(path: Path) -> float:
    with rasterio.open(path) as ds:
        lat = (ds.bounds.top + ds.bounds.bottom) / 2 if ds.crs.is_geographic else None
        res = pixel_size_m(ds.crs, ds.transform, lat)
    assert res is not None
    return res


@pytest.fixture(scope="module")
def zion_domain() -> InputDomain:
    p01, p50, p99 = sample_percentiles(_sample(ZION, [1, 2, 3, 4]))
    return InputDomain(
        BANDS,
        quantity="dn",
        dtype="uint16",
        resolution_m=(30.0, 30.0),
        p01=p01,
        p50=p50,
        p99=p99,
        sensors=("landsat8-c2l1",),
    )


# scene, bands in blue/green/red/nir order (None: the domain's bands it lacks are cut),
# expected verdict, words the first reason must contain
SCENES = [
    (ZION, [1, 2, 3, 4], "ok", ""),
    (DATA / "water" / "itaipu_landsat8_2020-05-18_b234_crop.tif", [1, 2, 3], "in", ""),
    (DATA / "water" / "naip_lakes_2020-08-31.tif", [3, 2, 1, 4], "refused", "8-bit"),
    (DATA / "water" / "olinda_landsat7_etm_6band.tif", [1, 2, 3, 4], "refused", "8-bit"),
    (DATA / "pucallpa" / "2020.tif", [4, 4, 3, 2], "refused", "8-bit"),
    (DATA / "bahamas" / "RGB.byte.tif", [3, 2, 1, 1], "refused", "8-bit"),
]


@pytest.mark.parametrize(("path", "bands", "verdict", "words"), SCENES, ids=lambda v: str(v)[-24:])
def test_real_scenes_against_the_zion_domain(
    zion_domain: InputDomain, path: Path, bands: list[int], verdict: str, words: str
) -> None:
    with rasterio.open(path) as ds:
        dtype = ds.dtypes[0]
    domain = zion_domain
    if len(bands) < len(BANDS):  # a 3-band scene against the first three bands
        d = zion_domain
        n = len(bands)
        domain = InputDomain(
            d.bands[:n], "dn", d.dtype, d.resolution_m, d.p01[:n], d.p50[:n], d.p99[:n]
        )
    check = check_scene(
        domain,
        sample=_sample(path, bands),
        resolution_m=_resolution(path),
        dtype=dtype,
        compare_values=True,
    )
    if verdict == "ok":
        assert check.ok, (check.refuse, check.warn)
    elif verdict == "in":
        assert not check.refuse, check.refuse
    else:
        assert check.refuse and words in check.refuse[0], check.refuse
        with pytest.raises(DomainError, match="far outside what bundle 'landcover'"):
            check.raise_if_refused("landcover", hint="pass --sensor")


def test_reflectance_into_a_dn_bundle_is_refused(zion_domain: InputDomain) -> None:
    # the same Zion pixels as Collection 2 TOA reflectance
    sample = _sample(ZION, [1, 2, 3, 4], scale=2.0e-5, offset=-0.1)
    check = check_scene(
        zion_domain, sample=sample, resolution_m=30.0, dtype="float32", compare_values=True
    )
    assert len(check.refuse) == 4 and "looks like reflectance" in check.refuse[0]


def test_percentile_bundles_do_not_compare_values(zion_domain: InputDomain) -> None:
    sample = _sample(DATA / "water" / "olinda_landsat7_etm_6band.tif", [1, 2, 3, 4])
    check = check_scene(
        zion_domain, sample=sample, resolution_m=28.5, dtype="uint8", compare_values=False
    )
    assert not check.refuse and check.warn == ["the scene is uint8, the training data was uint16"]


@pytest.mark.parametrize(
    ("res", "verdict"),
    [(30.0, "ok"), (20.0, "warn"), (60.0, "warn"), (5.0, "refuse"), (100.0, "refuse")],
)
def test_pixel_size(zion_domain: InputDomain, res: float, verdict: str) -> None:
    check = check_scene(zion_domain, sample=None, resolution_m=res, dtype=None, compare_values=True)
    got = "refuse" if check.refuse else "warn" if check.warn else "ok"
    assert got == verdict


def test_geographic_pixel_size_in_metres() -> None:
    res = _resolution(DATA / "pucallpa" / "2020.tif")  # EPSG:4326, ~90 m at 8.4 S
    assert 80 < res < 100


def test_domain_round_trip_and_validation(zion_domain: InputDomain) -> None:
    assert InputDomain.from_dict(zion_domain.to_dict()) == zion_domain
    bad = zion_domain.to_dict() | {"p50": [1.0, float("nan"), 2.0, 3.0]}
    with pytest.raises(BundleError, match="p50 needs 4 finite numbers"):
        InputDomain.from_dict(bad)
    with pytest.raises(BundleError, match="resolution_m"):
        InputDomain.from_dict(zion_domain.to_dict() | {"resolution_m": [30, 10]})


def test_degenerate_results() -> None:
    domain = InputDomain(("red",), class_fractions=(0.3, 0.6, 0.1), val_mean_confidence=0.8)
    names = ["water", "forest", "barren"]
    assert check_result(domain, class_pixels=[10, 500, 490], class_names=names) == []
    [one] = check_result(domain, class_pixels=[5, 0, 995], class_names=names)
    assert "barren covers 99.5%" in one
    [low] = check_result(
        domain, class_pixels=[300, 400, 300], class_names=names, mean_confidence=0.4
    )
    assert "mean confidence 0.40 is far below the bundle's 0.80" in low
    single = InputDomain(("red",), class_fractions=(0.99, 0.01))
    assert check_result(single, class_pixels=[1000, 0], class_names=names[:2]) == []
