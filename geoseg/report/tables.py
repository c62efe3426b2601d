"""Tables for reports: any of the forms ``Report.add_table`` takes, as columns and rows.

Split from :mod:`geoseg.report.builder` so the builder holds only the page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from geoseg.errors import InputError


def table_parts(
    columns: Sequence[str] | Any, rows: Sequence[Sequence[Any]] | None
) -> tuple[list[str], list[Sequence[Any]], str | None]:
    """Column names, rows and a default note from any of the table forms ``add_table`` takes."""
    if rows is not None:
        if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
            raise InputError("add_table: columns must be a sequence of column names")
        cols = [str(c) for c in columns]
        body: list[Sequence[Any]] = [tuple(r) for r in rows]
        bad = [r for r in body if len(r) != len(cols)]
        if bad:
            raise InputError(
                f"add_table: a row has {len(bad[0])} cells but there are {len(cols)} columns"
            )
        return cols, body, None
    obj: Any = columns
    note = obj.note() if callable(getattr(obj, "note", None)) else None
    if hasattr(obj, "rows") and hasattr(obj, "columns") and not hasattr(obj, "iloc"):
        return list(obj.columns), [_cells(r) for r in obj.rows], note  # AreaTable and alike
    if callable(getattr(obj, "to_rows", None)):
        items = list(obj.to_rows())
        cols = list(
            getattr(obj, "columns", None)
            or (items[0].keys() if items and isinstance(items[0], Mapping) else [])
        )
        return _from_items(cols, items, note)
    if hasattr(obj, "itertuples") and hasattr(obj, "columns"):  # pandas DataFrame
        return [str(c) for c in obj.columns], list(obj.itertuples(index=False, name=None)), note
    if isinstance(obj, Sequence) and obj and all(isinstance(i, Mapping) for i in obj):
        return _from_items(list(obj[0].keys()), list(obj), note)
    raise InputError(
        f"add_table cannot read a {type(obj).__name__}; pass column names and rows, an "
        "AreaTable, an object with to_rows(), a DataFrame or a list of mappings"
    )


def _cells(row: Any) -> Sequence[Any]:
    if callable(getattr(row, "values", None)):
        return tuple(row.values())
    return tuple(row)


def _from_items(
    cols: list[str], items: list[Any], note: str | None
) -> tuple[list[str], list[Sequence[Any]], str | None]:
    if not cols:
        raise InputError("add_table: the table has no column names; give them with columns=")
    body: list[Sequence[Any]] = [
        tuple(i.get(c) for c in cols) if isinstance(i, Mapping) else tuple(i) for i in items
    ]
    return [str(c) for c in cols], body, note
