"""Many rows in one round trip: COPY on PostgreSQL, bulk_create/bulk_update elsewhere.

Plain helpers over any model; the app that owns the table decides what to write.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from django.db import connection
from django.db.models import Field, Model


def _field(model: type[Model], name: str) -> Field:
    """A concrete field by name or attname (`invoice_id`)."""
    return cast(Field, model._meta.get_field(name))


def insert_rows(model: type[Model], columns: Sequence[str], rows: list[tuple]) -> None:
    """Insert many rows given as tuples of column values; COPY on PostgreSQL."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(
            [model(**dict(zip(columns, row, strict=True))) for row in rows], batch_size=500
        )
        return
    names = ", ".join(f'"{_field(model, c).column}"' for c in columns)
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f'COPY "{model._meta.db_table}" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)


def update_rows(model: type[Model], columns: Sequence[str], rows: list[tuple]) -> None:
    """Set `columns` of many rows, each given as (pk, *values).

    On PostgreSQL the values are COPYed into a temporary table and applied with
    one UPDATE ... FROM, instead of a statement (or a CASE branch) per row.
    """
    if not rows:
        return
    if connection.vendor != "postgresql":
        objects = []
        for pk, *values in rows:
            obj = model(pk=pk)
            for name, value in zip(columns, values, strict=True):
                setattr(obj, name, value)
            objects.append(obj)
        model._default_manager.bulk_update(objects, list(columns), batch_size=500)
        return
    meta = model._meta
    fields = [_field(model, name) for name in columns]
    staging = f"{meta.db_table}_changes"
    definition = ", ".join(f'"{f.column}" {f.db_type(connection)}' for f in fields)
    names = ", ".join(f'"{f.column}"' for f in fields)
    assignments = ", ".join(f'"{f.column}" = s."{f.column}"' for f in fields)
    with connection.cursor() as cursor:
        cursor.execute(
            f'CREATE TEMPORARY TABLE IF NOT EXISTS "{staging}" (id bigint, {definition}) '
            "ON COMMIT DROP"
        )
        cursor.execute(f'DELETE FROM "{staging}"')
        with cursor.cursor.copy(f'COPY "{staging}" (id, {names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f'UPDATE "{meta.db_table}" AS t SET {assignments} FROM "{staging}" AS s '
            "WHERE t.id = s.id"
        )
