"""Configured metric sources (`foresight sources add prometheus …`) and their backfill progress, kept in
a small JSON file (FORESIGHT_SOURCES_PATH) written atomically, so an interrupted backfill can resume."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from service.errors import InvalidInput, NotFound


@dataclass
class Source:
    name: str
    url: str
    match: list[str]
    kind: str = "prometheus"
    labels: dict[str, str] = field(default_factory=dict)
    token_env: str | None = None

    def token(self) -> str | None:
        """The bearer token, read from the named environment variable (never stored in the file)."""
        return os.environ.get(self.token_env) if self.token_env else None


@dataclass
class Progress:
    start: float
    end: float
    done_until: float
    step_seconds: float | None = None


class SourceStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _read(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {"sources": {}, "progress": {}}
        try:
            data: dict[str, Any] = json.loads(self.path.read_text())
        except json.JSONDecodeError as error:
            raise InvalidInput(f"{self.path} is not valid JSON ({error}); fix or remove it") from error
        data.setdefault("sources", {})
        data.setdefault("progress", {})
        return data

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(self.path.suffix + ".tmp")
        partial.write_text(json.dumps(data, indent=2, sort_keys=True))
        partial.replace(self.path)  # atomic: a crash leaves the old or the new file, never half of one

    def add(self, source: Source) -> None:
        if not source.match:
            raise InvalidInput("give at least one --match selector, e.g. --match '{job=\"node\"}'")
        if not source.url.startswith(("http://", "https://")):
            raise InvalidInput(f"--url {source.url!r} must start with http:// or https://")
        data = self._read()
        data["sources"][source.name] = asdict(source)
        data["progress"].pop(source.name, None)
        self._write(data)

    def remove(self, name: str) -> None:
        data = self._read()
        if data["sources"].pop(name, None) is None:
            raise NotFound(f"no source named {name!r}; see `foresight sources list`")
        data["progress"].pop(name, None)
        self._write(data)

    def all(self) -> list[Source]:
        return [Source(**item) for _, item in sorted(self._read()["sources"].items())]

    def get(self, name: str) -> Source:
        item = self._read()["sources"].get(name)
        if item is None:
            raise NotFound(f"no source named {name!r}; add it with `foresight sources add prometheus …`")
        return Source(**item)

    def progress(self, name: str) -> Progress | None:
        item = self._read()["progress"].get(name)
        return Progress(**item) if item else None

    def save_progress(self, name: str, progress: Progress) -> None:
        data = self._read()
        data["progress"][name] = asdict(progress)
        self._write(data)
