"""Inserting a batch of rows as one array per column (PostgreSQL `unnest`).

One statement with one parameter set per batch, instead of executemany's pages
of multi-row VALUES whose per-row parameter handling costs more than the
database's own work (bench/ledger.py: 48k lines/s that way, 68k this way).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, bindparam, cast, func, select
from sqlalchemy.dialects.postgresql import ARRAY, Insert, insert


def rows_from_arrays(
    table: Table, names: Sequence[str], constants: Mapping[str, ColumnElement[Any]] | None = None
) -> Select[Any]:
    """SELECT the columns `names` from unnest(:name::type[], ...), plus per-batch constants."""
    arrays = [cast(bindparam(name), ARRAY(table.c[name].type)) for name in names]
    rows = func.unnest(*arrays).table_valued(*names).render_derived()
    return select(*(rows.c[name] for name in names), *(constants or {}).values())


def insert_from_arrays(
    table: Table, names: Sequence[str], constants: Mapping[str, ColumnElement[Any]] | None = None
) -> Insert:
    """INSERT INTO table (names..., constants...) SELECT ... FROM unnest(...): bind one list per column.

    PostgreSQL's INSERT, so callers can add ON CONFLICT and RETURNING.
    """
    return insert(table).from_select([*names, *(constants or {})], rows_from_arrays(table, names, constants))
