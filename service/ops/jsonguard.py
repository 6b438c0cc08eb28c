"""Bounds on a JSON document checked on its bytes, before any parser runs: nesting depth and the length of
number literals. Python's parser recurses once per nesting level (100,000 levels is a RecursionError,
a 500) and refuses integers over 4,300 digits with a ValueError (also a 500); pydantic and the database
then recurse again over what was parsed. No API document needs more than a few levels or numbers longer
than a float's 17 significant digits, so the bounds are generous and still far from the failures.

The scan is linear and vectorised: strings are blanked by one regex (a bracket or digit inside a string
is not structure), then brackets and digit runs are measured with numpy (about 15 ms per MB).
"""

from __future__ import annotations

import re

import numpy as np

MAX_DEPTH = 64
MAX_NUMBER_DIGITS = 1000
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"')


def _structure(body: bytes) -> np.ndarray:
    """The body's bytes with every string blanked to `""`."""
    return np.frombuffer(_STRING.sub(b'""', body) if b'"' in body else body, dtype=np.uint8)


def json_depth(data: np.ndarray) -> int:
    """The deepest nesting of arrays and objects (invalid JSON is counted as far as its brackets go,
    which is all a bound needs)."""
    brackets = data[(data == 91) | (data == 123) | (data == 93) | (data == 125)]  # [ { ] }
    if brackets.size == 0:
        return 0
    steps = np.where((brackets == 91) | (brackets == 123), 1, -1).astype(np.int32)
    return int(np.cumsum(steps).max())


def longest_number(data: np.ndarray) -> int:
    """The longest run of digits (a number literal's integer, fraction or exponent part)."""
    digits = ((data >= 48) & (data <= 57)).view(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], digits, [0])).astype(np.int8)))
    return int((edges[1::2] - edges[0::2]).max()) if edges.size else 0


def json_problem(body: bytes) -> str | None:
    """Why `body` is refused before parsing (nesting or a number too long), or None."""
    opens = body.count(b"[") + body.count(b"{")
    if opens <= MAX_DEPTH and len(body) <= MAX_NUMBER_DIGITS:
        return None
    data = _structure(body)
    if opens > MAX_DEPTH and (depth := json_depth(data)) > MAX_DEPTH:
        return f"JSON nested {depth} levels deep; at most {MAX_DEPTH} levels are accepted"
    if len(body) > MAX_NUMBER_DIGITS and longest_number(data) > MAX_NUMBER_DIGITS:
        return f"a number in the JSON has more than {MAX_NUMBER_DIGITS} digits"
    return None
