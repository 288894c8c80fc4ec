"""The table of CustomerGauge sync endpoints the lake mirrors: a new endpoint is a new row.

Each row says where the records come from (path, expansion), what identifies a record
(the key column) and how a record maps onto lake columns. Assets, checks, the sensor and
the schedule are built from these rows; nothing downstream names an endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

from cg_assets.customergauge import wire
from cg_assets.lake.schema import Column, RecordDecoder


@dataclass(frozen=True)
class Endpoint:
    name: str  # the lake table and the last part of the asset key
    path: str
    expand: tuple[str, ...]
    columns: tuple[Column, ...]
    description: str

    @property
    def key(self) -> str:
        return next(c.name for c in self.columns if c.kind == "key")

    def decoder(self) -> RecordDecoder:
        return RecordDecoder(self.columns)


_DATES = (
    Column(
        "date_creation",
        ("date_creation",),
        "date",
        "When the survey record was created (system time zone)",
    ),
    Column(
        "date_order",
        ("date_order",),
        "date",
        "Order date from the customer's system (system time zone)",
    ),
    Column(
        "date_sent",
        ("date_sent",),
        "date",
        "When the survey invitation was sent (system time zone)",
    ),
    Column(
        "date_email_sent",
        ("date_email_sent",),
        "date",
        "When the e-mail left CustomerGauge (system time zone)",
    ),
    Column(
        "date_opened", ("date_opened",), "date", "When the invitation was opened; null if never"
    ),
    Column(
        "date_clicked", ("date_clicked",), "date", "When the survey link was clicked; null if never"
    ),
)

NON_RESPONSES = Endpoint(
    name="non_responses",
    path=wire.NON_RESPONSES_PATH,
    expand=(wire.WITH_PROPERTIES,),
    description=(
        "Survey invitations that have not (yet) been answered, one row per survey record, "
        "from the CustomerGauge v7 non-responses sync API. Partition D holds the records "
        "whose date field (CG_DATE_FIELD) falls on D in the CustomerGauge system time zone. "
        "Records that become responses disappear, and bounces turn a status into a failure, "
        "so a day is re-synced in full once it is CG_SETTLE_AFTER_HOURS old (`settled`)."
    ),
    columns=(
        Column(
            "number_customergauge",
            (wire.RECORD_KEY,),
            "key",
            "CustomerGauge survey record id (unique per day)",
        ),
        Column(
            "status",
            ("status",),
            "text",
            "Delivery status, e.g. survey-sent, survey-clicked, a failure",
        ),
        Column(
            "contact_first_name",
            ("contact", "first_name"),
            "text",
            "Recipient first name",
            personal=True,
        ),
        Column(
            "contact_last_name",
            ("contact", "last_name"),
            "text",
            "Recipient last name",
            personal=True,
        ),
        Column("account_name", ("account", "name"), "text", "Customer account name"),
        Column("account_number", ("account", "number"), "text", "Customer account number"),
        Column(
            "number_customer", ("number_customer",), "text", "Customer number in the source system"
        ),
        Column("number_order", ("number_order",), "text", "Order number in the source system"),
        Column("email", ("email",), "text", "Recipient e-mail address", personal=True),
        Column("phone", ("phone",), "text", "Recipient phone number", personal=True),
        *_DATES,
        Column("language", ("language",), "text", "Survey language code"),
        Column("link", ("link",), "text", "Personal survey link", personal=True),
        Column(
            "properties", ("properties",), "properties", "Segment data: list of {field, reference}"
        ),
    ),
)

ENDPOINTS: tuple[Endpoint, ...] = (NON_RESPONSES,)
