"""The control loop as a background job: every `FORESIGHT_LOOP_TICK_SECONDS` each replica claims the
targets that are due and decides for them (Postgres: replicas share the targets through row claims;
SQLite: one loop, under the file lock)."""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any

from service.config import Settings
from service.db import Database
from service.jobs import Job
from service.loop.runner import run_pass

OWNER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
"""Who holds a claimed target: this process."""


def loop_job(settings: Settings) -> Job:
    return Job("control_loop", settings.loop_tick_seconds, shared=lambda db: run_pass(db, OWNER))


def run_once(database: Database) -> dict[str, Any]:
    """One pass now (tests, `foresight loop run-once`)."""
    return run_pass(database, OWNER)
