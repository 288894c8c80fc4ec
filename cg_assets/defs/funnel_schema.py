"""The funnel table's name and schema: what the lake IO manager needs of the funnel, in a
module of its own, so that io_managers.py need not import the funnel (which imports it).
"""

import pyarrow as pa

FUNNEL_TABLE = "survey_funnel"

_COUNT = pa.int64()
# Counts are nullable: null when their table's day has not been synced (UNKNOWN_WITHOUT).
FUNNEL_SCHEMA = pa.schema(
    [
        pa.field("sent", _COUNT),
        pa.field("responded", _COUNT),
        pa.field("non_responses", _COUNT),
        pa.field("response_rate", pa.float64()),
        pa.field("failed", _COUNT),
        pa.field("opened", _COUNT),
        pa.field("clicked", _COUNT),
        pa.field("promoters", _COUNT),
        pa.field("passives", _COUNT),
        pa.field("detractors", _COUNT),
        pa.field("nps", pa.float64()),
        pa.field("computed_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)
FUNNEL_COLUMNS = {
    "sent": "records in both tables (an invitation is answered or not, never both)",
    "responded": "records in responses",
    "non_responses": "records in non_responses",
    "response_rate": "responded / sent; null when nothing was sent or a table is unknown",
    "failed": "non-responses whose status names a failure or a bounce",
    "opened": "non-responses opened (their date or status says so)",
    "clicked": "non-responses clicked (their date or status says so)",
    "promoters": "responses whose nps is 9-10",
    "passives": "responses whose nps is 7-8",
    "detractors": "responses whose nps is 0-6",
    "nps": "% promoters - % detractors of the scored responses (-100..100); null if none",
    "computed_at": "when the row was computed",
}
