"""Shared machinery of the pytorch-forecasting models (TFT, DeepAR) behind the one Forecaster contract.

The Panel (regular grid, gaps forward-filled) becomes a long frame for a `TimeSeriesDataSet`: one group per
target (entity, metric), the metric as a static categorical, calendar sin/cos as known reals, and, for
models that can use them, the other metrics of the same entity as past-only covariates (HARMONY-style).
The target is normalised per sample on its encoder window (`EncoderNormalizer`), so new series and level
shifts need no refit and nothing after a cutoff is ever read. The dataset parameters fitted on the
training data (scalers, encoders, normaliser) are kept and every prediction dataset is built from them
with `TimeSeriesDataSet.from_parameters`. Training runs on CPU with Lightning, seeded and deterministic,
without progress bars, checkpoints or logs (its scratch directory is a temporary one); prediction runs the
network directly in eval mode, so it needs no Trainer. Artifacts store the network as class, hyper-
parameters and weights, next to the dataset parameters.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from abc import abstractmethod
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.utilities.seed import isolate_rng
from numpy.typing import ArrayLike
from pytorch_forecasting import TimeSeriesDataSet
from pytorch_forecasting.data.encoders import EncoderNormalizer, NaNLabelEncoder
from pytorch_forecasting.models.base_model import BaseModel
from sklearn.preprocessing import StandardScaler

from forecasting.base import PanelForecaster
from forecasting.data import Key, LongData, ffill_rows, series_scale
from forecasting.types import DEFAULT_QUANTILES, InsufficientHistoryError, InvalidConfigError

_DAY_NS = 86_400 * 1_000_000_000
_CALENDAR = ("day_sin", "day_cos", "week_sin", "week_cos")
_QUIET_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning")


class _PlainStandardScaler(StandardScaler):
    """StandardScaler whose transform is bare numpy: the dataset rescales the target's centre and scale
    once per training sample, and sklearn's input validation made that half of the training time."""

    def transform(self, X: ArrayLike, copy: bool | None = None) -> np.ndarray:
        return (np.asarray(X, dtype=float) - self.mean_) / self.scale_


@contextmanager
def quiet() -> Iterator[None]:
    """Silence Lightning's info logs and the library warnings of dataset building and training."""
    loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with `n` intra-op torch threads (0 keeps torch's own choice), restoring the previous count."""
    before = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n > 0:
            torch.set_num_threads(before)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed every RNG and switch on deterministic torch kernels, restoring the caller's state afterwards."""
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    with isolate_rng():
        pl.seed_everything(seed, workers=True, verbose=False)
        torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(was_deterministic)


class PytorchForecaster(PanelForecaster):
    """Base of the pytorch-forecasting models: data conversion, training, prediction and artifacts.

    Common configuration (all keyword-only): `max_horizon` (decoder length; predict up to it),
    `max_encoder_length` / `min_encoder_length` (history window fed to the network; the minimum is also
    the fewest observations a series needs, default a quarter of the maximum, at least 2), `hidden_size`,
    `dropout`, `learning_rate`, `batch_size`, `max_epochs`, `limit_train_batches` (batches per epoch, so
    training time is bounded whatever the data size), `gradient_clip_val`, `predict_batch_size`,
    `calendar` (hour-of-day / day-of-week features for sub-daily data), `covariates` and
    `max_covariate_metrics` (other metrics of the same entity as inputs), `num_threads` (torch threads
    during fit/predict, default 1, 0 = torch's own choice: networks this small gain little from intra-op
    threads, and two threads on a busy 2-core machine ran 20x slower than one), `seed`.
    """

    name = "pytorch_forecasting"
    uses_covariates: ClassVar[bool] = True
    """Whether the network can take past-only covariates (TFT yes; DeepAR needs encoder == decoder inputs)."""

    def __init__(
        self,
        *,
        max_horizon: int = 24,
        max_encoder_length: int = 96,
        min_encoder_length: int | None = None,
        hidden_size: int = 32,
        dropout: float = 0.1,
        learning_rate: float = 3e-3,
        batch_size: int = 64,
        max_epochs: int = 10,
        limit_train_batches: int = 100,
        gradient_clip_val: float = 0.1,
        predict_batch_size: int = 256,
        calendar: bool = True,
        covariates: bool = True,
        max_covariate_metrics: int = 8,
        num_threads: int = 1,
        seed: int = 0,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        target_metrics: Sequence[str] | None = None,
        freq: str | pd.Timedelta | None = None,
    ) -> None:
        super().__init__(quantiles=quantiles, target_metrics=target_metrics, freq=freq)
        if max_horizon < 1 or max_encoder_length < 2:
            raise InvalidConfigError("max_horizon must be >= 1 and max_encoder_length >= 2")
        if min_encoder_length is not None and not 2 <= min_encoder_length <= max_encoder_length:
            raise InvalidConfigError(
                f"min_encoder_length must lie in [2, max_encoder_length={max_encoder_length}], "
                f"got {min_encoder_length}"
            )
        if min(hidden_size, batch_size, max_epochs, limit_train_batches, predict_batch_size) < 1:
            raise InvalidConfigError(
                "hidden_size, batch_size, max_epochs, limit_train_batches, predict_batch_size must be >= 1"
            )
        if num_threads < 0:
            raise InvalidConfigError(f"num_threads must be >= 0 (0 = torch's default), got {num_threads}")
        if not 0.0 <= dropout < 1.0 or learning_rate <= 0 or gradient_clip_val < 0:
            raise InvalidConfigError("dropout must be in [0, 1), learning_rate > 0, gradient_clip_val >= 0")
        self.max_horizon = max_horizon
        self.max_encoder_length = max_encoder_length
        self.min_encoder_length = min_encoder_length
        self.hidden_size = hidden_size
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.limit_train_batches = limit_train_batches
        self.gradient_clip_val = gradient_clip_val
        self.predict_batch_size = predict_batch_size
        self.calendar = calendar
        self.covariates = covariates
        self.max_covariate_metrics = max_covariate_metrics
        self.num_threads = num_threads
        self.seed = seed

    # ---- model-specific hooks ------------------------------------------------------------------------
    @abstractmethod
    def _build_net(self, dataset: TimeSeriesDataSet) -> BaseModel:
        """Create the untrained network from the training dataset."""

    @abstractmethod
    def _forward(self, net: BaseModel, x: dict[str, torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
        """Mean (B, H) and quantiles (B, H, K) in data units for one batch (network in eval mode)."""

    # ---- configuration -------------------------------------------------------------------------------
    @property
    def encoder_min(self) -> int:
        """Fewest history steps the network accepts (the resolved `min_encoder_length`)."""
        if self.min_encoder_length is not None:
            return self.min_encoder_length
        return max(2, self.max_encoder_length // 4)

    def min_history(self) -> int:
        return self.encoder_min

    def history_hint(self) -> str:
        return f"min_encoder_length={self.encoder_min} steps feed the network; lower min_encoder_length"

    def history_needed(self) -> int:
        return self.max_encoder_length

    def _configure(self, data: LongData, freq: pd.Timedelta) -> None:
        frame = data.frame
        cov: tuple[str, ...] = ()
        per_entity = frame.groupby("series_id")["metric"].nunique()
        if self.uses_covariates and self.covariates and (per_entity > 1).any():
            counts = Counter(frame.drop_duplicates(["series_id", "metric"])["metric"])
            cov = tuple(sorted(m for m, _ in counts.most_common(self.max_covariate_metrics)))
        self._cov_metrics = cov
        self._use_calendar = self.calendar and freq < pd.Timedelta(days=1)
        self._origin_ns = int(frame["ts"].min().value)
        self._freq_ns = int(freq.value)

    # ---- panel -> long frame for pytorch-forecasting -------------------------------------------------
    def _norm_of(self, key: Key, values: np.ndarray) -> tuple[float, float]:
        """Frozen (centre, scale) of a covariate series, taken from the history first seen."""
        if key not in self._norms:
            finite = values[np.isfinite(values)]
            centre = float(finite.mean()) if len(finite) else 0.0
            self._norms[key] = (centre, series_scale(values))
        return self._norms[key]

    def _calendar(self, pos: np.ndarray) -> dict[str, np.ndarray]:
        ns = self._origin_ns + pos.astype(np.int64) * self._freq_ns
        day = (ns % _DAY_NS) / _DAY_NS
        week = (((ns // _DAY_NS) + 3) % 7 + day) / 7.0  # 1970-01-01 was a Thursday; Monday = 0
        return {
            "day_sin": np.sin(2 * np.pi * day), "day_cos": np.cos(2 * np.pi * day),
            "week_sin": np.sin(2 * np.pi * week), "week_cos": np.cos(2 * np.pi * week),
        }  # fmt: skip

    def _long_frame(
        self, keys: Sequence[Key], first: np.ndarray, last: np.ndarray, future: int
    ) -> pd.DataFrame:
        """Rows first..last (+`future` placeholder steps) per key; values forward-filled, covariates scaled.

        Placeholder future rows repeat the values at the cutoff; the networks never read them as inputs (TFT
        feeds only known inputs to its decoder, DeepAR samples its own path), but the dataset needs the rows.
        """
        lengths = (last - first + 1 + future).astype(np.int64)
        end = last + future
        pos = np.concatenate([np.arange(a, b + 1) for a, b in zip(first, end, strict=True)])
        group = np.repeat(np.arange(len(keys)), lengths)
        value = np.concatenate(
            [
                ffill_rows(self._panel.window([k], np.array([e]), n))[0]
                for k, e, n in zip(keys, end, lengths, strict=True)
            ]
        )
        cols: dict[str, Any] = {
            "group": group.astype(str),
            "time_idx": pos,
            "metric": np.repeat([k[1] for k in keys], lengths),
            "value": value,
        }
        for j, metric in enumerate(self._cov_metrics):
            parts = []
            for (entity, _), e, n in zip(keys, end, lengths, strict=True):
                ckey = (entity, metric)
                raw = self._panel.window([ckey], np.array([e]), n)[0]
                raw[n - future :] = np.nan  # placeholders repeat the value at the cutoff, never later data
                if ckey not in self._panel.index or not np.isfinite(raw).any():
                    parts.append(np.zeros(n))
                    continue
                centre, scale = self._norm_of(ckey, self._panel.values[self._panel.index[ckey]])
                parts.append((ffill_rows(raw[None, :])[0] - centre) / scale)
            cols[f"cov_{j}"] = np.concatenate(parts)
        if self._use_calendar:
            cols.update(self._calendar(pos))
        return pd.DataFrame(cols)

    def _dataset_spec(self) -> dict[str, Any]:
        return {
            "time_idx": "time_idx",
            "target": "value",
            "group_ids": ["group"],
            "max_encoder_length": self.max_encoder_length,
            "min_encoder_length": self.encoder_min,
            "max_prediction_length": self.max_horizon,
            "min_prediction_length": self.max_horizon,
            "static_categoricals": ["metric"],
            "time_varying_known_reals": list(_CALENDAR) if self._use_calendar else [],
            "time_varying_unknown_reals": ["value", *(f"cov_{j}" for j in range(len(self._cov_metrics)))],
            "target_normalizer": EncoderNormalizer(method="standard"),
            "categorical_encoders": {
                "metric": NaNLabelEncoder(add_nan=True),
                "group": NaNLabelEncoder(add_nan=True),
            },
            "scalers": {"value_center": _PlainStandardScaler(), "value_scale": _PlainStandardScaler()},
            "add_relative_time_idx": True,
            "add_target_scales": True,
            "add_encoder_length": True,
        }

    # ---- fit -----------------------------------------------------------------------------------------
    def _fit(self) -> None:
        panel = self._panel
        self._norms: dict[Key, tuple[float, float]] = {}
        self._nonneg = {k: bool(np.nanmin(panel.values[panel.index[k]]) >= 0) for k in self._targets}
        keys = list(self._targets)
        idx = [panel.index[k] for k in keys]
        first = np.array([panel.starts[i] for i in idx], dtype=np.int64)
        last = panel.last_pos(keys)
        need = self.encoder_min + self.max_horizon
        longest = int((last - first + 1).max())
        if longest < need:
            raise InsufficientHistoryError(
                self.name, need, longest,
                hint=f"to train, some series needs min_encoder_length={self.encoder_min} + "
                f"max_horizon={self.max_horizon} steps; send longer series or lower them",
            )  # fmt: skip
        frame = self._long_frame(keys, first, last, 0)
        with quiet(), torch_threads(self.num_threads), seeded(self.seed):
            dataset = TimeSeriesDataSet(frame, **self._dataset_spec())
            self._dataset_params = dataset.get_parameters()
            net = self._build_net(dataset)
            loader = dataset.to_dataloader(
                train=True, batch_size=self.batch_size, num_workers=0,
                generator=torch.Generator().manual_seed(self.seed),
            )  # fmt: skip
            with tempfile.TemporaryDirectory(prefix="foresight-pf-") as scratch:
                trainer = pl.Trainer(
                    accelerator="cpu", devices=1, max_epochs=self.max_epochs,
                    limit_train_batches=self.limit_train_batches, gradient_clip_val=self.gradient_clip_val,
                    enable_checkpointing=False, logger=False, enable_progress_bar=False,
                    enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
                    default_root_dir=scratch,
                )  # fmt: skip
                trainer.fit(net, train_dataloaders=loader)
        net.trainer = None  # the artifact must not hold the Trainer
        net.eval()
        self._net = net
        self.n_train_samples_ = len(dataset)

    def _common_net_kwargs(self) -> dict[str, Any]:
        """Hyper-parameters every pytorch-forecasting network here takes."""
        return {
            "hidden_size": self.hidden_size,
            "dropout": self.dropout,
            "learning_rate": self.learning_rate,
            # pytorch-forecasting's plateau scheduler watches val_loss, which never exists here (no
            # validation set), so it stays inert; its "no scheduler" option breaks under Lightning 2.6
            "logging_metrics": torch.nn.ModuleList([]),
            "optimizer": "adam",
        }

    # ---- predict -------------------------------------------------------------------------------------
    def _predict(self, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        if horizon > self.max_horizon:
            raise InvalidConfigError(
                f"horizon {horizon} exceeds max_horizon={self.max_horizon} this model was fitted for; "
                f"refit with {type(self).__name__}(max_horizon={horizon})"
            )
        panel = self._panel
        keys = list(self._targets)
        last = panel.last_pos(keys)
        starts = np.array([panel.starts[panel.index[k]] for k in keys], dtype=np.int64)
        first = np.maximum(starts, last - self.max_encoder_length + 1)
        frame = self._long_frame(keys, first, last, self.max_horizon)
        params = dict(self._dataset_params)
        encoders = {**params["categorical_encoders"], "group": NaNLabelEncoder().fit(frame["group"])}
        with quiet():
            dataset = TimeSeriesDataSet.from_parameters(
                params, frame, predict=True, categorical_encoders=encoders
            )
        loader = dataset.to_dataloader(train=False, batch_size=self.predict_batch_size, num_workers=0)
        n, k = len(keys), len(self.quantiles)
        mean = np.full((n, self.max_horizon), np.nan)
        q = np.full((n, self.max_horizon, k), np.nan)
        self._net.eval()
        with quiet(), torch.no_grad(), torch_threads(self.num_threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)  # DeepAR samples paths: same inputs give the same forecast
            for x, _ in loader:
                rows = dataset.x_to_index(x)["group"].astype(int).to_numpy()
                m, qq = self._forward(self._net, x)
                mean[rows], q[rows] = m, qq
        mean, q = mean[:, :horizon], np.sort(q[:, :horizon], axis=2)
        tails = ffill_rows(panel.window(keys, last, self.max_encoder_length))
        flat = np.ptp(tails, axis=1) <= 1e-12 * np.maximum(1.0, np.abs(tails).max(axis=1))
        mean[flat] = tails[flat, -1:]  # a series constant over the window stays put (float32 noise aside)
        q[flat] = tails[flat, -1][:, None, None]
        floor = np.array([self._nonneg.get(key, False) for key in keys])
        q[floor] = np.maximum(q[floor], 0.0)
        mean[floor] = np.maximum(mean[floor], 0.0)
        return mean, q

    # ---- artifacts -----------------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """Pickle the network as (class, hyper-parameters, weights) rather than a live Lightning module."""
        state = self.__dict__.copy()
        net = state.pop("_net", None)
        if net is not None:
            weights = {name: t.detach().clone() for name, t in net.state_dict().items()}
            state["_net_blob"] = (type(net), dict(net.hparams), weights)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        blob = state.pop("_net_blob", None)
        self.__dict__.update(state)
        if blob is not None:
            cls, hparams, weights = blob
            with quiet():
                net = cls(**hparams)
            net.load_state_dict(weights)
            net.eval()
            self._net = net
