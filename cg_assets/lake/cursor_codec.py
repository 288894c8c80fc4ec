"""The one text form of an API cursor, shared by the file footer and the materialization.

The API returns an integer cursor [vendor], but we pass back whatever it returned, so a
cursor may also be a string, and a day with no record yet has none. JSON keeps all three
apart (`123`, `"abc"`, `null`), and the same text is written to the footer and to the
day's materialization, so comparing the two never mistakes "no cursor" for a cursor.
"""

from __future__ import annotations

import json
from typing import Any

Cursor = int | str


def encode_cursor(cursor: Cursor | None) -> str:
    return json.dumps(cursor)


def decode_cursor(stored: Any) -> Cursor | None:
    """A cursor from its stored form.

    Also reads what versions before this codec stored in the materialization: an int
    metadata value, or the text "None" for no cursor.
    """
    if stored is None or isinstance(stored, int):
        return stored
    if not isinstance(stored, str):
        raise ValueError(f"not a stored cursor: {stored!r}")
    if stored == "None":
        return None
    try:
        value = json.loads(stored)
    except ValueError:
        return stored  # a bare string cursor stored as text before the codec
    if value is None or (isinstance(value, (int, str)) and not isinstance(value, bool)):
        return value
    raise ValueError(f"not a stored cursor: {stored!r}")
