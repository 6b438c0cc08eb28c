"""How names and actors read on a page: control characters (and bidirectional overrides, which can
make a name read backwards) shown as visible escapes, and an audit actor as the name of the key."""

from __future__ import annotations

import re
from typing import Any

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_KEY_ACTOR = re.compile(r"^key:(?P<name>.*)#(?P<id>\d+)$")
SYSTEM_ACTORS = {"foresight": "Foresight (policy)", "foresight:loop": "control loop",
                 "foresight:auto": "auto mode"}  # fmt: skip


def visible(text: str) -> str:
    """`text` with every control or invisible formatting character written as an escape (`\\x1b`)."""

    def escape(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _CONTROL.sub(escape, text)


def finalize(value: Any) -> Any:
    """Jinja's finalize hook: plain strings printed into a page get `visible`; markup (tojson, the
    templates' own HTML) is left alone."""
    if isinstance(value, str) and not hasattr(value, "__html__"):  # Markup has __html__
        return visible(value)
    return value


def who(actor: str | None) -> str:
    """An audit actor as a person reads it: the key's name for `key:<name>#<id>`, plain words for
    Foresight's own actors."""
    if not actor:
        return "-"
    found = _KEY_ACTOR.match(actor)
    if found:
        return found.group("name")
    return SYSTEM_ACTORS.get(actor, actor)
