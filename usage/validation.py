"""Lean validation of incoming usage records.

Ingestion runs at tens of thousands of records per second, so a record is
checked by plain functions into a tuple (no model instance, no serializer per
record). Every problem is collected with the record's index and the field, so
a client can fix a whole batch in one round trip.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

MAX_BATCH_RECORDS = 10_000
CLIENT_ID_MAX = 128
RESOURCE_ID_MAX = 255
RESOURCE_NAME_MAX = 255
SERVICE_MAX = 128
REGION_MAX = 64
COST_PLACES = Decimal("0.000001")  # UsageRecord.cost has six decimal places
COST_MAX = Decimal("999999999999.999999")  # and 18 digits
DURATION_MAX = 2**63 - 1
ID_MAX = 2**63 - 1  # bigint
METRIC_MAX = 64
QUANTITY_PLACES = Decimal("0.0001")  # UsageRecord.quantity has four decimal places
QUANTITY_MAX = Decimal("99999999999999.9999")  # and 18 digits
# A JSON number parsed as a binary float keeps the digits the client wrote only
# up to 15 significant digits; beyond that the value must come as a string.
FLOAT_SAFE_DIGITS = 15
# ASCII digits only: str.isdigit() and Decimal() also take "²", "٣" or "1_000".
# Reports a bad field of the record being cleaned: fail(field, message).
Fail = Callable[[str, str], None]

_INTEGER_RE = re.compile(r"\A[0-9]{1,19}\Z")
_DECIMAL_RE = re.compile(r"\A[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?\Z")


def _encodable(value: str) -> bool:
    """False for text with lone surrogates, which no database driver can store."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class CleanRecord(NamedTuple):
    """A valid record, in the column order of the bulk writers."""

    account_id: int
    client_id: str
    resource_id: str
    resource_name: str
    service: str
    region: str
    start_time: dt.datetime
    end_time: dt.datetime
    duration: int
    cost: Decimal | None
    # A metered record carries a metric code and a quantity instead of a cost.
    metric: str | None = None
    quantity: Decimal | None = None


COLUMNS: tuple[str, ...] = CleanRecord._fields


def _text(value: object, *, max_length: int, required: bool, allow_int: bool = False) -> str:
    """The value as text, or ValueError with the reason."""
    if value is None or value == "":
        if required:
            raise ValueError("is required")
        return ""
    if allow_int and isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= ID_MAX:
            raise ValueError(f"must be a string, or an integer from 0 to {ID_MAX}")
        value = str(value)
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if required and not value.strip():
        raise ValueError("must not be blank")
    if len(value) > max_length:
        raise ValueError(f"must be at most {max_length} characters")
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if not _encodable(value):
        raise ValueError("must be valid Unicode text (it contains a lone surrogate)")
    return value


def _timestamp(value: object) -> dt.datetime:
    if value is None or value == "":
        raise ValueError("is required")
    if not isinstance(value, str):
        raise ValueError("must be an ISO-8601 timestamp string")
    # The parser stops at a NUL and would accept what follows it unread.
    if not (value.isascii() and value.isprintable()):
        raise ValueError("must be an ISO-8601 timestamp in ASCII, e.g. 2022-01-01T00:00:00Z")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO-8601 timestamp, e.g. 2022-01-01T00:00:00Z") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("must include a time zone (Z or an offset such as +02:00)")
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError("is out of range") from None


def _positive_int(value: object, *, what: str = "an integer") -> int:
    if isinstance(value, bool):
        raise ValueError(f"must be {what}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER_RE.match(value.strip()):
        return int(value.strip())
    raise ValueError(f"must be {what} in ASCII digits, at most {ID_MAX}")


def parse_cost(value: object) -> Decimal:
    """A usage cost: a number or numeric string, >= 0, at most six decimal places."""
    if value is None or value == "":
        raise ValueError("is required")
    if isinstance(value, bool):
        raise ValueError("must be a number")
    if isinstance(value, Decimal):
        cost = value
    elif isinstance(value, int):
        cost = Decimal(value)
    elif isinstance(value, float):
        cost = Decimal(repr(value))
        if cost.is_finite() and len(cost.normalize().as_tuple().digits) > FLOAT_SAFE_DIGITS:
            raise ValueError(
                f"has more than {FLOAT_SAFE_DIGITS} significant digits; "
                "send it as a string to keep it exact"
            )
    elif isinstance(value, str):
        if not _DECIMAL_RE.match(value.strip()):
            raise ValueError("must be a number in ASCII digits, e.g. 0.25")
        try:
            cost = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError("must be a number") from None
    else:
        raise ValueError("must be a number")
    if not cost.is_finite():
        raise ValueError("must be a finite number")
    if cost < 0:
        raise ValueError("must not be negative")
    if cost > COST_MAX:
        raise ValueError(f"must be at most {COST_MAX}")
    if cost != cost.quantize(COST_PLACES):
        raise ValueError("must have at most 6 decimal places")
    return cost


def parse_quantity(value: object) -> Decimal:
    """A metered quantity: a number or numeric string, >= 0, at most four decimal places."""
    if value is None or value == "":
        raise ValueError("is required with metric")
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise ValueError("must be a number")
    if isinstance(value, float):
        value = repr(value)
    try:
        quantity = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        raise ValueError("must be a number") from None
    if not quantity.is_finite():
        raise ValueError("must be a finite number")
    if quantity < 0:
        raise ValueError("must not be negative")
    if quantity > QUANTITY_MAX:
        raise ValueError(f"must be at most {QUANTITY_MAX}")
    if quantity != quantity.quantize(QUANTITY_PLACES):
        raise ValueError("must have at most 4 decimal places")
    return quantity


def _text_values(
    raw: dict, fields: Iterable[tuple[str, int, bool, bool]], fail: Fail
) -> dict[str, object]:
    """The text fields of a record, each (name, max_length, required, allow_int); a bad
    one is reported to `fail` and left out."""
    values: dict[str, object] = {}
    for field, max_length, required, allow_int in fields:
        try:
            values[field] = _text(
                raw.get(field), max_length=max_length, required=required, allow_int=allow_int
            )
        except ValueError as exc:
            fail(field, str(exc))
    return values


def _account_id(raw: dict, implied_account_id: int | None, fail: Fail) -> object:
    """The record's `account_id`, or the implied account when it names none; a bad one
    is reported to `fail` (and returned as it came)."""
    account_id = raw.get("account_id")
    if account_id is None or account_id == "":
        if implied_account_id is None:
            fail("account_id", "is required with an API key that is not limited to one account")
        else:
            account_id = implied_account_id
    else:
        try:
            account_id = _positive_int(account_id, what="an account id (integer)")
            if not 0 < account_id <= ID_MAX:
                raise ValueError("must be a positive account id")
        except ValueError as exc:
            fail("account_id", str(exc))
        else:
            if implied_account_id is not None and account_id != implied_account_id:
                fail("account_id", "is another account than the one this API key is limited to")
    return account_id


def _clean_metered(
    raw: dict, index: int, errors: list[dict], implied_account_id: int | None
) -> CleanRecord | None:
    """A metered record: `id`, `account_id`, `metric`, `quantity`, `start_time`; optional
    `resource_id` (counted by unique_count metrics), `resource_name`, `service`,
    `region`, `end_time` (default: start_time) and `duration`. No `cost`: the plan prices it.
    """
    bad = False

    def fail(field: str, message: str) -> None:
        nonlocal bad
        bad = True
        errors.append({"index": index, "field": field, "message": message})

    values = _text_values(
        raw,
        (
            ("id", CLIENT_ID_MAX, True, True),
            ("metric", METRIC_MAX, True, False),
            ("resource_id", RESOURCE_ID_MAX, False, True),
            ("resource_name", RESOURCE_NAME_MAX, False, False),
            ("service", SERVICE_MAX, False, False),
            ("region", REGION_MAX, False, False),
        ),
        fail,
    )
    if raw.get("cost") not in (None, ""):
        fail("cost", "a metered record (metric and quantity) has no cost: its plan prices it")

    account_id = _account_id(raw, implied_account_id, fail)

    start = end = None
    try:
        start = _timestamp(raw.get("start_time"))
    except ValueError as exc:
        fail("start_time", str(exc))
    if raw.get("end_time") in (None, ""):
        end = start
    else:
        try:
            end = _timestamp(raw.get("end_time"))
        except ValueError as exc:
            fail("end_time", str(exc))
        if start is not None and end is not None and end < start:
            fail("end_time", "must not be before start_time")
            end = None
    duration = 0
    if start is not None and end is not None:
        delta = end - start
        duration = delta.days * 86400 + delta.seconds
    if raw.get("duration") not in (None, ""):
        try:
            duration = _positive_int(raw.get("duration"), what="a whole number of seconds")
            if duration > DURATION_MAX:
                raise ValueError("is too large")
        except ValueError as exc:
            fail("duration", str(exc))

    quantity = None
    try:
        quantity = parse_quantity(raw.get("quantity"))
    except ValueError as exc:
        fail("quantity", str(exc))

    if bad:
        return None
    return CleanRecord(
        account_id,  # type: ignore[arg-type]
        values["id"],  # type: ignore[arg-type]
        values["resource_id"],  # type: ignore[arg-type]
        values["resource_name"],  # type: ignore[arg-type]
        values["service"],  # type: ignore[arg-type]
        values["region"],  # type: ignore[arg-type]
        start,  # type: ignore[arg-type]
        end,  # type: ignore[arg-type]
        duration,
        None,
        values["metric"],  # type: ignore[arg-type]
        quantity,
    )


def _clean_common(raw: dict, implied_account_id: int | None) -> CleanRecord | None:
    """The fast path for the usual, well-formed record, or None to take the
    checked path. It accepts a strict subset of what the checked path accepts,
    with the same result, so it changes speed only, never an answer."""
    try:
        client_id = raw["id"]
        resource_id = raw["resource_id"]
        resource_name = raw.get("resource_name", "")
        service = raw["service"]
        region = raw["region"]
        if (
            type(client_id) is not str
            or type(resource_id) is not str
            or type(resource_name) is not str
            or type(service) is not str
            or type(region) is not str
        ):
            return None
        if not (
            0 < len(client_id) <= CLIENT_ID_MAX
            and 0 < len(resource_id) <= RESOURCE_ID_MAX
            and len(resource_name) <= RESOURCE_NAME_MAX
            and 0 < len(service) <= SERVICE_MAX
            and 0 < len(region) <= REGION_MAX
        ):
            return None
        joined = client_id + resource_id + resource_name + service + region
        if "\x00" in joined or client_id.isspace() or resource_id.isspace():
            return None
        if not _encodable(joined):
            return None
        if service.isspace() or region.isspace():
            return None
        account_id = raw.get("account_id")
        if account_id is None:
            if implied_account_id is None:
                return None
            account_id = implied_account_id
        elif (
            type(account_id) is not int
            or not 0 < account_id <= ID_MAX
            or (implied_account_id is not None and account_id != implied_account_id)
        ):
            return None
        start_raw, end_raw = raw["start_time"], raw["end_time"]
        if type(start_raw) is not str or type(end_raw) is not str:
            return None
        if not (start_raw + end_raw).isascii() or not (start_raw + end_raw).isprintable():
            return None
        start = dt.datetime.fromisoformat(start_raw)
        end = dt.datetime.fromisoformat(end_raw)
        if start.tzinfo is None or end.tzinfo is None:
            return None
        start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
        if end < start:
            return None
        duration = raw.get("duration")
        if duration is None:
            delta = end - start
            duration = delta.days * 86400 + delta.seconds
        elif type(duration) is not int or not 0 <= duration <= DURATION_MAX:
            return None
        cost_raw = raw["cost"]
        if type(cost_raw) is not str or not _DECIMAL_RE.match(cost_raw):
            return None
        cost = Decimal(cost_raw)
        if (
            not cost.is_finite()
            or cost < 0
            or cost > COST_MAX
            or cost != cost.quantize(COST_PLACES)
        ):
            return None
    except (KeyError, ValueError, InvalidOperation, OverflowError, TypeError):
        return None
    return CleanRecord(
        account_id, client_id, resource_id, resource_name, service, region, start, end,
        duration, cost,
    )  # fmt: skip


def clean_record(
    raw: object, index: int, errors: list[dict], *, implied_account_id: int | None
) -> CleanRecord | None:
    """Check one record; append its problems to `errors` and return None if it has any.

    `implied_account_id` is the account an account-limited API key (or an
    import's --account) stands for: records may omit `account_id`, and may not
    name another account.
    """
    # A CSV row has every column, so an empty one counts as absent.
    if type(raw) is dict and (
        raw.get("metric") not in (None, "") or raw.get("quantity") not in (None, "")
    ):
        return _clean_metered(raw, index, errors, implied_account_id)
    if type(raw) is dict:
        fast = _clean_common(raw, implied_account_id)
        if fast is not None:
            return fast
    if not isinstance(raw, dict):
        errors.append({"index": index, "field": "record", "message": "must be a JSON object"})
        return None
    bad = False

    def fail(field: str, message: str) -> None:
        nonlocal bad
        bad = True
        errors.append({"index": index, "field": field, "message": message})

    values = _text_values(
        raw,
        (
            ("id", CLIENT_ID_MAX, True, True),
            ("resource_id", RESOURCE_ID_MAX, True, True),
            ("resource_name", RESOURCE_NAME_MAX, False, False),
            ("service", SERVICE_MAX, True, False),
            ("region", REGION_MAX, True, False),
        ),
        fail,
    )

    account_id = _account_id(raw, implied_account_id, fail)

    start = end = None
    try:
        start = _timestamp(raw.get("start_time"))
    except ValueError as exc:
        fail("start_time", str(exc))
    try:
        end = _timestamp(raw.get("end_time"))
    except ValueError as exc:
        fail("end_time", str(exc))
    if start is not None and end is not None and end < start:
        fail("end_time", "must not be before start_time")
        end = None

    duration_raw = raw.get("duration")
    duration = None
    if duration_raw is None or duration_raw == "":
        if start is not None and end is not None:
            delta = end - start
            duration = delta.days * 86400 + delta.seconds
    else:
        try:
            duration = _positive_int(duration_raw, what="a whole number of seconds")
            if duration > DURATION_MAX:
                raise ValueError("is too large")
        except ValueError as exc:
            fail("duration", str(exc))
        else:
            if duration < 0:
                fail("duration", "must not be negative")

    try:
        cost = parse_cost(raw.get("cost"))
    except ValueError as exc:
        fail("cost", str(exc))

    if bad:
        return None
    return CleanRecord(
        account_id,  # type: ignore[arg-type]
        values["id"],  # type: ignore[arg-type]
        values["resource_id"],  # type: ignore[arg-type]
        values["resource_name"],  # type: ignore[arg-type]
        values["service"],  # type: ignore[arg-type]
        values["region"],  # type: ignore[arg-type]
        start,  # type: ignore[arg-type]
        end,  # type: ignore[arg-type]
        duration,  # type: ignore[arg-type]
        cost,
    )
