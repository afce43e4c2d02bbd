"""Request bodies are decoded with bounds: nothing a client sends gets past as anything
but a dict or a UsageError."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.errors import UsageError
from orchestrator.web.json_body import DEFAULT_MAX_DEPTH, MAX_INTEGER, decode_object


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        (b"[" * 100_000, "nested"),
        (b'{"a":' * 100_000, "nested"),
        (b'{"a": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", "nested"),
        (b"\xff\xfe{}", "UTF-8"),
        (b'{"a": "\xed\xa0\x80"}', "UTF-8"),  # a surrogate encoded in the bytes
        (b'{"a": "\\ud800"}', "surrogate"),
        (b'{"\\udfff": 1}', "surrogate"),
        (b'{"a": ["ok", ["\\ud800x"]]}', "surrogate"),
        (b'{"a": NaN}', "NaN"),
        (b'{"a": -Infinity}', "Infinity"),
        (b'{"a": 1e999}', "range"),
        (b'{"a": ' + b"9" * 5000 + b"}", "range"),
        (b'{"a": ' + b"1" * 5000 + b".5}", "range"),
        (b'{"a": %d}' % (MAX_INTEGER + 1), "range"),
        (b'{"a": 1, "a": 2}', "twice"),
        (b"[1, 2]", "object"),
        (b'"text"', "object"),
        (b"", "JSON"),
        (b"\xef\xbb\xbf{}", "JSON"),  # a byte order mark is not JSON
        (b'{"a": "\x00"}', "JSON"),  # a raw control character inside a string
        (b'{"a": "unterminated [[[[', "JSON"),
    ],
)
def test_refused(body: bytes, mentions: str) -> None:
    with pytest.raises(UsageError, match=mentions):
        decode_object(body)


def test_depth_is_counted_to_the_limit() -> None:
    inside = DEFAULT_MAX_DEPTH - 1
    assert decode_object(b'{"a": ' + b"[" * inside + b"]" * inside + b"}") == {
        "a": json.loads("[" * inside + "]" * inside)
    }
    deeper = inside + 1
    with pytest.raises(UsageError, match="nested deeper than 32"):
        decode_object(b'{"a": ' + b"[" * deeper + b"]" * deeper + b"}")
    assert decode_object(b'{"a": [[1]]}', max_depth=3) == {"a": [[1]]}
    with pytest.raises(UsageError, match="nested"):
        decode_object(b'{"a": [[1]]}', max_depth=2)


@pytest.mark.parametrize(
    ("body", "value"),
    [
        (b'{"a": "[[[[{{{{ \\" ]]]"}', {"a": '[[[[{{{{ " ]]]'}),  # brackets in strings
        (b'{"a": "' + b"[" * 10_000 + b'"}', {"a": "[" * 10_000}),
        (b'{"a": "\\\\"}', {"a": "\\"}),
        (b'{"a": "\\ud83d\\ude00"}', {"a": "\U0001f600"}),  # a surrogate pair is one character
        (b'{"a": -9223372036854775807, "b": 0.5, "c": 1e300}',
         {"a": -MAX_INTEGER, "b": 0.5, "c": 1e300}),
        ('{"caf\u00e9": "\u4e2d"}'.encode(), {"caf\u00e9": "\u4e2d"}),
        (b' {"a": null, "b": true, "c": {}} ', {"a": None, "b": True, "c": {}}),
    ],
)
def test_accepted(body: bytes, value: dict[str, object]) -> None:
    assert decode_object(body) == value


@given(st.binary(max_size=300))
def test_any_bytes_give_an_object_or_a_usage_error(body: bytes) -> None:
    with contextlib.suppress(UsageError):
        assert isinstance(decode_object(body), dict)


_JSON_ALPHABET = st.sampled_from(list('[]{}",:\\0123456789.eE+-ntrufalsNIy \ud800'))


@given(st.text(_JSON_ALPHABET, max_size=400))
def test_any_jsonish_text_gives_an_object_or_a_usage_error(text: str) -> None:
    with contextlib.suppress(UsageError):
        assert isinstance(decode_object(text.encode("utf-8", "surrogatepass")), dict)
