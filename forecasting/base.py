"""The one Forecaster contract (docs/architecture.md §6.4) and the registry that names every model.

Configuration goes in the constructor; `fit(frame)` learns from long data; `update(frame)` adds newer
observations without refitting; `predict(horizon)` returns a ForecastFrame; `save`/`load` round-trip the
fitted model including everything learned from the training data.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import pickle
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

import numpy as np
import pandas as pd

from forecasting.data import Key, LongData, Panel, infer_freq, normalize_long_frame
from forecasting.types import (
    DEFAULT_QUANTILES,
    TS,
    ForecastingError,
    InsufficientHistoryError,
    InvalidConfigError,
    InvalidSeriesError,
    NotFittedError,
    UnknownModelError,
    make_forecast_frame,
    validate_quantiles,
)

_ARTIFACT_FORMAT = "foresight-forecaster"
_ARTIFACT_VERSION = 1


class Forecaster(ABC):
    """Abstract base of every forecaster: the public methods validate input, subclasses do the maths."""

    name: ClassVar[str] = "forecaster"

    def __init__(
        self,
        *,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        target_metrics: Sequence[str] | None = None,
        freq: str | pd.Timedelta | None = None,
    ) -> None:
        self.quantiles = validate_quantiles(quantiles)
        self.target_metrics = tuple(str(m) for m in target_metrics) if target_metrics is not None else None
        try:
            self.freq = pd.Timedelta(freq) if freq is not None else None
        except ValueError as exc:
            raise InvalidConfigError(f"freq {freq!r} is not a time span such as '5min' or '1h'") from exc
        if self.freq is not None and self.freq <= pd.Timedelta(0):
            raise InvalidConfigError(f"freq must be positive, got {freq!r}")
        self._fitted = False

    # ---- public contract -------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        """True once `fit` has succeeded."""
        return self._fitted

    def get_params(self) -> dict[str, Any]:
        """Constructor configuration (for the model registry and reproducible re-creation)."""
        params: dict[str, Any] = {}
        for cls in type(self).__mro__:
            if "__init__" not in vars(cls):
                continue
            for pname in inspect.signature(cls.__init__).parameters:  # type: ignore[misc]
                if pname not in ("self", "args", "kwargs") and hasattr(self, pname):
                    params.setdefault(pname, getattr(self, pname))
        return params

    def fit(self, frame: pd.DataFrame) -> Self:
        """Learn from long data (`series_id`, `ts`, `value`, optional `metric` and covariate columns)."""
        data = normalize_long_frame(frame, self.target_metrics)
        if data.frame.empty:
            raise InvalidSeriesError("cannot fit on an empty frame (no finite observations)")
        if not data.targets:
            raise InvalidSeriesError(
                f"no target metrics to forecast: target_metrics={self.target_metrics} matched none of the "
                "metrics in the frame"
            )
        self._fitted = False
        self._fit_data(data, frame)
        self._fitted = True
        return self

    def update(self, frame: pd.DataFrame) -> Self:
        """Add observations (up to a new cutoff) to the model's state without refitting."""
        self._require_fitted()
        data = normalize_long_frame(frame, self.target_metrics)
        if not data.frame.empty:
            self._update_data(data, frame)
        return self

    def predict(self, horizon: int) -> pd.DataFrame:
        """Forecast `horizon` steps after each target series' last observation, as a ForecastFrame."""
        self._require_fitted()
        if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
            raise InvalidConfigError(f"horizon must be a positive integer number of steps, got {horizon!r}")
        return self._predict_frame(int(horizon))

    def save(self, path: str | Path) -> Path:
        """Write the fitted model to one file (pickle; load only artifacts you produced yourself)."""
        self._require_fitted()
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        payload = {"format": _ARTIFACT_FORMAT, "version": _ARTIFACT_VERSION, "name": self.name, "model": self}
        with target.open("wb") as fh:
            pickle.dump(payload, fh, protocol=pickle.HIGHEST_PROTOCOL)
        return target

    @classmethod
    def load(cls, path: str | Path) -> Forecaster:
        """Read a model written by `save`; the class must match `cls` (use Forecaster.load for any)."""
        with Path(path).open("rb") as fh:
            payload = pickle.load(fh)
        if not isinstance(payload, dict) or payload.get("format") != _ARTIFACT_FORMAT:
            raise ForecastingError(f"{path} is not a Foresight forecaster artifact")
        if payload.get("version") != _ARTIFACT_VERSION:
            raise ForecastingError(f"{path} has artifact version {payload.get('version')}, expected 1")
        model = payload["model"]
        if not isinstance(model, cls):
            raise ForecastingError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    # ---- subclass hooks --------------------------------------------------------------------------
    @abstractmethod
    def _fit_data(self, data: LongData, raw: pd.DataFrame) -> None:
        """Fit on cleaned data (`raw` is the caller's frame, for wrappers that refit other models)."""

    @abstractmethod
    def _update_data(self, data: LongData, raw: pd.DataFrame) -> None:
        """Absorb cleaned, non-empty new observations (`raw` as given by the caller)."""

    @abstractmethod
    def _predict_frame(self, horizon: int) -> pd.DataFrame:
        """Produce the ForecastFrame for a validated horizon."""

    def _require_fitted(self) -> None:
        if not self._fitted:
            raise NotFittedError(self.name)


class PanelForecaster(Forecaster):
    """Base for models whose state is recent history on a regular grid (a Panel) plus learned parameters.

    Subclasses implement `_fit`, `_predict` (arrays for `self._targets`) and optionally `_update`,
    `_configure`, `min_history` and `history_needed`.
    """

    def min_history(self) -> int:
        """Fewest observations a target series needs before this model can forecast it."""
        return 1

    def history_hint(self) -> str:
        """Why `min_history` is what it is (shown in InsufficientHistoryError)."""
        return ""

    def history_needed(self) -> int:
        """Grid points of history to keep per series after fit (0 keeps everything)."""
        return 0

    def _configure(self, data: LongData, freq: pd.Timedelta) -> None:
        """Resolve data-dependent configuration (e.g. season length) before fitting."""

    @abstractmethod
    def _fit(self) -> None:
        """Learn parameters from `self._panel` for `self._targets`."""

    def _update(self, changed: list[Key]) -> None:
        """React to new observations of the `changed` keys (default: nothing beyond storing them)."""

    @abstractmethod
    def _predict(self, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """Mean (n, H) and quantiles (n, H, K) for `self._targets`, from each one's last observation."""

    # ---- template methods --------------------------------------------------------------------------
    def _fit_data(self, data: LongData, raw: pd.DataFrame) -> None:
        freq = self.freq if self.freq is not None else infer_freq(data.frame)
        self._freq = freq
        self._target_names = data.targets
        self._configure(data, freq)
        self._panel = Panel(origin=data.frame[TS].min(), freq=freq, keep=0)
        self._panel.add(data.frame)
        self._targets: list[Key] = sorted(k for k in self._panel.keys if k[1] in data.targets)
        self._check_history(self._targets)
        self._fit()
        self._panel.keep = self.history_needed()
        for i in range(len(self._panel.keys)):
            self._panel._trim(i)

    def _update_data(self, data: LongData, raw: pd.DataFrame) -> None:
        changed = self._panel.add(data.frame)
        known = set(self._targets)
        new = [k for k in changed if k[1] in self._target_names and k not in known]
        if new:
            self._targets = sorted([*self._targets, *new])
        self._update(changed)

    def _check_history(self, keys: Sequence[Key]) -> None:
        need = self.min_history()
        for key in keys:
            got = self._panel.n_obs(key)
            if got < need:
                label = key[0] if key[1] == "value" else f"{key[0]}/{key[1]}"
                raise InsufficientHistoryError(self.name, need, got, series=label, hint=self.history_hint())

    def _predict_frame(self, horizon: int) -> pd.DataFrame:
        self._check_history(self._targets)
        mean, q = self._predict(horizon)
        n, k = len(self._targets), len(self.quantiles)
        last = self._panel.last_pos(self._targets)
        steps = np.arange(1, horizon + 1)
        return make_forecast_frame(
            series=np.repeat([key[0] for key in self._targets], horizon),
            metric=np.repeat([key[1] for key in self._targets], horizon),
            cutoff=self._panel.timestamps(np.repeat(last, horizon)),
            timestamp=self._panel.timestamps((last[:, None] + steps[None, :]).ravel()),
            horizon=np.tile(steps, n),
            mean=mean.reshape(-1),
            quantiles=q.reshape(n * horizon, k),
            levels=self.quantiles,
        )


# ---- registry ------------------------------------------------------------------------------------
F = TypeVar("F", bound=Callable[..., Forecaster])

_REGISTRY: dict[str, Callable[..., Forecaster]] = {}
_BUILTIN_MODULES = (
    "forecasting.seasonal_naive",
    "forecasting.seasonal_window",
    "forecasting.vpa_histogram",
    "forecasting.fft_period",
    "forecasting.lightgbm_quantile",
    "forecasting.conformal",
    "forecasting.deep",
    "forecasting.power",
    "forecasting.stats_models",
    "forecasting.auto",
)
DEFAULT_MODEL = "auto"
"""Registry name of the model the service uses when none is asked for."""


def register(name: str) -> Callable[[F], F]:
    """Class/function decorator adding a forecaster factory to the registry under `name`."""

    def deco(factory: F) -> F:
        existing = _REGISTRY.get(name)
        if existing is not None and existing is not factory:
            raise InvalidConfigError(f"a forecaster is already registered as {name!r}")
        _REGISTRY[name] = factory
        return factory

    return deco


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def available_models() -> list[str]:
    """Sorted names of every registered forecaster."""
    _load_builtins()
    return sorted(_REGISTRY)


def create_forecaster(name: str, **config: Any) -> Forecaster:
    """Instantiate the forecaster registered as `name` with constructor `config`."""
    _load_builtins()
    try:
        factory = _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise UnknownModelError(f"unknown model {name!r}; available: {known}") from None
    return factory(**config)


def build_base(
    base: str | Forecaster,
    base_config: Mapping[str, Any],
    quantiles: Sequence[float],
    *,
    target_metrics: Sequence[str] | None = None,
    freq: Any = None,
    force_targets: bool = False,
) -> Forecaster:
    """A fresh, unfitted base model for a wrapper (conformal, power, interference): a deep copy of a
    given instance, or the registry model `base` with the wrapper's quantile levels and, unless its
    config says otherwise, the wrapper's target metrics and frequency (`force_targets` overrides)."""
    if isinstance(base, Forecaster):
        model = copy.deepcopy(base)
        if force_targets and target_metrics is not None:
            model.target_metrics = tuple(target_metrics)
    else:
        cfg: dict[str, Any] = {"quantiles": quantiles, **base_config}
        if target_metrics is not None:
            if force_targets:
                cfg["target_metrics"] = tuple(target_metrics)
            else:
                cfg.setdefault("target_metrics", target_metrics)
        if freq is not None:
            cfg.setdefault("freq", freq)
        model = create_forecaster(base, **cfg)
    if tuple(model.quantiles) != tuple(quantiles):
        raise InvalidConfigError("the base forecaster must use the same quantile levels as the wrapper")
    return model
