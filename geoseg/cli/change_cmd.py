"""``geoseg change``."""

from __future__ import annotations

from typing import Any

import click

from geoseg.cli.options import out_folder, scheme_option


@click.command()
@click.argument("rasters", nargs=-1, required=True, type=click.Path(dir_okay=False))
@out_folder()
@click.option(
    "--rule",
    "rules",
    multiple=True,
    metavar="NAME=FROM:TO[:#RRGGBB]",
    help="A named change class (repeatable; first match wins). Classes by name or id, "
    "several with commas, '*' for any.",
)
@click.option(
    "--mmu", type=float, default=0.0, show_default=True, help="Minimum mapping unit in m²."
)
@click.option(
    "--connectivity",
    type=click.Choice(["4", "8"]),
    default="4",
    show_default=True,
    help="Pixels that make one patch for the MMU (use the one you vectorize with).",
)
@click.option(
    "--dates",
    default=None,
    help="One date per raster, comma-separated: all years (1985,2000) or all ISO dates "
    "(2021-06-03,2021-08-15); first-change rasters store years, or days since 1970-01-01.",
)
@click.option(
    "--align",
    "how",
    type=click.Choice(["first", "none"]),
    default="first",
    show_default=True,
    help="first: reproject rasters on other grids onto the first's (nearest); none: refuse them.",
)
@scheme_option("each raster's own tags")
@click.option("--no-change", default="no change", show_default=True, help="Name of class 0.")
@click.option("--block", type=int, default=1024, show_default=True, help="Block edge in pixels.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
def change(
    rasters: tuple[str, ...],
    out: str,
    rules: tuple[str, ...],
    mmu: float,
    connectivity: str,
    dates: str | None,
    how: Any,
    scheme: str | None,
    no_change: str,
    block: int,
    overwrite: bool,
) -> None:
    """Change between class rasters of two or more dates (in time order).

    For each pair of consecutive dates: a transition table (from-class ×
    to-class areas, CSV and Markdown) and, with --rule, a change raster of the
    named change classes (styled COG) with its areas. With three or more dates
    and --rule, also one raster per rule with the date each pixel first went
    FROM → TO and stayed (the date the change was detected by). Rasters on
    other grids are reprojected onto the first's grid (nearest); only the
    overlap is compared. The first → last transition table is printed; a run
    record (inputs with hashes, grids, rules, MMU, areas) is written last.

    \b
    Examples:
      geoseg change forest_2000.tif forest_2020.tif --out change/ \\
          --rule loss=forest:non-forest --rule gain=non-forest:forest --mmu 5000
      geoseg change f1985.tif f2000.tif f2020.tif --dates 1985,2000,2020 \\
          --rule loss=forest:non-forest --out change/
      geoseg change pre_water.tif post_water.tif --out flood/ \\
          --rule "permanent water=water:water" --rule flood=*:water --no-change dry
      geoseg change nlcd_2001.tif nlcd_2019.tif --scheme nlcd8 --out change/ \\
          --rule loss=forest:developed
    """
    from pathlib import Path

    from geoseg.change import as_rules, date_axis, transition_matrix, write_record, write_text
    from geoseg.errors import InputError

    if len(rasters) < 2:
        raise InputError("geoseg change needs at least two class rasters (t0 t1 …)")
    rule_list = as_rules(rules)
    date_list = [d.strip() for d in dates.split(",")] if dates else None
    axis = date_axis(date_list, len(rasters))
    labels = list(axis.labels)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    plan = _plan(folder, labels, rule_list, len(rasters))
    _check_free(plan, overwrite)
    record_path = folder / "change_run.json"
    record_path.unlink(missing_ok=True)  # a record always vouches for the files beside it
    record: dict[str, Any] = {
        "rasters": list(rasters),
        "dates": list(axis.values),
        "date_labels": labels,
        "date_unit": axis.unit,
        "periods": [],
    }
    opts = {"align": how, "block": block, "scheme": scheme}
    for k in range(len(rasters) - 1):
        period, last = _period(
            rasters, k, labels, folder, rule_list, mmu, connectivity, no_change, opts
        )
        record["periods"].append(period)
    if len(rasters) > 2:
        last = transition_matrix(rasters[0], rasters[-1], **opts)
        name = f"transitions_{labels[0]}_{labels[-1]}"
        write_text(folder / f"{name}.csv", last.to_csv(), overwrite=True)
        write_text(folder / f"{name}.md", last.to_markdown(), overwrite=True)
        record["first_change"] = _years(
            rasters, folder, rule_list, date_list, mmu, connectivity, opts
        )
    click.echo(last.to_markdown(), nl=False)
    record.update(mmu_m2=mmu, connectivity=int(connectivity), align=how)
    if scheme is not None:
        record["scheme"] = scheme
    write_record(record_path, record, overwrite=True)
    click.echo(f"outputs -> {folder}/ (record: {record_path.name})", err=True)


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "change"


def _plan(folder: Any, labels: list[str], rules: Any, n: int) -> list[Any]:
    """Every file the run will write (to refuse existing ones before any work)."""
    paths = []
    for k in range(n - 1):
        stem = f"{labels[k]}_{labels[k + 1]}"
        paths += [folder / f"transitions_{stem}.csv", folder / f"transitions_{stem}.md"]
        if rules:
            paths += [folder / f"change_{stem}.tif", folder / f"change_{stem}_areas.csv"]
    if n > 2:
        stem = f"{labels[0]}_{labels[-1]}"
        paths += [folder / f"transitions_{stem}.csv", folder / f"transitions_{stem}.md"]
        paths += [folder / f"{_slug(r.name)}_first_date.tif" for r in rules]
    return paths


def _check_free(paths: list[Any], overwrite: bool) -> None:
    from geoseg.errors import OutputError

    taken = [p for p in paths if p.exists()]
    if taken and not overwrite:
        raise OutputError(
            f"{taken[0]} exists (and {len(taken) - 1} more outputs); "
            "pass --overwrite to replace them"
        )


def _period(
    rasters: tuple[str, ...],
    k: int,
    labels: list[str],
    folder: Any,
    rules: Any,
    mmu: float,
    connectivity: str,
    no_change: str,
    opts: dict[str, Any],
) -> tuple[dict[str, Any], Any]:
    from geoseg.change import change_map, transition_matrix, write_text

    t0, t1 = rasters[k], rasters[k + 1]
    stem = f"{labels[k]}_{labels[k + 1]}"
    entry: dict[str, Any] = {"t0": t0, "t1": t1}
    if rules:
        res = change_map(
            t0,
            t1,
            out=folder / f"change_{stem}.tif",
            rules=rules,
            mmu_m2=mmu,
            connectivity=int(connectivity),
            no_change=no_change,
            overwrite=True,
            **opts,
        )
        table = res.transitions
        write_text(folder / f"change_{stem}_areas.csv", res.areas.to_csv(), overwrite=True)
        entry.update(res.record())
    else:
        table = transition_matrix(t0, t1, **opts)
    write_text(folder / f"transitions_{stem}.csv", table.to_csv(), overwrite=True)
    write_text(folder / f"transitions_{stem}.md", table.to_markdown(), overwrite=True)
    return entry, table


def _years(
    rasters: tuple[str, ...],
    folder: Any,
    rules: Any,
    dates: list[str] | None,
    mmu: float,
    connectivity: str,
    opts: dict[str, Any],
) -> list[dict[str, Any]]:
    from geoseg.change import first_change_year

    out = []
    for rule in rules:
        res = first_change_year(
            rasters,
            out=folder / f"{_slug(rule.name)}_first_date.tif",
            from_classes=rule.from_classes,
            to_classes=rule.to_classes,
            dates=dates,
            mmu_m2=mmu,
            connectivity=int(connectivity),
            overwrite=True,
            **opts,
        )
        out.append({"rule": rule.to_dict(), **res.record()})
    return out
