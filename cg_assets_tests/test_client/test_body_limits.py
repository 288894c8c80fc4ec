"""The JSON depth pre-scan (body.py) against a reference scanner, on bodies built to trip it:
brackets inside strings, escaped quotes and backslashes, unicode escapes, cut bodies."""

from __future__ import annotations

import json
import random

import orjson
import pytest

from cg_assets.customergauge.body import json_depth


def reference_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects outside strings, byte by byte."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        char = chr(byte)
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


TRICKY_STRINGS = ["[", "]", "{[", '"', '\\"[', "\\", "\\\\", "a]\\\\", "\u0041[", "é{}", ""]


def random_value(rng: random.Random, depth: int) -> object:
    if depth <= 0 or rng.random() < 0.3:
        return rng.choice([1, None, True, rng.choice(TRICKY_STRINGS)])
    if rng.random() < 0.5:
        return [random_value(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(TRICKY_STRINGS) + str(i): random_value(rng, depth - 1) for i in range(3)}


@pytest.mark.parametrize("seed", range(40))
def test_the_depth_is_that_of_a_byte_by_byte_scan(seed):
    rng = random.Random(seed)
    body = orjson.dumps({"data": [random_value(rng, rng.randint(1, 12)) for _ in range(5)]})
    if seed % 2:  # json escapes differently (\u00e9), orjson writes UTF-8
        body = json.dumps(orjson.loads(body)).encode()
    depth = reference_depth(body)
    for limit in range(1, 16):
        verdict = json_depth(body, limit)
        assert (verdict is None) == (depth <= limit), (limit, depth, body[:200])
        if verdict is not None:
            assert verdict > limit


def test_a_cut_body_is_not_too_deep_but_an_unclosed_pile_is():
    page = orjson.dumps({"data": [{"a": {"b": [1, 2]}} for _ in range(100)]})
    assert json_depth(page[: len(page) // 2], 8) is None
    assert json_depth(b"[" * 100, 64) is not None
    assert json_depth(b'{"data": [' + b'"[[[[[[[[[[",' * 1000 + b"1]}", 8) is None


def test_twenty_thousand_levels_are_found_without_recursion():
    body = b'{"data":[' + b"[" * 20_000 + b"]" * 20_000 + b'],"cursor":{"next":1}}'
    assert json_depth(body, 64) == 65
