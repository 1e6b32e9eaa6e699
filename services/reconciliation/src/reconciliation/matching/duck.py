"""The few DuckDB calls the matcher and the generator make, in one place.

DuckDB 2's DB-API ``execute()`` streams: a statement's result must be run to its end before
the connection takes the next one, so statements go through :func:`run`, and queries whose
rows we read go through ``sql()`` (:func:`scalar`, :func:`arrow`).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
from paykit.errors import invariant


def connect(memory_limit_mb: int, threads: int, temp_directory: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory database bounded to memory_limit_mb that spills to temp_directory."""
    temp_directory.mkdir(parents=True, exist_ok=True)
    config: dict[str, str | bool | int | float | list[str]] = {
        "memory_limit": f"{memory_limit_mb}MB",
        "temp_directory": str(temp_directory),
        # Row order of the inputs means nothing here; not preserving it saves memory and time.
        "preserve_insertion_order": False,
    }
    if threads:
        config["threads"] = threads
    con = duckdb.connect(config=config)
    run(con, "SET TimeZone = 'UTC'")
    return con


def run(con: duckdb.DuckDBPyConnection, statement: str) -> None:
    con.execute(statement)
    con.complete()


def scalar(con: duckdb.DuckDBPyConnection, query: str) -> object:
    rows = con.sql(query).fetchall()
    invariant(len(rows) == 1, f"{query!r} must return one row, got {len(rows)}")
    return rows[0][0]


def arrow(con: duckdb.DuckDBPyConnection, query: str) -> pa.Table:
    return con.sql(query).to_arrow_table()


def quote(path: Path | str) -> str:
    """A path as an SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"
