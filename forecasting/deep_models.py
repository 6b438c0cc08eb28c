"""Temporal Fusion Transformer and DeepAR from pytorch-forecasting, as Foresight forecasters.

Both are global models trained on every target series at once, on CPU; data handling, training and
artifacts are shared (`forecasting.deep_base`). Import this module through the registry
(`create_forecaster("tft")`), which keeps torch out of processes that never use a deep model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pytorch_forecasting import DeepAR, TemporalFusionTransformer, TimeSeriesDataSet
from pytorch_forecasting.metrics import NormalDistributionLoss, QuantileLoss
from pytorch_forecasting.models.base_model import BaseModel

from forecasting.deep_base import PytorchForecaster
from forecasting.types import InvalidConfigError, mean_from_quantiles


class TFTForecaster(PytorchForecaster):
    """Temporal Fusion Transformer trained with the quantile (pinball) loss at the forecaster's levels.

    Inputs: the target's encoder window (normalised by its own mean/std), the other metrics of the same
    entity as past-only covariates, calendar features and the metric as a static category. The network
    emits every quantile level directly; rows are sorted so they never cross, and the mean is the
    integral of the piecewise-linear quantile function.

    Defaults, sized for real use on CPU (a few minutes for a thousand series): `max_horizon=24`,
    `max_encoder_length=96` (min 24), `hidden_size=32`, `attention_head_size=4`,
    `hidden_continuous_size=16`, `lstm_layers=1`, `dropout=0.1`, `learning_rate=3e-3`, `batch_size=64`,
    `max_epochs=10` x `limit_train_batches=100` (at most 1,000 optimiser steps), `gradient_clip_val=0.1`.
    See `PytorchForecaster` for the options shared with DeepAR.
    """

    name = "tft"

    def __init__(
        self,
        *,
        attention_head_size: int = 4,
        hidden_continuous_size: int = 16,
        lstm_layers: int = 1,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        if min(attention_head_size, hidden_continuous_size, lstm_layers) < 1:
            raise InvalidConfigError("attention_head_size, hidden_continuous_size, lstm_layers must be >= 1")
        self.attention_head_size = attention_head_size
        self.hidden_continuous_size = hidden_continuous_size
        self.lstm_layers = lstm_layers

    def _build_net(self, dataset: TimeSeriesDataSet) -> BaseModel:
        return TemporalFusionTransformer.from_dataset(
            dataset,
            loss=QuantileLoss(quantiles=list(self.quantiles)),
            attention_head_size=self.attention_head_size,
            hidden_continuous_size=self.hidden_continuous_size,
            lstm_layers=self.lstm_layers,
            **self._common_net_kwargs(),
        )

    def _forward(self, net: BaseModel, x: dict[str, torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
        q = net(x)["prediction"].detach().cpu().numpy().astype(float)  # (B, H, K), data units
        q = np.sort(q, axis=2)
        return mean_from_quantiles(q, self.quantiles), q


class DeepARForecaster(PytorchForecaster):
    """DeepAR: an autoregressive LSTM emitting a Normal distribution per step, trained by likelihood.

    Forecast quantiles are empirical quantiles of `n_samples` sampled future paths (seeded, so the same
    inputs give the same forecast); the mean is the sample mean. DeepAR requires the same inputs in its
    encoder and decoder, so it sees the target, calendar features and the metric but not the other
    metrics of the entity (past-only covariates would be unknown in the decoder).

    Defaults, sized for real use on CPU: `max_horizon=24`, `max_encoder_length=96` (min 24),
    `hidden_size=32`, `rnn_layers=2`, `dropout=0.1`, `learning_rate=3e-3`, `batch_size=64`,
    `max_epochs=10` x `limit_train_batches=100`, `gradient_clip_val=0.1`, `n_samples=200`.
    """

    name = "deepar"
    uses_covariates = False

    def __init__(self, *, rnn_layers: int = 2, n_samples: int = 200, **common: Any) -> None:
        super().__init__(**common)
        if rnn_layers < 1 or n_samples < 10:
            raise InvalidConfigError(
                f"rnn_layers must be >= 1 and n_samples >= 10, got {rnn_layers}, {n_samples}"
            )
        self.rnn_layers = rnn_layers
        self.n_samples = n_samples

    def _build_net(self, dataset: TimeSeriesDataSet) -> BaseModel:
        return DeepAR.from_dataset(
            dataset, loss=NormalDistributionLoss(), rnn_layers=self.rnn_layers, **self._common_net_kwargs()
        )

    def _forward(self, net: BaseModel, x: dict[str, torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
        paths = net(x, n_samples=self.n_samples)["prediction"].detach().cpu().numpy().astype(float)
        q = np.moveaxis(np.quantile(paths, self.quantiles, axis=2), 0, -1)  # (B, H, K)
        return paths.mean(axis=2), q
