"""One parser of ISO-8601 instants for the whole twin.

A time given by a user (a scenario's start, a forecast's issue time, a slope
run's rain start, the clock's start) is an instant: ISO-8601 text *with* a
time zone (``2023-09-07T17:00:00+08:00``, ``2024-06-01T00:00:00Z``) or a
timezone-aware :class:`datetime.datetime`. A naive time is refused: in a city
on UTC+8 whose sensors report in UTC, a time without a zone is eight hours
ambiguous. Every caller gets the instant back in UTC and keeps its own field
name and exception class in the error (:func:`parse_instant`'s ``field`` and
``error``), so the message names what the user wrote where.
"""

from __future__ import annotations

from datetime import UTC, datetime

from twin.errors import ValidationError

#: The example shown in every error: Shenzhen's zone, seconds given.
EXAMPLE = "2023-09-07T17:00:00+08:00"


def parse_instant(value: datetime | str, field: str = "time", *,
                  error: type[Exception] = ValidationError) -> datetime:
    """A timezone-aware instant in UTC from ISO-8601 text (``Z`` accepted) or a datetime.

    Parameters
    ----------
    value : str or datetime
        The instant as given.
    field : str
        The name of the field (or option) it came from, for the error message.
    error : exception class
        The exception raised (a caller's own: :class:`twin.errors.ClockError` for the clock).

    Raises
    ------
    error
        Naming the field and the value and saying what to give: for text that is
        not ISO 8601, a value that is neither text nor a datetime, or an instant
        without a time zone.
    """
    if isinstance(value, str):
        try:
            t = datetime.fromisoformat(value.strip())
        except ValueError:
            raise error(f"{field}={value!r} is not an ISO-8601 instant; give a date and time with "
                        f"its zone, e.g. '{EXAMPLE}' or '2024-06-01T00:00:00Z'") from None
    elif isinstance(value, datetime):
        t = value
    else:
        raise error(f"{field}={value!r} is not a date-time; give ISO-8601 text with a zone "
                    f"(e.g. '{EXAMPLE}') or a timezone-aware datetime")
    if t.tzinfo is None or t.utcoffset() is None:
        raise error(f"{field}={value!r} has no time zone (a naive time, no timezone offset, is "
                    f"ambiguous): add one, e.g. '{t.isoformat()}+08:00' for Shenzhen or "
                    f"'{t.isoformat()}Z' for UTC")
    return t.astimezone(UTC)


__all__ = ["EXAMPLE", "parse_instant"]
