"""Forecaster artifacts as bytes (for the registry's `artifact` column) and a small cache of loaded
models per process, keyed by the random uid each registry row gets at training (an artifact never
changes, and unlike row ids a uid cannot repeat across databases, truncations or restores)."""

from __future__ import annotations

import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forecasting import Forecaster

CACHE_SIZE = 16


def to_bytes(model: Forecaster) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        return model.save(Path(folder) / "model.pkl").read_bytes()


def from_bytes(data: bytes) -> Forecaster:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.pkl"
        path.write_bytes(data)
        return Forecaster.load(path)


@dataclass
class LoadedModel:
    """A deserialised model, the newest observation it has seen, and a lock for update+predict."""

    model: Forecaster
    seen_until_us: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    predictions: dict[int, Any] = field(default_factory=dict)
    """Predictions by horizon — each a dict (entity, metric) -> its ForecastFrame rows by horizon — valid
    while no new observation arrived (cleared on update)."""
    stored: set[tuple[int, int]] = field(default_factory=set)
    """(series id, cutoff µs) already written to the forecasts table by this process."""
    live_description: dict[str, Any] | None = None
    """The model's own description since new data changed its weights (`auto`'s online weights); None:
    the one stored at training still holds."""


class ModelCache:
    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model_id: str) -> LoadedModel | None:
        with self._lock:
            item = self._items.get(model_id)
            if item is not None:
                self._items.move_to_end(model_id)
            return item

    def put(self, model_id: str, item: LoadedModel) -> LoadedModel:
        with self._lock:
            item = self._items.setdefault(model_id, item)
            self._items.move_to_end(model_id)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
            return item


MODELS = ModelCache()
