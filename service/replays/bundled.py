"""Traces shipped with Foresight that a replay can name instead of uploading one (real public data,
licences beside the files in service/sample_data/)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SAMPLE_DATA = Path(__file__).resolve().parent.parent / "sample_data"


@dataclass(frozen=True)
class Bundled:
    name: str
    path: Path
    trace_format: str
    description: str


BUNDLED: dict[str, Bundled] = {
    b.name: b
    for b in (
        Bundled(
            "azure-llm-code",
            SAMPLE_DATA / "azure_llm_inference_2023" / "AzureLLMInferenceTrace_code.csv.gz",
            "azure-llm",
            "Azure LLM inference, code completion, ~1 h of requests with token counts (CC BY 4.0)",
        ),
        Bundled(
            "nab-ec2-cpu",
            SAMPLE_DATA / "nab" / "ec2_cpu_utilization_24ae8d.csv",
            "long",
            "NAB CloudWatch EC2 CPU utilisation, 5-minute samples, 14 days (MIT)",
        ),
        Bundled(
            "nab-rds-cpu",
            SAMPLE_DATA / "nab" / "rds_cpu_utilization_cc0c53.csv",
            "long",
            "NAB CloudWatch RDS CPU utilisation, 5-minute samples, 14 days (MIT)",
        ),
        Bundled(
            "nab-elb-requests",
            SAMPLE_DATA / "nab" / "elb_request_count_8c0756.csv",
            "long",
            "NAB CloudWatch ELB request counts, 5-minute samples, 14 days (MIT)",
        ),
    )
}
