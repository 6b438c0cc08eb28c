"""Postgres stopped and restarted under a multi-client ingest run (issue 7, faults): on a private cluster
this test creates on its own port, a real `foresight serve` keeps answering — 503 with Retry-After (or a
dropped connection) while the database is away, never a 500 — every batch a client saw accepted is
stored exactly once, every refused batch is retried and stored once, and the same process serves again
after the restart. Two outages per run: a clean `fast` shutdown and an `immediate` one (a crash)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.reliability.ingest_driver import IngestRun, Shape, migrate_and_key, verify, write_env
from tests.reliability.pgcluster import PgCluster, cluster_for_tests
from tests.test_startup import _serve, _stop

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(170)]
OUTAGE_MODES = ("fast", "immediate")
BATCHES_BETWEEN_OUTAGES = 40


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    yield from cluster_for_tests()


def test_postgres_restart_mid_ingest_loses_nothing(cluster: PgCluster, tmp_path: Path) -> None:
    name = f"faults_{uuid.uuid4().hex[:8]}"
    url = cluster.create_database(name)
    key = migrate_and_key(url, "ingest")
    write_env(tmp_path, url)
    process, base = _serve(tmp_path)
    shape = Shape()
    run = IngestRun(base, key, shape)
    recovered: dict[str, bool] = {}
    try:
        run.start()
        for mode in OUTAGE_MODES:
            assert run.until_accepted(run.accepted_batches + BATCHES_BETWEEN_OUTAGES, 90), run.summary()
            refusals = run.refusals
            cluster.stop(mode)
            # hold the outage until every client has been refused at least once (bounded: the checks
            # below do not depend on it)
            run.until_refused(refusals + shape.clients, 20)
            cluster.start()
            recovered[mode] = run.until_accepted_after(run.mark(), 90)
        assert run.join(150), "clients did not finish"
        summary = run.summary()
        with cluster.connect(name) as connection:
            stored = verify(connection, shape, run)
        assert process.poll() is None, "the service process died"
        ready = httpx.get(base + "/readyz", timeout=10)
    finally:
        run.join(5)
        _stop(process)

    bad = [(k, log.statuses) for k, log in run.logs.items() if not log.done]
    assert summary["answers_500"] == 0 and summary["answers_other_4xx"] == 0, (summary, bad[:5])
    assert summary["never_accepted"] == 0, (summary, bad[:5])
    assert summary["refused_then_retried"] > 0, summary  # the outages were seen by the clients
    assert summary["refusals_without_retry_after"] == 0, summary
    assert recovered == dict.fromkeys(OUTAGE_MODES, True), recovered
    assert stored["samples_lost"] == 0 and stored["wrong_values"] == 0, stored
    assert stored["stored_more_than_once"] == 0 and stored["unexpected_rows"] == 0, stored
    assert stored["samples_stored"] == stored["samples_sent_accepted"], stored
    assert ready.status_code == 200, ready.text  # recovered without a restart
