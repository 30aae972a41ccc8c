"""Sinks, one module per destination; each defines its config (`type = "..."` in forward.toml)
and the sink it builds. `SinkConfigs` is the registry: the tagged union the configuration is
parsed with, from which the list of configs and of type names derive. A new sink is a module
here and one line in the union (docs/architecture.md, "Where a change goes")."""

from __future__ import annotations

from typing import Annotated, get_args

from pydantic import Field

from siemgate.forward.sinks.base import SinkConfig
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
# The registry is the union above: the configs, and the `type` names, derive from it.
SINK_CONFIGS: tuple[type[SinkConfig], ...] = get_args(get_args(SinkConfigs)[0])
SINK_TYPES: tuple[str, ...] = tuple(get_args(c.model_fields["type"].annotation)[0] for c in SINK_CONFIGS)
