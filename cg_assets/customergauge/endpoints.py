"""The table of CustomerGauge sync endpoints the lake mirrors: a new endpoint is a new row.

Each row says where the records come from (path, expansions), which date fields the
period filter accepts and which setting picks one, what identifies a record (the key
column), how a record maps onto typed lake columns (which of them hold personal data),
which columns a metadata preview may show, and which column, if any, is a status.
Assets, checks, the sensor, the schedule and the funnel are built from these rows;
nothing downstream names an endpoint. Every wire name comes from wire.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from cg_assets.customergauge import wire
from cg_assets.lake.columns import (
    INT,
    KEY,
    STRING,
    TIMESTAMP,
    Column,
    Item,
    key_column,
    struct_list,
)
from cg_assets.lake.decode import RecordDecoder
from cg_assets.settings import LoadSettings, SettingsError


@dataclass(frozen=True)
class Endpoint:
    name: str  # the lake table and the last part of the asset key
    path: str
    expand: tuple[str, ...]
    columns: tuple[Column, ...]
    description: str
    period_fields: tuple[str, ...] = wire.PERIOD_FIELDS  # what period[field] accepts
    date_setting: str = "CG_DATE_FIELD"  # the variable that picks this table's date field
    status_column: str | None = None  # counted and compared between syncs, if any
    # Shown in Dagster's metadata preview: never a personal column.
    preview_columns: tuple[str, ...] = ()
    # Whether undeclared fields may hold personal data (free-text answers may).
    extra_fields_personal: bool = False
    # Written into each file's footer: a file of another version is fetched again whole.
    # Bump it when the table's columns change.
    schema_version: str = "1"
    # Whether a stored cursor sees every record that changed since it was stored. False
    # where the cursor may follow another order than changes (responses may be ordered
    # by the invitation's CGID, API-NOTES.md): an open day is then always fetched whole.
    catch_up_by_cursor: bool = True
    # Whether a record may leave its day on the API's side. A non-response leaves when it
    # is answered (it moves to responses); a response never leaves. Where none may, a
    # whole fetch that would drop rows is checked by a second fetch before it is
    # published (sync.py): one glitching answer must not shorten a day.
    rows_leave: bool = True

    def __post_init__(self) -> None:
        names = {c.name: c for c in self.columns}
        key_column(self.columns)
        for name in (*self.preview_columns, *([self.status_column] if self.status_column else [])):
            if name not in names:
                raise ValueError(f"endpoint {self.name}: {name!r} is not one of its columns")
            if names[name].personal:
                raise ValueError(f"endpoint {self.name}: personal column {name!r} in a preview")
        for field in self.period_fields:
            if field not in names or names[field].kind != TIMESTAMP:
                raise ValueError(f"endpoint {self.name}: period field {field!r} is no timestamp")

    @property
    def key(self) -> str:
        return key_column(self.columns).name

    @property
    def personal_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.personal)

    def date_field(self, settings: LoadSettings) -> str:
        """The date field that puts a record in a day, from this endpoint's own setting."""
        field = settings.date_field_for(self.date_setting)
        if field not in self.period_fields:
            raise SettingsError(
                f"{self.date_setting}={field!r} is invalid for {self.name}: expected one of "
                + ", ".join(self.period_fields)
                + "."
            )
        return field

    def decoder(self) -> RecordDecoder:
        return RecordDecoder(self.columns)


def _date(name: str, description: str) -> Column:
    return Column(name, (name,), TIMESTAMP, description)


# The invitation's fields, which both tables carry. [viadot] names (wire.py).
_INVITATION = (
    Column(
        "contact_first_name",
        (wire.CONTACT, wire.CONTACT_FIRST_NAME),
        STRING,
        "Recipient first name",
        personal=True,
    ),
    Column(
        "contact_last_name",
        (wire.CONTACT, wire.CONTACT_LAST_NAME),
        STRING,
        "Recipient last name",
        personal=True,
    ),
    Column("account_name", (wire.ACCOUNT, wire.ACCOUNT_NAME), STRING, "Customer account name"),
    Column(
        "account_number", (wire.ACCOUNT, wire.ACCOUNT_NUMBER), STRING, "Customer account number"
    ),
    Column(
        "number_customer", (wire.NUMBER_CUSTOMER,), STRING, "Customer number in the source system"
    ),
    Column("number_order", (wire.NUMBER_ORDER,), STRING, "Order number in the source system"),
    Column("email", (wire.EMAIL,), STRING, "Recipient e-mail address", personal=True),
    Column("phone", (wire.PHONE,), STRING, "Recipient phone number", personal=True),
    _date(wire.DATE_CREATION, "When the survey record was created (system time zone)"),
    _date(wire.DATE_ORDER, "Order date from the customer's system (system time zone)"),
    _date(wire.DATE_SENT, "When the survey invitation was sent (system time zone)"),
    _date(wire.DATE_EMAIL_SENT, "When the e-mail left CustomerGauge (system time zone)"),
    _date(wire.DATE_OPENED, "When the invitation was opened; null if never"),
    _date(wire.DATE_CLICKED, "When the survey link was clicked; null if never"),
    Column("language", (wire.LANGUAGE,), STRING, "Survey language code"),
    Column("link", (wire.LINK,), STRING, "Personal survey link", personal=True),
)
_KEY = Column(
    "number_customergauge",
    (wire.RECORD_KEY,),
    KEY,
    "CustomerGauge survey record id (unique per day; kept when a non-response is answered)",
)
_PROPERTIES = Column(
    "properties",
    (wire.PROPERTIES,),
    struct_list(
        Item(wire.PROPERTY_FIELD, STRING),
        Item(wire.PROPERTY_REFERENCE, STRING),
    ),
    "Segment data: list of {field, reference}",
    # A reference can name a person ("Account Manager"): see docs/privacy.md.
    segments=(wire.PROPERTY_FIELD, wire.PROPERTY_REFERENCE),
)
_PREVIEW = ("date_sent", "date_creation", "language")

NON_RESPONSES = Endpoint(
    name="non_responses",
    path=wire.NON_RESPONSES_PATH,
    expand=(wire.WITH_PROPERTIES,),
    period_fields=wire.NON_RESPONSES_PERIOD_FIELDS,
    date_setting="CG_DATE_FIELD",
    status_column="status",
    preview_columns=("status", *_PREVIEW),
    description=(
        "Survey invitations that have not (yet) been answered, one row per survey record, "
        "from the CustomerGauge v7 non-responses sync API. Partition D holds the records "
        "whose date field (CG_DATE_FIELD) falls on D in the CustomerGauge system time zone. "
        "Records that become responses disappear, and bounces turn a status into a failure, "
        "so a day is re-synced in full once it is CG_SETTLE_AFTER_HOURS old (`settled`)."
    ),
    columns=(
        _KEY,
        Column(
            "status",
            (wire.STATUS,),
            STRING,
            "Delivery status, e.g. survey-sent, survey-clicked, a failure",
        ),
        *_INVITATION,
        _PROPERTIES,
    ),
)

RESPONSES = Endpoint(
    name="responses",
    path=wire.RESPONSES_PATH,
    # [viadot] the four expansions the public client sends for responses.
    expand=(wire.WITH_DRIVERS, wire.WITH_TAGS, wire.WITH_QUESTIONS, wire.WITH_PROPERTIES),
    period_fields=wire.RESPONSES_PERIOD_FIELDS,
    date_setting="CG_RESPONSES_DATE_FIELD",
    status_column=None,  # [assumed] no documented status on a response
    # 2: nps and comment typed (they were kept in extra_fields in 1).
    schema_version="2",
    # [vendor, older pages] "ordered by CGID": an answer to an old invitation can sit below
    # the stored cursor, so the cursor is never trusted to see it.
    catch_up_by_cursor=False,
    rows_leave=False,
    preview_columns=(*_PREVIEW, wire.DATE_SURVEY_RESPONSE),
    extra_fields_personal=True,  # the answer's comments are free text
    description=(
        "Answered surveys, one row per survey record, from the CustomerGauge v7 responses "
        "sync API: a non-response that is answered leaves non_responses and appears here "
        "with the same number_customergauge. Partition D holds the records whose date field "
        "(CG_RESPONSES_DATE_FIELD, by default date_sent, so a record's send day is the same "
        "partition in both tables) falls on D. The answer: nps (0-10), nps_category and "
        "comment (personal); tags and questions are kept as JSON in extra_fields. A send "
        "day stays open for answers for CG_ANSWER_WINDOW_DAYS and is fetched whole about "
        "once a day until then (`stage`: open, settled, closed)."
    ),
    columns=(
        _KEY,
        *_INVITATION,
        _date(wire.DATE_SURVEY_RESPONSE, "When the survey was answered (system time zone)"),
        Column(wire.NPS, (wire.NPS,), INT, "The answer to the NPS question, 0 to 10"),
        Column(wire.COMMENT, (wire.COMMENT,), STRING, "The respondent's comment", personal=True),
        _PROPERTIES,
        Column(
            "drivers",
            (wire.DRIVERS,),
            struct_list(Item(wire.DRIVER_LABEL, STRING)),
            "Drivers the respondent picked: list of {label}",
        ),
    ),
)

ENDPOINTS: tuple[Endpoint, ...] = (NON_RESPONSES, RESPONSES)
