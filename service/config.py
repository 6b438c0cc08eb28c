"""Settings for the service, read from `FORESIGHT_*` environment variables (pydantic-settings)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_PATH = Path("var") / "foresight.db"


class Settings(BaseSettings):
    """Every knob of the service; docker-compose.yml uses exactly these names with the prefix."""

    model_config = SettingsConfigDict(env_prefix="FORESIGHT_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_SQLITE_PATH}",
        description="SQLAlchemy URL; SQLite file by default, postgresql+psycopg://… in production.",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_json: bool = Field(default=True, description="JSON log lines (false: human-readable console).")
    max_batch_samples: int = Field(default=100_000, ge=1, description="Samples per telemetry batch (413).")
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024, description="Request body limit (413).")
    max_future_seconds: int = Field(default=600, ge=0, description="How far ahead of now a sample may be.")
    retry_after_seconds: int = Field(default=5, ge=1, description="Retry-After sent with 503 answers.")
    auto_migrate: bool = Field(
        default=True, description="Upgrade an embedded SQLite database on start (Postgres: `db upgrade`)."
    )
    load_sample_data: bool = Field(
        default=True,
        description="Set up the live demo (bundled traces shifted to the present) when the database holds "
        "no series yet; docs/demo.md.",
    )
    demo_stream: bool = Field(
        default=True, description="Keep streaming the demo's traces as live telemetry while serving."
    )
    demo_speed: float = Field(
        default=1.0,
        ge=0.01,
        le=1000,
        description="Demo time compression: 10 plays a 5-minute step every 30 s.",
    )
    bootstrap_admin_key: bool = Field(
        default=True, description="Create and print an admin API key at start when no key exists."
    )
    jobs_enabled: bool = Field(default=True, description="Run background jobs (one replica at a time).")
    jobs_tick_seconds: float = Field(default=60, gt=0, description="How often due jobs are checked.")
    retrain_interval_seconds: float = Field(
        default=86400, gt=0, description="Retrain a forecaster this often."
    )
    coverage_drift_tolerance: float = Field(
        default=0.1, gt=0, description="Retrain early when live 80% coverage is off by more than this."
    )
    loop_enabled: bool = Field(
        default=True, description="Run the control loop: decide for every managed target on its cadence."
    )
    loop_tick_seconds: float = Field(default=5, gt=0, description="How often the loop looks for due targets.")
    loop_cadence_seconds: float = Field(
        default=60, ge=1, description="How often each target is decided (a target may set its own)."
    )
    loop_batch_size: int = Field(default=200, ge=1, description="Targets one replica claims per pass.")
    loop_lease_seconds: float = Field(
        default=120,
        gt=0,
        description="How long a claimed target stays with its replica before another may take it.",
    )
    actuator: str = Field(
        default="none", description="Default actuator of a target: kubernetes, webhook or none (record only)."
    )
    actuation_enabled: bool = Field(
        default=True, description="Fleet-wide switch: false freezes all actuation (decisions are still made)."
    )
    actuation_max_change_fraction: float = Field(
        default=0.5, gt=0, description="At most this share of a workload's replicas changes per period."
    )
    actuation_max_change_pods: int = Field(
        default=10, ge=1, description="… or this many replicas, whichever allows more, per period."
    )
    actuation_period_seconds: float = Field(default=300, gt=0, description="The period of those limits.")
    kube_api_url: str = Field(
        default="",
        description="API server of the kubernetes actuator (empty: in-cluster account, else ~/.kube/config).",
    )
    kube_token: str = Field(default="", description="Bearer token for FORESIGHT_KUBE_API_URL.")
    kube_verify_tls: bool = Field(default=True, description="Verify the API server's certificate.")
    kube_ca_file: str = Field(default="", description="CA bundle of the API server (empty: system CAs).")
    kube_timeout_seconds: float = Field(default=10, gt=0, description="Timeout of one API call.")
    kube_conflict_retries: int = Field(
        default=3, ge=0, description="Re-reads after a 409 resourceVersion conflict before retrying later."
    )
    webhook_url: str = Field(default="", description="Where the webhook actuator POSTs decisions.")
    webhook_secret: str = Field(
        default="", description="HMAC-SHA256 key of the X-Foresight-Signature header (empty: unsigned)."
    )
    webhook_timeout_seconds: float = Field(default=10, gt=0, description="Timeout of one webhook call.")
    webhook_max_attempts: int = Field(default=4, ge=1, description="Webhook calls per actuation attempt.")
    webhook_backoff_seconds: float = Field(
        default=0.5, ge=0, description="Base of the exponential backoff (full jitter) between webhook calls."
    )
    actuation_max_attempts: int = Field(
        default=5, ge=1, description="Attempts per decision before it is marked failed."
    )
    max_nodes_out_of_service: int = Field(
        default=2, ge=0, description="Cap on nodes a mitigation may take out of service at once, per cluster."
    )
    rate_limit_enabled: bool = Field(
        default=True, description="Per-key token-bucket rate limits (429 with Retry-After), per process."
    )
    rate_limit_per_second: float = Field(default=200, gt=0, description="Requests/s per key (non-ingest).")
    rate_limit_burst: int = Field(default=1000, ge=1, description="Requests a key may send at once.")
    rate_limit_ingest_per_second: float = Field(
        default=1000, gt=0, description="Requests/s per key on ingest routes (telemetry, node events)."
    )
    rate_limit_ingest_burst: int = Field(default=5000, ge=1, description="Ingest requests sent at once.")
    integration_mapping: str = Field(
        default="",
        description="YAML/JSON label mapping for remote-write, OTLP and backfill (empty: defaults).",
    )
    counters_as_rates: bool = Field(
        default=False,
        description="Also store counters as per-second rates (`name:rate`); ?counters=rate too.",
    )
    export_horizon: int = Field(
        default=12, ge=1, le=500, description="Forecast steps in /v1/exports/prometheus."
    )
    export_max_series: int = Field(
        default=200, ge=1, description="Series forecast per export scrape, at most."
    )
    sources_path: str = Field(
        default="var/sources.json",
        description="Where `foresight sources` keeps sources and backfill progress.",
    )
    session_secret: str = Field(
        default="",
        description="Signs dashboard session cookies and CSRF tokens; empty: a random secret per process "
        "(sessions end on restart and are not shared between replicas).",
    )
    session_max_age_seconds: int = Field(
        default=43_200, ge=60, description="How long a dashboard login lasts."
    )
    db_pool_size: int = Field(default=10, ge=1)
    db_connect_timeout_seconds: int = Field(default=5, ge=1)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests build their own `Settings` and pass them explicitly)."""
    return Settings()
