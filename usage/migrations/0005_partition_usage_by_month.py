"""Usage records partitioned by month on PostgreSQL (see usage.partitions).

The table is rebuilt as `PARTITION BY RANGE (start_time)`: a partition for
every month that has records, for the current month and the two after it,
and a DEFAULT partition; the records are copied over with their ids. Its
primary key becomes (id, start_time) (a partitioned table's unique indexes
must contain the partition key); the uniqueness of (account, client id) moves
to the table of keys `usage_usagerecord_key`, kept by triggers. Every other
index and foreign key is rebuilt with its name.

Django's model state does not change (the model still declares the unique
constraint, which PostgreSQL now enforces through the keys): on SQLite this
migration does nothing.
"""

from __future__ import annotations

import datetime as dt

from django.db import migrations

PARENT = "usage_usagerecord"
OLD = "usage_usagerecord_unpartitioned"
KEYS = "usage_usagerecord_key"
UNIQUE = "usage_client_id_unique_per_account"
SEQUENCE = "usage_usagerecord_id_seq"

TRIGGERS_SQL = f"""
CREATE FUNCTION usage_keys_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Ingestion has reserved these keys itself (INSERT ... ON CONFLICT DO NOTHING).
    IF coalesce(current_setting('usage.keys_reserved', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    INSERT INTO {KEYS} (account_id, client_id)
    SELECT account_id, client_id FROM new_records ORDER BY account_id, client_id;
    RETURN NULL;
END $$;

CREATE FUNCTION usage_keys_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM {KEYS} k USING old_records o
    WHERE k.account_id = o.account_id AND k.client_id = o.client_id;
    RETURN NULL;
END $$;

CREATE FUNCTION usage_keys_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE {KEYS};
    RETURN NULL;
END $$;

CREATE FUNCTION usage_keys_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a usage record''s account_id and client_id cannot change'
        USING ERRCODE = 'integrity_constraint_violation';
END $$;

CREATE TRIGGER usage_keys_insert AFTER INSERT ON {PARENT}
    REFERENCING NEW TABLE AS new_records FOR EACH STATEMENT EXECUTE FUNCTION usage_keys_insert();
CREATE TRIGGER usage_keys_delete AFTER DELETE ON {PARENT}
    REFERENCING OLD TABLE AS old_records FOR EACH STATEMENT EXECUTE FUNCTION usage_keys_delete();
CREATE TRIGGER usage_keys_truncate AFTER TRUNCATE ON {PARENT}
    FOR EACH STATEMENT EXECUTE FUNCTION usage_keys_truncate();
CREATE TRIGGER usage_keys_fixed BEFORE UPDATE OF account_id, client_id ON {PARENT}
    FOR EACH ROW WHEN (OLD.account_id IS DISTINCT FROM NEW.account_id
                       OR OLD.client_id IS DISTINCT FROM NEW.client_id)
    EXECUTE FUNCTION usage_keys_fixed();
"""


def _months(first: dt.date, count: int) -> list[dt.date]:
    index = first.year * 12 + first.month - 1
    return [dt.date((index + n) // 12, (index + n) % 12 + 1, 1) for n in range(count)]


def _constraints_and_indexes(cursor, table: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Foreign keys (name, definition) and plain index definitions of `table`."""
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname",
        [table],
    )
    foreign_keys = cursor.fetchall()
    cursor.execute(
        "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = %s::regclass "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) "
        "ORDER BY i.indexrelid",
        [table],
    )
    indexes = [row[0] for row in cursor.fetchall()]
    return foreign_keys, indexes


def _rebuild(cursor, source: str, target: str, foreign_keys, indexes) -> None:
    for name, definition in foreign_keys:
        cursor.execute(f'ALTER TABLE {target} ADD CONSTRAINT "{name}" {definition}')
    for definition in indexes:
        cursor.execute(definition.replace(f" ON public.{source} ", f" ON {target} "))


def partition(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    from usage.partitions import create_month

    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {PARENT} RENAME TO {OLD}")
        foreign_keys, indexes = _constraints_and_indexes(cursor, OLD)
        cursor.execute(
            f"CREATE TABLE {PARENT} (LIKE {OLD} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) "
            "PARTITION BY RANGE (start_time)"
        )
        cursor.execute(f"CREATE TABLE {PARENT}_default PARTITION OF {PARENT} DEFAULT")
        cursor.execute(
            "SELECT DISTINCT date_trunc('month', start_time AT TIME ZONE 'UTC')::date FROM "
            f"{OLD}"
        )
        today = dt.datetime.now(dt.UTC).date()
        months = {row[0] for row in cursor.fetchall()} | set(_months(today, 3))
        for month in sorted(months):
            create_month(cursor, month)
        cursor.execute(f"INSERT INTO {PARENT} SELECT * FROM {OLD}")
        cursor.execute(f"SELECT coalesce(max(id), 0) FROM {OLD}")
        last_id = cursor.fetchone()[0]
        cursor.execute(f"DROP TABLE {OLD}")
        cursor.execute(f"CREATE SEQUENCE {SEQUENCE} OWNED BY {PARENT}.id")
        if last_id:
            cursor.execute("SELECT setval(%s, %s)", [SEQUENCE, last_id])
        cursor.execute(f"ALTER TABLE {PARENT} ALTER COLUMN id SET DEFAULT nextval('{SEQUENCE}')")
        cursor.execute(
            f"ALTER TABLE {PARENT} ADD CONSTRAINT {PARENT}_pkey PRIMARY KEY (id, start_time)"
        )
        _rebuild(cursor, OLD, PARENT, foreign_keys, indexes)
        cursor.execute(
            f"CREATE TABLE {KEYS} (account_id bigint NOT NULL, client_id varchar(128) NOT NULL)"
        )
        cursor.execute(f"INSERT INTO {KEYS} SELECT account_id, client_id FROM {PARENT}")
        cursor.execute(
            f"ALTER TABLE {KEYS} ADD CONSTRAINT {UNIQUE} PRIMARY KEY (account_id, client_id)"
        )
        cursor.execute(TRIGGERS_SQL)


def unpartition(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        foreign_keys, indexes = _constraints_and_indexes(cursor, PARENT)
        cursor.execute(
            f"CREATE TABLE {OLD} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
        cursor.execute(f"ALTER TABLE {OLD} ALTER COLUMN id DROP DEFAULT")
        cursor.execute(f"INSERT INTO {OLD} SELECT * FROM {PARENT}")
        cursor.execute(f"DROP TABLE {PARENT} CASCADE")
        cursor.execute(f"DROP TABLE {KEYS}")
        for function in ("insert", "delete", "truncate", "fixed"):
            cursor.execute(f"DROP FUNCTION usage_keys_{function}()")
        cursor.execute(f"ALTER TABLE {OLD} RENAME TO {PARENT}")
        cursor.execute(f"ALTER TABLE {PARENT} ADD CONSTRAINT {PARENT}_pkey PRIMARY KEY (id)")
        cursor.execute(
            f"ALTER TABLE {PARENT} ADD CONSTRAINT {UNIQUE} UNIQUE (account_id, client_id)"
        )
        cursor.execute(
            f"ALTER TABLE {PARENT} ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY"
        )
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{PARENT}', 'id'), "
            f"(SELECT coalesce(max(id), 0) + 1 FROM {PARENT}), false)"
        )
        _rebuild(cursor, PARENT, PARENT, foreign_keys, [])
        for definition in indexes:
            cursor.execute(definition.replace(" ON ONLY ", " ON "))


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0004_pricing_staff_permissions"),
    ]

    operations = [
        migrations.RunPython(partition, unpartition, elidable=False),
    ]
