"""Read an erasure request file: every identifier in it, or a refusal naming the line.

An erasure that reports success and misses a person is worse than one that fails, so this
reader accepts two documented formats and refuses everything else:

- **one identifier a line**: an e-mail address or a number_customer; blank lines and lines
  starting with `#` are skipped;
- **CSV with a header row** naming the identifier column(s): `email` (or `e-mail`,
  `email_address`, `mail`) and/or `number_customer` (or `customer_number`); the delimiter
  is `,`, `;` or a tab (whichever the header uses); other columns (a name, a note) are
  ignored; a row with no identifier in any of those columns is refused.

The text is decoded as UTF-8 (a BOM, as Excel writes, is dropped) or UTF-16 with a BOM
(Excel's "Unicode text"). Each value is cleaned before it is checked: Unicode NFKC (a
no-break space becomes a space, full-width letters plain ones), format characters removed
(zero-width spaces and joiners, BOMs, direction marks: category Cf), surrounding white
space of every kind trimmed, and the usual decorations taken off: quotes (straight or
typographic), `mailto:`, angle brackets, and a display name before `<address>`. What is
left must be one e-mail address (one `@`, a dotted domain, no space) or one number_customer
(letters, digits and `-_./`); anything else fails naming the line number, never the value.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from cg_assets.privacy.suppression import IdentifierKind
from cg_assets.settings import SettingsError

# Header names (cleaned, lower-cased, `-`/space as `_`) -> the kind of identifier they hold.
HEADER_KINDS: dict[str, IdentifierKind] = {
    "email": "email",
    "e_mail": "email",
    "email_address": "email",
    "emailaddress": "email",
    "mail": "email",
    "number_customer": "number_customer",
    "customer_number": "number_customer",
}
DELIMITERS = (",", ";", "\t")
MAX_IDENTIFIER_LENGTH = 254  # the longest e-mail address SMTP allows

# An apostrophe is allowed before the @ (o'brien@...), not in the domain.
_EMAIL = re.compile(r"[^\s@<>()\[\],;:\"`]+@[^\s@<>()\[\],;:\"'`]+\.[^\s@<>()\[\],;:\"'`.]+")
_CUSTOMER_NUMBER = re.compile(r"[0-9A-Za-z][0-9A-Za-z._/-]*")
_DISPLAY_NAME = re.compile(r"[^<>]*<([^<>]*)>")
_QUOTES = "\"'`\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u00ab\u00bb\u2039\u203a"
_MAILTO = "mailto:"


class IdentifiersFileError(SettingsError):
    """The identifiers file cannot be used; the message never quotes a line of it."""


@dataclass(frozen=True)
class Identifier:
    """One cleaned identifier and the line it came from (clear text: hash it, then drop it)."""

    kind: IdentifierKind
    value: str
    line: int


def clean(raw: str) -> str:
    """NFKC, no format characters, no surrounding white space, no decorations."""
    text = unicodedata.normalize("NFKC", raw)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    previous = None
    while text != previous:  # decorations nest: "<mailto:x>", '"x"', "Name <x>"
        previous = text
        text = text.strip()
        if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
            text = text[1:-1]
        elif text.lower().startswith(_MAILTO):
            text = text[len(_MAILTO) :]
        elif (match := _DISPLAY_NAME.fullmatch(text)) is not None:
            text = match.group(1)
    return text


def kind_of(value: str) -> IdentifierKind | None:
    """The kind of a cleaned value, or None when it is neither."""
    if len(value) > MAX_IDENTIFIER_LENGTH:
        return None
    if _EMAIL.fullmatch(value):
        return "email"
    if _CUSTOMER_NUMBER.fullmatch(value):
        return "number_customer"
    return None


def decode(data: bytes, path: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"  # Excel's "Unicode text": UTF-16 with a BOM
    else:
        encoding = "utf-8-sig"  # drops the BOM Excel's "CSV UTF-8" writes
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1 if encoding != "utf-16" else None
        where = f", line {line}" if line else ""
        raise IdentifiersFileError(
            f"identifiers_file {path!r}{where}: not UTF-8 text. Save it as UTF-8 (Excel: "
            "'CSV UTF-8'); the line itself is not shown."
        ) from None


def parse(text: str, path: str) -> list[Identifier]:
    """Every identifier of the text, in order (duplicates included)."""
    lines = text.split("\n")  # not splitlines(): U+2028 and friends are not line breaks here
    first = next(
        (i for i, line in enumerate(lines) if clean(line) and not clean(line).startswith("#")),
        None,
    )
    if first is None:
        raise IdentifiersFileError(
            f"identifiers_file {path!r} holds no identifier: expected one e-mail address or "
            "number_customer a line, or a CSV file with an email or number_customer column."
        )
    header = _header(lines[first])
    if header is not None:
        return _parse_csv(lines, first, header, path)
    if any(d in lines[first] for d in DELIMITERS):
        raise IdentifiersFileError(
            f"identifiers_file {path!r}, line {first + 1}: looks like a CSV header, but no column "
            "is named email or number_customer (the accepted names: "
            + ", ".join(sorted(HEADER_KINDS))
            + "). Name the identifier column, or give one identifier a line. The line itself "
            "is not shown."
        )
    return _parse_lines(lines, path)


def _header_name(cell: str) -> str:
    return re.sub(r"[\s-]+", "_", clean(cell).lower())


def _header(line: str) -> tuple[str, dict[int, IdentifierKind]] | None:
    """(delimiter, column index -> kind) when the line is a CSV header naming an identifier
    column; a lone `email` or `number_customer` is a one-column header."""
    candidates = [d for d in DELIMITERS if d in line] or [","]
    for delimiter in candidates:
        cells = next(csv.reader([line.rstrip("\r")], delimiter=delimiter))
        columns = {
            i: HEADER_KINDS[_header_name(c)]
            for i, c in enumerate(cells)
            if _header_name(c) in HEADER_KINDS
        }
        if columns:
            return delimiter, columns
    return None


def _refuse(path: str, line: int, what: str) -> IdentifiersFileError:
    return IdentifiersFileError(
        f"identifiers_file {path!r}, line {line}: {what}. Nothing was erased; fix the line "
        "and run the erasure again. The line itself is not shown."
    )


def _identifier(raw: str, line: int, path: str, kind: IdentifierKind | None) -> Identifier:
    value = clean(raw)
    found = kind_of(value)
    if found is None or (kind is not None and found != kind):
        if kind == "email":
            what = "not an e-mail address (one @, a dotted domain, no spaces)"
        elif kind == "number_customer":
            what = "not a number_customer (letters, digits and - _ . / only, no spaces)"
        else:
            what = (
                "neither an e-mail address (one @, a dotted domain, no spaces) nor a "
                "number_customer (letters, digits and - _ . / only)"
            )
        raise _refuse(path, line, what)
    return Identifier(found, value, line)


def _parse_lines(lines: list[str], path: str) -> list[Identifier]:
    out = []
    for number, raw in enumerate(lines, start=1):
        cleaned = clean(raw)
        if not cleaned or cleaned.startswith("#"):
            continue
        out.append(_identifier(raw, number, path, None))
    return out


def _parse_csv(
    lines: list[str], first: int, header: tuple[str, dict[int, IdentifierKind]], path: str
) -> list[Identifier]:
    delimiter, columns = header
    body = "\n".join(lines[first + 1 :])
    width = len(next(csv.reader([lines[first].rstrip("\r")], delimiter=delimiter)))
    reader = csv.reader(io.StringIO(body, newline=""), delimiter=delimiter, strict=True)
    out: list[Identifier] = []
    start = first + 2  # the 1-based line number of the body's first line
    line = start
    try:
        for row in reader:
            if not any(clean(cell) for cell in row):
                line = start + reader.line_num
                continue  # a blank line
            if len(row) != width:
                raise _refuse(path, line, f"{len(row)} fields where the header has {width}")
            found = [
                _identifier(row[i], line, path, kind)
                for i, kind in columns.items()
                if clean(row[i])
            ]
            if not found:
                raise _refuse(path, line, "no identifier in the email or number_customer column")
            out.extend(found)
            line = start + reader.line_num
    except csv.Error:
        raise _refuse(path, line, "not valid CSV (an unclosed quote?)") from None
    return out


def read_identifier_file(path: str) -> list[Identifier]:
    """The file's identifiers (see the module docstring); raises IdentifiersFileError."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise IdentifiersFileError(
            f"identifiers_file {path!r} does not exist: give the path of a text file, one "
            "e-mail address or number_customer a line (or a CSV with an email or "
            "number_customer column), readable where the run executes."
        ) from None
    except OSError as exc:
        raise IdentifiersFileError(
            f"identifiers_file {path!r} cannot be read ({type(exc).__name__})."
        ) from None
    return parse(decode(data, path), path)
