"""Forecasts in the service: the `foresight forecast` commands, Ray batch training, and (from other
modules of this package) the forecast API, model registry and background jobs."""
