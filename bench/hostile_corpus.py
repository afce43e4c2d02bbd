"""Hostile text: the strings bad input is made of, shared by the hostile-input benchmark
(bench/hostile_inputs.py) and the property tests over the parsers (tests/unit/
test_properties_*.py), which mix them into what they generate.

Each is a way a parser once let something through or fell over: a trailing newline
(``$`` matches before it), another script's digits (``\\d`` and ``str.isdigit`` take
them, ``int`` takes some and refuses others), numbers past ``int``'s 4,300-digit limit
or past a database integer, lone surrogates (no UTF-8 spelling), NUL and other control
characters, dates past the partition range, a ``gs://`` URI with no bucket.
"""

from __future__ import annotations

HUGE_DIGITS = "9" * 5000
"""Past int()'s default limit of 4,300 digits: ``int(HUGE_DIGITS)`` raises ValueError."""
BIG_DIGITS = "9" * 4000
"""Under that limit, but far past any 64-bit integer a database stores."""
LONE_SURROGATE = "\ud800"
FULL_WIDTH_DAY = "\uff12\uff10\uff11\uff18-\uff11\uff10-\uff13\uff11"  # 2018-10-31
SUPERSCRIPT_TWO = "\u00b2"  # isdigit() says yes, int() says no

HOSTILE_TEXTS: tuple[str, ...] = (
    "",
    " ",
    "\n",
    "2018-10-31\n",
    "2018-10-31\r\n",
    " 2018-10-31",
    "2018-10-31\x00",
    "\x00",
    "plays\n",
    "plays\x00",
    "plays\x7f",
    "plays\t",
    "pl\u0430ys",  # a Cyrillic a
    FULL_WIDTH_DAY,
    "\u0662\u0660\u0661\u0668-\u0661\u0660-\u0663\u0661",  # Arabic-Indic digits
    "2018-1\u00b2-31",
    SUPERSCRIPT_TWO,
    "\uff11\uff12",  # full-width 12
    "\u0661\u0662",  # Arabic-Indic 12
    "1_000",
    "0x10",
    "-1",
    "-0",
    "+1",
    "1e20",
    "1e400",
    "inf",
    "-inf",
    "nan",
    "99999",
    "65536",
    "9223372036854775808",
    "-9223372036854775809",
    BIG_DIGITS,
    HUGE_DIGITS,
    "-" + HUGE_DIGITS,
    "9999-12-31",
    "0001-01-01",
    "0000-00-00",
    "1899-12-31",
    "2201-01-01",
    "2018-02-30",
    "2018-13-01",
    "9999-W52",
    "2018-W00",
    "2018-W54",
    "9999",
    "2012-06-30-2012-06-01",
    LONE_SURROGATE,
    "a" + LONE_SURROGATE + "b",
    "\udcff",  # how surrogateescape spells an undecodable byte
    "gs://",
    "gs:///path",
    "gs://bucket",
    "gs://bucket\n/path",
    "/",
    "/data/\x00/x",
    "/data/x\n",
    "relative/path",
    "file:///etc/passwd",
    "../../etc/passwd",
    "a" * 256,
    "a" * 100_000,
    "x; DROP TABLE revisions",
    "'\"",
    "%00",
    "%ED%A0%80",
    "\u202e",  # right-to-left override
    "\ufeff",  # byte order mark
    "\U0001f600",
    "true",
    "TRUE",
    "null",
    "[]",
    "{}",
)
