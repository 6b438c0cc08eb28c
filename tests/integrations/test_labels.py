"""Label mapping files: a YAML mapping replaces the defaults (and is re-read when it changes); a broken one
is a server-side error (500, so senders retry rather than drop), naming the file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from service.integrations.labels import Mapped, MappingError, load_mapping

CUSTOM = """
cluster_labels: [region]
rules:
  - name: apps
    match: "^app_"
    entity: [{kind: workload, label: app}]
    keep: [route]
    units: {app_latency: ms}
"""


def test_a_yaml_mapping_replaces_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "mapping.yaml"
    path.write_text(CUSTOM)
    mapping = load_mapping(str(path))
    labels = (("app", "shop"), ("region", "eu"), ("route", "/pay"), ("pod", "shop-1"))
    found = mapping.resolve("app_latency", labels)
    assert isinstance(found, Mapped)
    assert (found.key.cluster, found.key.kind, found.key.name, found.unit, found.labels) == (
        "eu", "workload", "shop", "ms", {"route": "/pay"},
    )  # fmt: skip
    assert mapping.resolve("node_load1", (("instance", "a:1"),)) == "no_rule"
    path.write_text(CUSTOM.replace("label: app", "label: service"))
    os.utime(path, (1, 1))  # a different modification time: the file is read again
    changed = load_mapping(str(path)).resolve("app_latency", (("service", "api"),))
    assert isinstance(changed, Mapped) and changed.key.name == "api"


def test_a_broken_mapping_is_a_500_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "mapping.yaml"
    path.write_text("rules: [{name: x}]")
    with pytest.raises(MappingError) as caught:
        load_mapping(str(path))
    assert caught.value.status_code == 500 and str(path) in caught.value.message
    with pytest.raises(MappingError, match="does not exist"):
        load_mapping(str(tmp_path / "missing.yaml"))
