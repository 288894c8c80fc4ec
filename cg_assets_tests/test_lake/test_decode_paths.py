"""Every decode path gives the same batch, or the same error, on the simulator's data.

A sync reads each page body once: the client hands it to `RecordDecoder.read_page` (Arrow's
JSON reader: records and cursor), and `decode` assembles the batch from Arrow's arrays. A
body that reader declines goes the client's Python-object way (orjson dicts), then Arrow on
the body with those dicts, Arrow's conversion of the dicts, or the exact column-by-column
path, which names a bad record. Those paths must not differ in what lands in the lake:
here they meet unicode, nulls, empty dates, fields the table does not declare, and every
break `mutate` knows. `benchmarks/check_decode.py` runs the same check over more pages.
"""

from __future__ import annotations

import copy
import datetime as dt
import random
from typing import Any

import orjson
import pyarrow as pa
import pytest

from cg_assets.customergauge import wire
from cg_assets.customergauge.client import CustomerGaugeClient, Period
from cg_assets.customergauge.endpoints import NON_RESPONSES, RESPONSES, Endpoint
from cg_assets.lake.decode import RecordDecoder
from cg_assets.lake.envelope import ArrowPage
from cg_assets_tests.conftest import SIM_START
from cg_assets_tests.truth import DATE_FIELDS
from cg_simulator import SimulatorControl
from cg_simulator.dataset import Dataset

SYNCED = dt.datetime(2026, 11, 2, 10, 0, tzinfo=dt.timezone.utc)
ENDPOINTS = (NON_RESPONSES, RESPONSES)
TEXT_FIELDS = ("status", "number_customer", "number_order", "email", "phone", "language", "link")
UNICODE = 'Zoë 伟 \u2028 \\ " \n \U0001f600 \u0000'
ODD_VALUES: tuple[Any, ...] = (
    None,
    "",
    "x",
    "123",
    0,
    7,
    -3,
    1.5,
    2.0,
    True,
    False,
    [],
    ["a"],
    {},
    {"a": 1},
    UNICODE,
    2**70,
)
ODD_DATES: tuple[Any, ...] = (
    "",
    "0000-00-00 00:00:00",
    None,
    "2026-02-31 10:00:00",
    "2026-1-1 00:00:00",
    "2026-10-01T10:00:00",
    "2026-10-01 10:00:00Z",
    "2026-10-01",
    "2026-10-01 24:00:00",
    " 2026-10-01 10:00:00",
    12,
    "\uff12\uff10\uff12\uff16-10-01 10:00:00",  # full-width digits
)


def simulator_records(endpoint: Endpoint, seed: int = 1) -> list[dict[str, Any]]:
    dataset = Dataset(
        records=400,
        start=dt.date(2026, 10, 1),
        end=dt.date(2026, 10, 3),
        seed=seed,
        respond_share=0.5,
    )
    return dataset.records() if endpoint is NON_RESPONSES else dataset.responses()


def mutate(record: dict[str, Any], rng: random.Random) -> str:
    """Break one record in one way; returns what was done."""
    kind = rng.choice(
        [
            "text",
            "date",
            "key",
            "drop",
            "nested",
            "nested_value",
            "properties",
            "property_item",
            "unknown_top",
            "unknown_nested",
            "unknown_property_key",
        ]
    )
    if kind == "text":
        record[rng.choice(TEXT_FIELDS)] = rng.choice(ODD_VALUES)
    elif kind == "date":
        record[rng.choice(DATE_FIELDS)] = rng.choice(ODD_DATES)
    elif kind == "key":
        record["number_customergauge"] = rng.choice(
            [None, "3400003", "x", 1.0, 2.5, True, -1, 0, 2**63 - 1, 2**63, "٣٤"]
        )
    elif kind == "drop":
        record.pop(rng.choice(list(record)), None)
    elif kind == "nested":
        record[rng.choice(["contact", "account"])] = rng.choice(ODD_VALUES)
    elif kind == "nested_value":
        parent = rng.choice(["contact", "account"])
        if isinstance(record.get(parent), dict):
            child = rng.choice(list(record[parent]) or ["name"])
            record[parent][child] = rng.choice(ODD_VALUES)
    elif kind == "properties":
        record["properties"] = rng.choice(ODD_VALUES)
    elif kind == "property_item":
        props = record.get("properties")
        if isinstance(props, list) and props:
            i = rng.randrange(len(props))
            if rng.random() < 0.5:
                props[i] = rng.choice(ODD_VALUES)
            elif isinstance(props[i], dict):
                props[i][rng.choice(["field", "reference"])] = rng.choice(ODD_VALUES)
    elif kind == "unknown_top":
        record[rng.choice(["survey_id", "channel", "date_reminded"])] = rng.choice(ODD_VALUES)
    elif kind == "unknown_nested":
        parent = rng.choice(["contact", "account"])
        if isinstance(record.get(parent), dict):
            record[parent][rng.choice(["email", "segment"])] = rng.choice(ODD_VALUES)
    elif kind == "unknown_property_key":
        props = record.get("properties")
        if isinstance(props, list) and props and isinstance(props[0], dict):
            props[0]["extra"] = rng.choice(ODD_VALUES)
    return kind


def page_body(records: list[dict[str, Any]], cursor: Any = 1) -> bytes:
    return orjson.dumps(
        {wire.BODY_DATA: records, wire.BODY_CURSOR: {wire.BODY_CURSOR_NEXT: cursor}}
    )


def outcome(fn: Any, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    try:
        return "batch", fn(*args, **kwargs)
    except Exception as exc:  # compared by type and message
        return "error", f"{type(exc).__name__}: {exc}"


def shown(result: tuple[str, Any]) -> Any:
    return result[1] if result[0] == "error" else result[1].to_pylist()


class Paths:
    """One decoder per path, each kept across pages as a sync keeps its own (a decoder
    remembers whether the last page had undeclared fields)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.one_parse, self.body, self.dicts, self.exact = (endpoint.decoder() for _ in range(4))
        self.taken = {"one_parse": 0, "declined": 0}

    def agree(self, body: bytes, where: str) -> bool:
        """Decodes `body` along every path; asserts they agree. True: one parse served it."""
        decoded = orjson.loads(body)
        records = decoded[wire.BODY_DATA]
        results = {
            "one_parse": self._one_parse(body, decoded, where),
            "body": outcome(self.body.decode, records, SYNCED, where, body=body),
            "dicts": outcome(self.dicts.decode, records, SYNCED, where),
            "exact": outcome(self.exact._decode_exact, records, SYNCED, where),
        }
        exact = results["exact"]
        for name, result in results.items():
            assert result[0] == exact[0], (name, shown(result), shown(exact), body[:2000])
            if result[0] == "error":
                assert result[1] == exact[1], (name, body[:2000])
            else:
                assert result[1].schema.equals(exact[1].schema, check_metadata=True)
                assert result[1].equals(exact[1]), (name, shown(result), shown(exact))
        return self._last_was_one_parse

    def _one_parse(self, body: bytes, decoded: dict[str, Any], where: str) -> tuple[str, Any]:
        """What a sync does: the client's reader first, the client's dicts if it declines."""
        content = self.one_parse.read_page(body)
        self._last_was_one_parse = content is not None
        if content is None:
            self.taken["declined"] += 1
            return outcome(self.one_parse.decode, decoded[wire.BODY_DATA], SYNCED, where, body=body)
        self.taken["one_parse"] += 1
        records = decoded[wire.BODY_DATA]
        # The cursor and the count come from Arrow's read, and match the client's own.
        assert content.count == len(records)
        assert content.next_cursor == CustomerGaugeClient._parse_body(decoded, where)[1]
        assert isinstance(content.records, ArrowPage)
        return outcome(self.one_parse.decode, content.records, SYNCED, where)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_clean_simulator_pages_take_one_parse_and_agree(endpoint: Endpoint):
    base = simulator_records(endpoint)
    paths = Paths(endpoint)
    for start in range(0, len(base), 50):
        assert paths.agree(page_body(base[start : start + 50], cursor=start + 50), f"page {start}")
    assert paths.taken["declined"] == 0


def test_a_page_with_only_declared_fields_is_not_decoded_to_dicts():
    """The happy path of non_responses: Arrow's read is the page's only parse."""
    decoder = NON_RESPONSES.decoder()
    content = decoder.read_page(page_body(simulator_records(NON_RESPONSES)[:50], cursor=77))
    assert content is not None and content.count == 50 and content.next_cursor == 77
    assert content.records.objects is None and not content.records.undeclared


def test_responses_keep_their_undeclared_fields_on_the_happy_path():
    base = simulator_records(RESPONSES)[:20]
    decoder = RESPONSES.decoder()
    for _ in range(2):  # the second page is read skipping undeclared fields: same batch
        content = decoder.read_page(page_body(base))
        assert content is not None and content.records.undeclared
        batch = decoder.decode(content.records, SYNCED, "page")
        exact = RESPONSES.decoder()._decode_exact(base, SYNCED, "page")
        assert batch.equals(exact) and batch.column("extra_fields").null_count < len(base)


def with_every(records: list[dict[str, Any]], change: Any) -> list[dict[str, Any]]:
    out = copy.deepcopy(records)
    for r in out:
        change(r)
    return out


def set_text(value: Any) -> Any:
    def change(r: dict[str, Any]) -> None:
        for name in TEXT_FIELDS:
            r[name] = value
        r["contact"] = {"first_name": value, "last_name": value}
        r["properties"] = [{"field": value, "reference": value}, None]

    return change


def set_dates(value: Any) -> Any:
    def change(r: dict[str, Any]) -> None:
        for name in DATE_FIELDS:
            r[name] = value

    return change


def set_unknown(make: Any) -> Any:
    def change(r: dict[str, Any]) -> None:
        r["survey_id"] = make(r)
        if isinstance(r.get("contact"), dict):
            r["contact"]["segment"] = make(r)
        if isinstance(r.get("properties"), list) and r["properties"]:
            r["properties"][0]["extra"] = make(r)

    return change


def drop_optional(r: dict[str, Any]) -> None:
    for name in [n for n in r if n != "number_customergauge"]:
        del r[name]


CASES: dict[str, Any] = {
    "unicode": set_text(UNICODE),
    "unicode_keys": lambda r: r.update({"zoë_伟": UNICODE}),
    "nulls": set_text(None),
    "null_objects": lambda r: r.update({"contact": None, "account": None, "properties": None}),
    "missing_fields": drop_optional,
    "empty_dates": set_dates(""),
    "zero_dates": set_dates("0000-00-00 00:00:00"),
    "null_dates": set_dates(None),
    "unknown_fields": set_unknown(lambda r: {"n": 1, "tags": ["a", UNICODE]}),
    "unknown_null": set_unknown(lambda r: None),
    "unknown_mixed_types": set_unknown(lambda r: r["number_customergauge"] % 2 or "odd"),
    "bad_date": lambda r: r.update({"date_sent": "2026-02-31 10:00:00"}),
    "text_number": lambda r: r.update({"number_order": 12}),
    "missing_key": lambda r: r.pop("number_customergauge"),
}


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
@pytest.mark.parametrize("case", sorted(CASES))
def test_the_paths_agree_on(endpoint: Endpoint, case: str):
    records = with_every(simulator_records(endpoint)[:30], CASES[case])
    paths = Paths(endpoint)
    one_parse = paths.agree(page_body(records), f"{case} page")
    # Unicode, nulls, empty dates and unknown fields are no break of the contract: one
    # parse serves them (what Arrow cannot unify, an int here and a string there, is
    # read skipping it, still without the dicts path deciding).
    if case in {"unicode", "nulls", "null_objects", "missing_fields", "empty_dates"}:
        assert one_parse


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
@pytest.mark.parametrize("seed", [1, 2])
def test_the_paths_agree_on_broken_simulator_pages(endpoint: Endpoint, seed: int):
    counts = check_pages(endpoint, pages=150, seed=seed)
    assert counts["one_parse"] and counts["declined"]  # both ways were exercised


def check_pages(endpoint: Endpoint, pages: int, seed: int) -> dict[str, int]:
    """`pages` pages of simulator records, three in four broken; every path must agree."""
    rng = random.Random(seed)
    base = simulator_records(endpoint, seed)
    paths = Paths(endpoint)
    for number in range(pages):
        records = copy.deepcopy(rng.sample(base, rng.choice([1, 2, 5, 50])))
        if number % 4:
            for _ in range(rng.choice([1, 1, 2, 3])):
                mutate(rng.choice(records), rng)
        try:
            body = page_body(records)
        except TypeError:  # an int past 64 bits: orjson cannot write it, the API would not
            continue
        if number % 4 and rng.random() < 0.05:
            # a repeated key in the JSON text: orjson keeps the last value, Arrow declines
            body = body.replace(b'"status":', b'"status":"dup","status":', 1)
        paths.agree(body, f"page {number}")
    return paths.taken


# -- the envelope: what the reader declines, the client's own checks see ----------------

ENVELOPES = (
    b'{"data":[],"cursor":{"next":5}}',
    b'{"data":[]}',
    b'{"data":[],"cursor":null}',
    b'{"data":[],"cursor":{}}',
    b'{"data":[],"cursor":{"next":null}}',
    b'{"data":[],"cursor":{"next":"abc"}}',
    b'{"data":[],"cursor":"abc"}',
    b'{"data":[],"cursor":{"next":true}}',
    b'{"data":[],"cursor":{"next":1.5}}',
    b'{"data":[],"cursor":{"next":99999999999999999999}}',
    b'{"data":[],"cursor":{"next":5,"prev":3},"meta":{"x":[1,"a"]}}',
    b'{\n  "data": [],\n  "cursor": {"next": 5}\n}\n',
    b'{"data":null,"cursor":{"next":5}}',
    b'{"cursor":{"next":5}}',
    b'{"data":{},"cursor":{"next":5}}',
    b'{"data":[null],"cursor":{"next":5}}',
    b'{"data":[1,2],"cursor":{"next":5}}',
    b'{"data":[{"number_customergauge":1}],"data":[],"cursor":{"next":5}}',
    b"[]",
    b"null",
    b"<html>502</html>",
    b'{"data":[',
    b"",
    b'{"data":[{"number_customergauge":1,"email":"a\xff\xfeb"}],"cursor":{"next":5}}',
    b'{"data":[{"number_customergauge":1,"survey":"a\xffb"}],"cursor":{"next":5}}',
    b'{"data":[{"number_customergauge":1,"email":"\\ud800"}],"cursor":{"next":5}}',
    b'{"data":[{"number_customergauge":1,"x":NaN}],"cursor":{"next":5}}',
    b'\xef\xbb\xbf{"data":[],"cursor":{"next":5}}',
    b'{"data":[],"cursor":{"next":5}} // more',
)


@pytest.mark.parametrize("body", ENVELOPES, ids=range(len(ENVELOPES)))
def test_the_reader_declines_or_agrees_with_the_client_on_the_envelope(body: bytes):
    content = NON_RESPONSES.decoder().read_page(body)
    if content is None:
        return  # the client decodes the body itself: its messages and retries hold
    # What the reader takes, the client's own path reads too (no broken body slips past
    # its retry), with the same count and cursor.
    decoded = orjson.loads(body)
    data, next_cursor = CustomerGaugeClient._parse_body(decoded, "page")
    assert (content.count, content.next_cursor) == (len(data), next_cursor)


# -- over HTTP: a sync's pages with and without the reader ------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_paging_the_simulator_with_one_parse_gives_the_same_pages(
    endpoint: Endpoint, client: CustomerGaugeClient, control: SimulatorControl
):
    day = SIM_START + dt.timedelta(days=1)
    if endpoint is RESPONSES:
        control.respond_records(day=day, count=120)  # answers land on this day: several pages
    period = Period(endpoint.period_fields[0], day, day)

    def sync(decoder: RecordDecoder, *, one_parse: bool) -> tuple[list[Any], pa.Table]:
        pages = list(
            client.iter_pages(
                endpoint.path,
                period=period,
                expand=endpoint.expand,
                reader=decoder.read_page if one_parse else None,
            )
        )
        batches = [
            decoder.decode(p.records, SYNCED, f"page {p.number}", body=p.body)
            for p in pages
            if p.count
        ]
        paging = [(p.number, p.count, p.cursor, p.sent_cursor) for p in pages]
        if one_parse:
            assert all(isinstance(p.records, ArrowPage) for p in pages)
        return paging, pa.Table.from_batches(batches, schema=decoder.schema)

    paging, table = sync(endpoint.decoder(), one_parse=True)
    assert (paging, table) == sync(endpoint.decoder(), one_parse=False)
    assert len(paging) > 2 and table.num_rows > 0


# A fault on the second page (the first is left alone by a `slow` of 0 s), injected afresh
# for the run with the reader and the run without: both must end alike.
WIRE_FAULTS: dict[str, dict[str, Any]] = {
    "html": {"kind": "html"},
    "truncate": {"kind": "truncate"},
    "null_body": {"kind": "status", "code": 200, "body": "null"},
    "list_body": {"kind": "status", "code": 200, "body": "[]"},
    "data_not_a_list": {"kind": "status", "code": 200, "body": {"data": {"a": 1}}},
    "string_cursor": {"kind": "status", "code": 200, "body": {"data": [], "cursor": {"next": "z"}}},
    "bool_cursor": {"kind": "status", "code": 200, "body": {"data": [], "cursor": {"next": True}}},
    "bad_data": {"kind": "bad_data"},
    "stuck_cursor": {"kind": "stuck_cursor"},
    "omit_cursor": {"kind": "omit_cursor"},
}


@pytest.mark.parametrize("fault", sorted(WIRE_FAULTS))
def test_with_and_without_the_reader_a_broken_page_ends_alike(
    fault: str, client: CustomerGaugeClient, control: SimulatorControl
):
    """Retries of a broken 200, contract errors and their messages, the paging checks:
    the same with the one-parse reader as with the client's own Python-object path."""
    day = SIM_START + dt.timedelta(days=1)
    period = Period("date_sent", day, day)

    def run(one_parse: bool) -> tuple[Any, ...]:
        control.clear_faults()
        control.inject({"kind": "slow", "seconds": 0}, {**WIRE_FAULTS[fault], "times": 2})
        before = client.stats.snapshot()
        decoder = NON_RESPONSES.decoder()
        try:
            pages = list(
                client.iter_pages(
                    NON_RESPONSES.path,
                    period=period,
                    expand=NON_RESPONSES.expand,
                    reader=decoder.read_page if one_parse else None,
                )
            )
        except Exception as exc:
            ended: tuple[Any, ...] = ("error", type(exc).__name__, str(exc))
        else:
            keys = [
                k
                for p in pages
                if p.count
                for k in decoder.decode(p.records, SYNCED, "page", body=p.body)
                .column(NON_RESPONSES.key)
                .to_pylist()
            ]
            ended = ("pages", [(p.count, p.cursor, p.sent_cursor) for p in pages], keys)
        return (*ended, dict(client.stats.since(before).retries))

    with_reader = run(one_parse=True)
    assert with_reader == run(one_parse=False), with_reader
