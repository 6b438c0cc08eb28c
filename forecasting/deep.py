"""Registry entries of the deep models from pytorch-forecasting: `tft` and `deepar`.

The classes live in `forecasting.deep_models` (machinery in `forecasting.deep_base`); this module only
registers factories that import them on first use, because importing torch, Lightning and
pytorch-forecasting takes seconds and listing models or running the tree models should not pay for it.
"""

from __future__ import annotations

import importlib
from typing import Any

from forecasting.base import Forecaster, register
from forecasting.types import ForecastingError


def _deep_class(name: str) -> type[Forecaster]:
    try:
        module = importlib.import_module("forecasting.deep_models")
    except ImportError as exc:  # pragma: no cover - the dependency is declared in pyproject.toml
        raise ForecastingError(
            f"deep models need torch and pytorch-forecasting ({exc}); install them (see the Makefile)"
        ) from exc
    cls = getattr(module, name)
    assert isinstance(cls, type) and issubclass(cls, Forecaster)
    return cls


@register("tft")
def tft(**config: Any) -> Forecaster:
    """Temporal Fusion Transformer with quantile loss (see `deep_models.TFTForecaster` for options)."""
    return _deep_class("TFTForecaster")(**config)


@register("deepar")
def deepar(**config: Any) -> Forecaster:
    """DeepAR with a Normal likelihood and sampled quantiles (see `deep_models.DeepARForecaster`)."""
    return _deep_class("DeepARForecaster")(**config)
