"""Protobuf message classes for Prometheus remote-write 1.0 and OTLP metrics, built at run time.

The descriptors are declared here (field names and numbers from the public .proto files) and turned into
classes by the `protobuf` package in a private descriptor pool. Why not generated code: no protoc step in
the build, no clash with other packages registering the same names in the default pool, and only the
fields Foresight reads are declared (unknown fields such as exemplars or native histograms are skipped by
the parser, which is also how the format evolves compatibly). Parsing runs in protobuf's C backend (upb).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto
OPTIONAL, REPEATED = F.LABEL_OPTIONAL, F.LABEL_REPEATED
SCALARS = {
    "double": F.TYPE_DOUBLE,
    "int64": F.TYPE_INT64,
    "string": F.TYPE_STRING,
    "bool": F.TYPE_BOOL,
    "bytes": F.TYPE_BYTES,
    "uint32": F.TYPE_UINT32,
    "sint32": F.TYPE_SINT32,
    "fixed64": F.TYPE_FIXED64,
    "sfixed64": F.TYPE_SFIXED64,
}

# field: (name, number, type, repeated?, oneof name or None); a type not in SCALARS names a message/enum
Field = tuple[str, int, str, bool, str | None]

REMOTE_WRITE: dict[str, list[Field]] = {
    "WriteRequest": [
        ("timeseries", 1, "TimeSeries", True, None),
        ("metadata", 3, "MetricMetadata", True, None),
    ],
    "TimeSeries": [("labels", 1, "Label", True, None), ("samples", 2, "Sample", True, None)],
    "Label": [("name", 1, "string", False, None), ("value", 2, "string", False, None)],
    "Sample": [("value", 1, "double", False, None), ("timestamp", 2, "int64", False, None)],
    "MetricMetadata": [
        ("type", 1, "MetricType", False, None),
        ("metric_family_name", 2, "string", False, None),
        ("help", 4, "string", False, None),
        ("unit", 5, "string", False, None),
    ],
}
REMOTE_WRITE_ENUMS = {
    "MetricType": [
        "UNKNOWN",
        "COUNTER",
        "GAUGE",
        "HISTOGRAM",
        "GAUGEHISTOGRAM",
        "SUMMARY",
        "INFO",
        "STATESET",
    ]
}

_TIMES: list[Field] = [
    ("start_time_unix_nano", 2, "fixed64", False, None),
    ("time_unix_nano", 3, "fixed64", False, None),
]
OTLP: dict[str, list[Field]] = {
    "ExportMetricsServiceRequest": [("resource_metrics", 1, "ResourceMetrics", True, None)],
    "ExportMetricsServiceResponse": [("partial_success", 1, "ExportMetricsPartialSuccess", False, None)],
    "ExportMetricsPartialSuccess": [
        ("rejected_data_points", 1, "int64", False, None),
        ("error_message", 2, "string", False, None),
    ],
    "ResourceMetrics": [
        ("resource", 1, "Resource", False, None),
        ("scope_metrics", 2, "ScopeMetrics", True, None),
        ("schema_url", 3, "string", False, None),
    ],
    "Resource": [
        ("attributes", 1, "KeyValue", True, None),
        ("dropped_attributes_count", 2, "uint32", False, None),
    ],
    "ScopeMetrics": [
        ("scope", 1, "InstrumentationScope", False, None),
        ("metrics", 2, "Metric", True, None),
        ("schema_url", 3, "string", False, None),
    ],
    "InstrumentationScope": [
        ("name", 1, "string", False, None),
        ("version", 2, "string", False, None),
        ("attributes", 3, "KeyValue", True, None),
    ],
    "KeyValue": [("key", 1, "string", False, None), ("value", 2, "AnyValue", False, None)],
    "AnyValue": [
        ("string_value", 1, "string", False, "value"),
        ("bool_value", 2, "bool", False, "value"),
        ("int_value", 3, "int64", False, "value"),
        ("double_value", 4, "double", False, "value"),
        ("array_value", 5, "ArrayValue", False, "value"),
        ("kvlist_value", 6, "KeyValueList", False, "value"),
        ("bytes_value", 7, "bytes", False, "value"),
    ],
    "ArrayValue": [("values", 1, "AnyValue", True, None)],
    "KeyValueList": [("values", 1, "KeyValue", True, None)],
    "Metric": [
        ("name", 1, "string", False, None),
        ("description", 2, "string", False, None),
        ("unit", 3, "string", False, None),
        ("gauge", 5, "Gauge", False, "data"),
        ("sum", 7, "Sum", False, "data"),
        ("histogram", 9, "Histogram", False, "data"),
        ("exponential_histogram", 10, "ExponentialHistogram", False, "data"),
        ("summary", 11, "Summary", False, "data"),
    ],
    "Gauge": [("data_points", 1, "NumberDataPoint", True, None)],
    "Sum": [
        ("data_points", 1, "NumberDataPoint", True, None),
        ("aggregation_temporality", 2, "AggregationTemporality", False, None),
        ("is_monotonic", 3, "bool", False, None),
    ],
    "Histogram": [
        ("data_points", 1, "HistogramDataPoint", True, None),
        ("aggregation_temporality", 2, "AggregationTemporality", False, None),
    ],
    "ExponentialHistogram": [
        ("data_points", 1, "ExponentialHistogramDataPoint", True, None),
        ("aggregation_temporality", 2, "AggregationTemporality", False, None),
    ],
    "Summary": [("data_points", 1, "SummaryDataPoint", True, None)],
    "NumberDataPoint": [
        ("attributes", 7, "KeyValue", True, None),
        *_TIMES,
        ("as_double", 4, "double", False, "value"),
        ("as_int", 6, "sfixed64", False, "value"),
        ("flags", 8, "uint32", False, None),
    ],
    "HistogramDataPoint": [
        ("attributes", 9, "KeyValue", True, None),
        *_TIMES,
        ("count", 4, "fixed64", False, None),
        ("sum", 5, "double", False, "_sum"),
        ("flags", 10, "uint32", False, None),
    ],
    "ExponentialHistogramDataPoint": [
        ("attributes", 1, "KeyValue", True, None),
        *_TIMES,
        ("count", 4, "fixed64", False, None),
        ("sum", 5, "double", False, "_sum"),
        ("flags", 10, "uint32", False, None),
    ],
    "SummaryDataPoint": [
        ("attributes", 7, "KeyValue", True, None),
        *_TIMES,
        ("count", 4, "fixed64", False, None),
        ("sum", 5, "double", False, None),
        ("quantile_values", 6, "ValueAtQuantile", True, None),
        ("flags", 8, "uint32", False, None),
    ],
    "ValueAtQuantile": [("quantile", 1, "double", False, None), ("value", 2, "double", False, None)],
}
OTLP_ENUMS = {
    "AggregationTemporality": [
        "AGGREGATION_TEMPORALITY_UNSPECIFIED",
        "AGGREGATION_TEMPORALITY_DELTA",
        "AGGREGATION_TEMPORALITY_CUMULATIVE",
    ]
}


def _json_name(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _file(name: str, package: str, messages: dict[str, list[Field]], enums: dict[str, list[str]]) -> Any:
    proto = descriptor_pb2.FileDescriptorProto(name=name, package=package, syntax="proto3")
    for enum_name, values in enums.items():
        enum = proto.enum_type.add(name=enum_name)
        for number, value in enumerate(values):
            enum.value.add(name=value, number=number)
    for message_name, fields in messages.items():
        message = proto.message_type.add(name=message_name)
        oneofs: list[str] = []
        for field_name, number, kind, repeated, oneof in fields:
            field = message.field.add(
                name=field_name,
                number=number,
                json_name=_json_name(field_name),
                label=REPEATED if repeated else OPTIONAL,
            )
            if kind in SCALARS:
                field.type = SCALARS[kind]
            else:
                field.type = F.TYPE_ENUM if kind in enums else F.TYPE_MESSAGE
                field.type_name = f".{package}.{kind}"
            if oneof is not None:
                if oneof not in oneofs:
                    oneofs.append(oneof)
                    message.oneof_decl.add(name=oneof)
                field.oneof_index = oneofs.index(oneof)
    return proto


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file("foresight_remote_write.proto", "prometheus", REMOTE_WRITE, REMOTE_WRITE_ENUMS))
_POOL.Add(_file("foresight_otlp_metrics.proto", "opentelemetry.proto.metrics", OTLP, OTLP_ENUMS))


def _message(full_name: str) -> Any:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(full_name))


WriteRequest = _message("prometheus.WriteRequest")
ExportMetricsServiceRequest = _message("opentelemetry.proto.metrics.ExportMetricsServiceRequest")
ExportMetricsServiceResponse = _message("opentelemetry.proto.metrics.ExportMetricsServiceResponse")

COUNTER_TYPE = 1  # MetricMetadata.MetricType.COUNTER
TEMPORALITY_DELTA, TEMPORALITY_CUMULATIVE = 1, 2
FLAG_NO_RECORDED_VALUE = 1
