"""Batch training: one forecaster per group (e.g. per cluster), fitted as Ray tasks, returned as artifacts.

An artifact is the bytes of `Forecaster.save` (`service.forecasts.artifacts`, the model registry's format),
so callers can store it in the registry or on disk and `artifacts.from_bytes` it anywhere. `fit_local`
does the same work in this process; it is what each Ray task runs, and the fallback for a single group or
when Ray is not wanted. Ray runs locally unless `ray_address` names a cluster (whose workers need this
package installed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd

from forecasting import ForecastingError, create_forecaster
from service.forecasts.artifacts import to_bytes

INPUT_ERRORS = (ForecastingError, ValueError, KeyError)
"""Exceptions that mean the group's data or the configuration is wrong (not a bug or an outage)."""


class GroupTrainingError(Exception):
    """Fitting one group failed: `group` names it, `input_error` says the data or configuration is at fault.

    Only the message crosses the Ray boundary (forecasting's exceptions carry extra constructor
    arguments, which Ray cannot always rebuild on the driver).
    """

    def __init__(self, group: str, message: str, input_error: bool) -> None:
        super().__init__(f"group {group!r}: {message}")
        self.group = group
        self.input_error = input_error


@dataclass(frozen=True)
class _Failure:
    message: str
    input_error: bool


def fit_local(frame: pd.DataFrame, model: str, config: Mapping[str, Any]) -> bytes:
    """Fit the registered `model` with `config` on one group's long frame; return its artifact."""
    return to_bytes(create_forecaster(model, **dict(config)).fit(frame))


def _fit_or_failure(frame: pd.DataFrame, model: str, config: Mapping[str, Any]) -> bytes | _Failure:
    """What a Ray task runs: the artifact, or a picklable description of why fitting failed."""
    try:
        return fit_local(frame, model, config)
    except Exception as exc:
        return _Failure(f"{type(exc).__name__}: {exc}", isinstance(exc, INPUT_ERRORS))


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[Any]:
    """Yield the `ray` module, connected to `address` (None: a local Ray); shut down only what we started."""
    import ray

    if ray.is_initialized():
        yield ray
        return
    ray.init(
        address=address, num_cpus=num_cpus if address is None else None, include_dashboard=False,
        log_to_driver=False, configure_logging=False,
    )  # fmt: skip
    try:
        yield ray
    finally:
        ray.shutdown()


def train_many(
    groups: Mapping[str, pd.DataFrame],
    model: str,
    config: dict[str, Any],
    ray_address: str | None = None,
    *,
    use_ray: bool | None = None,
    num_cpus: int | None = None,
    on_done: Callable[[str], None] | None = None,
) -> dict[str, bytes]:
    """Fit one `model` per group and return {group: artifact}, in the order of `groups`.

    `use_ray=None` uses Ray when there are several groups or a `ray_address` (a local Ray costs seconds
    to start, more than fitting one small group); `on_done(group)` is called as each group finishes.
    Raises GroupTrainingError naming the first group that failed on bad data or configuration.
    """
    if use_ray is None:
        use_ray = ray_address is not None or len(groups) > 1
    if not use_ray:
        out: dict[str, bytes] = {}
        for name, frame in groups.items():
            try:
                out[name] = fit_local(frame, model, config)
            except INPUT_ERRORS as exc:
                raise GroupTrainingError(name, str(exc), True) from exc
            if on_done is not None:
                on_done(name)
        return out
    with ray_session(ray_address, num_cpus) as ray:
        task = ray.remote(num_cpus=1, max_retries=0)(_fit_or_failure)
        pending = {task.remote(frame, model, config): name for name, frame in groups.items()}
        done: dict[str, bytes] = {}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            name = pending.pop(ready[0])
            result = ray.get(ready[0])
            if isinstance(result, _Failure):
                for ref in pending:
                    ray.cancel(ref)
                raise GroupTrainingError(name, result.message, result.input_error)
            done[name] = result
            if on_done is not None:
                on_done(name)
    return {name: done[name] for name in groups}
