"""lake/drift.py: paths and counts of untyped fields, typed columns never filled."""

from __future__ import annotations

import pyarrow as pa

from cg_assets.lake.columns import EXTRA_FIELDS_COLUMN
from cg_assets.lake.drift import DayDrift, _walk_texts, extra_paths

TEXTS = [
    '{"survey_id": 9, "contact": {"title": "Dr"}, "properties": [{}, {"field_id": 12}]}',
    None,
    '{"survey_id": 3, "notes": null, "tags": ["a", "b"]}',
]


def test_paths_name_nested_fields_and_list_items_with_counts_of_values():
    assert extra_paths(pa.array(TEXTS, pa.string())) == {
        "survey_id": 2,
        "contact.title": 1,
        "properties[].field_id": 1,
        "notes": 0,
        "tags[]": 2,
    }


def test_mixed_types_arrow_cannot_infer_are_walked_to_the_same_paths():
    mixed = ['{"a": 1, "b": {"c": 2}}', '{"a": "x", "b": {"c": "y"}}']
    assert extra_paths(pa.array(mixed)) == {"a": 2, "b.c": 2}
    # the walk agrees with Arrow where Arrow can infer
    assert _walk_texts(t for t in TEXTS if t) == extra_paths(pa.array(TEXTS, pa.string()))


def test_a_typed_column_null_in_every_row_of_a_non_empty_day_is_named():
    drift = DayDrift(["key", "email", "never_sent"], never_null_checked=["email"])
    assert drift.null_columns == []  # an empty day names nothing
    for start in (0, 2):
        drift.observe(
            pa.table(
                {
                    "key": [start, start + 1],
                    "email": pa.nulls(2, pa.string()),  # dropped by the privacy mode: skipped
                    "never_sent": pa.nulls(2, pa.string()),
                    EXTRA_FIELDS_COLUMN: ['{"x": 1}', None],
                }
            )
        )
    assert drift.null_columns == ["never_sent"]
    assert drift.extra_field_paths == {"x": 2}
    assert drift.new_paths({"y"}) == ["x"]
