"""Sinks, one module per destination; each defines its config (`type = "..."` in forward.toml)
and the sink it builds. `SinkConfigs` is the tagged union the configuration is parsed with."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from siemgate.forward.sinks.datadog import DatadogConfig
from siemgate.forward.sinks.elasticsearch import ElasticsearchConfig, OpenSearchConfig
from siemgate.forward.sinks.files import FileConfig, NullConfig, StdoutConfig
from siemgate.forward.sinks.http_intakes import PantherConfig, Rapid7Config, SumoLogicConfig
from siemgate.forward.sinks.mirror import MirrorConfig
from siemgate.forward.sinks.secops import SecOpsConfig
from siemgate.forward.sinks.sentinel import SentinelConfig
from siemgate.forward.sinks.splunk_hec import LogScaleConfig, SplunkHecConfig
from siemgate.forward.sinks.syslog import SyslogConfig
from siemgate.forward.sinks.webhook import WebhookConfig

SinkConfigs = Annotated[
    SplunkHecConfig
    | LogScaleConfig
    | ElasticsearchConfig
    | OpenSearchConfig
    | DatadogConfig
    | SentinelConfig
    | SumoLogicConfig
    | PantherConfig
    | Rapid7Config
    | SecOpsConfig
    | SyslogConfig
    | WebhookConfig
    | FileConfig
    | StdoutConfig
    | NullConfig
    | MirrorConfig,
    Field(discriminator="type"),
]
SINK_TYPES = (
    "splunk_hec",
    "logscale",
    "elasticsearch",
    "opensearch",
    "datadog",
    "sentinel",
    "sumologic",
    "panther",
    "rapid7",
    "secops",
    "syslog",
    "webhook",
    "file",
    "stdout",
    "null",
    "siemgate",
)
