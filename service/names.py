"""The one input policy for name-like fields (ids, cluster, metric, label keys and values, key names,
workload and node names), applied at the edge so nothing unprintable is ever stored.

A name is printable Unicode (`str.isprintable`: no C0/C1 controls, NUL, ESC, DEL, no format characters
such as the bidi overrides U+202A-U+202E / U+2066-U+2069 that make `w\u202eevil` display as "wlive", no
line or paragraph separators, no unassigned code points), without leading or trailing whitespace, and of
bounded length. `Name` (and its variants) is a pydantic type, so a violation is a 422 naming the field;
`name_problem` is the same check for code that validates by hand (telemetry batches, CLI input).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

MAX_NAME = 200
MAX_LABEL_VALUE = 200


def name_problem(value: object, *, max_length: int = MAX_NAME, allow_empty: bool = False) -> str | None:
    """Why `value` is not an acceptable name, or None when it is."""
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if not value:
        return None if allow_empty else "must not be empty"
    if len(value) > max_length:
        return f"must be at most {max_length} characters, got {len(value)}"
    if not value.isprintable():
        bad = next(ch for ch in value if not ch.isprintable())
        return f"contains the unprintable character U+{ord(bad):04X}; use printable characters only"
    if value != value.strip():
        return "must not start or end with whitespace"
    return None


def shown(value: str) -> str:
    """`value` safe to print to a terminal: unprintable characters escaped (names stored before this
    policy may hold escape sequences)."""
    return value if value.isprintable() else value.encode("unicode_escape").decode("ascii")


def checked_name(max_length: int, allow_empty: bool = False) -> AfterValidator:
    """The name policy as a pydantic validator (for `Annotated` name types here and in route_names)."""

    def check(value: str) -> str:
        problem = name_problem(value, max_length=max_length, allow_empty=allow_empty)
        if problem:
            raise ValueError(problem)
        return value

    return AfterValidator(check)


# The policy as a JSON-schema pattern, for clients and generators (the validator is the authority: it also
# refuses other unprintable code points)
_BAD = r"\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"
NAME_PATTERN = rf"^[^\s{_BAD}]([^{_BAD}]*[^\s{_BAD}])?$"
_HINT = Field(json_schema_extra={"pattern": NAME_PATTERN})
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME), _HINT, checked_name(MAX_NAME)]
"""A name of 1-200 printable characters without surrounding whitespace."""
ShortName = Annotated[str, Field(min_length=1, max_length=100), _HINT, checked_name(100)]
"""A name of a registered thing (policy, model, trace, profile): 1-100 printable characters."""
LongName = Annotated[str, Field(min_length=1, max_length=400), _HINT, checked_name(400)]
"""A compound name (`namespace/Deployment/name`): 1-400 printable characters."""
LabelValue = Annotated[
    str, Field(max_length=MAX_LABEL_VALUE), checked_name(MAX_LABEL_VALUE, allow_empty=True)
]
"""A label value: like a name, but may be empty."""


Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
"""A real, finite JSON number: not a boolean, not a numeric string, not NaN or Infinity."""


def text_problem(value: str) -> str | None:
    """Why free text (a note, a reason) is unacceptable: unprintable characters other than newline/tab."""
    bad = next((ch for ch in value if not ch.isprintable() and ch not in "\n\t"), None)
    return None if bad is None else f"contains the unprintable character U+{ord(bad):04X}"


def _check_text(value: str) -> str:
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


Text = Annotated[str, Field(max_length=1000), AfterValidator(_check_text)]
"""Free text kept for people (a note, a reason): printable (newlines and tabs allowed), bounded."""
