"""Every HTTP sink against a local intake that implements the vendor's documented behaviour, and the
official client libraries (elasticsearch, datadog-api-client) as oracles against the same intakes."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from siemgate.forward.records import make_record
from siemgate.forward.runner import check
from siemgate.forward.sinks.base import Item, SinkContext
from siemgate.model.features import ALL_FEATURES, Feature
from support.events import MAKERS
from support.procs import outputs_under_hash_seeds

from .fake_intakes import (
    AZURE_SECRET,
    DD_API_KEY,
    ES_API_KEY,
    HEC_TOKEN,
    PANTHER_SECRET,
    RAPID7_TOKEN,
    SUMO_TOKEN,
    WEBHOOK_SECRET,
)
from .forward_support import SECOND, config, fill, jsonl, run_once


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch, intakes: Any) -> dict[str, Any]:
    values = {
        "HEC": HEC_TOKEN,
        "ES": ES_API_KEY,
        "DD": DD_API_KEY,
        "AZ": AZURE_SECRET,
        "SUMO_URL": f"{intakes.url}/receiver/v1/http/{SUMO_TOKEN}",
        "PANTHER": PANTHER_SECRET,
        "R7_URL": f"{intakes.url}/rapid7/{RAPID7_TOKEN}",
        "WH": WEBHOOK_SECRET,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return {name: {"env": name} for name in values}


def all_sinks(url: str, s: dict[str, Any], tmp_path: Path) -> dict[str, dict[str, Any]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    creds = tmp_path / "sa.json"
    creds.write_text(
        json.dumps(
            {
                "client_email": "fwd@p.iam.gserviceaccount.com",
                "private_key": pem.decode(),
                "token_uri": f"{url}/google/token",
            }
        )
    )
    creds.chmod(0o600)
    all_sinks.public_key = key.public_key()  # type: ignore[attr-defined]
    return {
        "hec": {"type": "splunk_hec", "url": url, "token": s["HEC"], "index": "main", "max_events": 70},
        "logscale": {"type": "logscale", "url": url, "token": s["HEC"]},
        "es": {"type": "elasticsearch", "url": url, "api_key": s["ES"], "max_events": 90},
        "dd": {"type": "datadog", "url": url, "api_key": s["DD"], "tags": ["env:test"]},
        "sentinel": {
            "type": "sentinel",
            "endpoint": url,
            "rule_id": "dcr-0123",
            "tenant_id": "tenant",
            "client_id": "client",
            "client_secret": s["AZ"],
            "authority": url,
        },
        "sumo": {"type": "sumologic", "url": s["SUMO_URL"], "category": "security/1password"},
        "panther": {
            "type": "panther",
            "url": f"{url}/panther/hmac",
            "auth": "hmac",
            "header": "x-panther-signature",
            "secret": s["PANTHER"],
        },
        "rapid7": {"type": "rapid7", "url": s["R7_URL"], "uef_signins": True},
        "secops": {"type": "secops", "url": url, "customer_id": "c-1", "credentials_file": str(creds)},
        "hook": {"type": "webhook", "url": f"{url}/webhook", "secret": s["WH"]},
    }


def test_every_http_sink_delivers_in_its_vendor_shape(source: Any, intakes: Any, secrets: Any, tmp_path: Path) -> None:
    signins = fill(source.live, source.key, Feature.SIGNINATTEMPTS, 220)
    usages = fill(source.live, source.key, Feature.ITEMUSAGES, 130)
    sinks = all_sinks(intakes.url, secrets, tmp_path)
    intakes.intake.google_public_key = all_sinks.public_key  # type: ignore[attr-defined]
    cfg = config(tmp_path / "state", source.url, sinks, features=["signinattempts", "itemusages"])
    assert all(not r.problems for r in check(cfg)), [r for r in check(cfg) if r.problems]
    forwarder = run_once(cfg)
    assert forwarder.code == 0, forwarder.problems()
    got = intakes.intake
    expected = set(signins + usages)
    for vendor in ("hec", "logscale", "es", "datadog", "sentinel", "sumo", "panther", "rapid7", "secops", "webhook"):
        assert set(got.uuids(vendor)) == expected, vendor
        assert len(got.uuids(vendor)) == len(expected), vendor

    hec = {e["event"]["uuid"]: e for e in got.received["hec"]}
    assert hec[signins[0]]["sourcetype"] == "1password:insights:signin_attempts"
    assert hec[usages[0]]["sourcetype"] == "1password:insights:item_usages" and hec[usages[0]]["index"] == "main"
    assert len({r["channel"] for r in got.requests["hec"]}) == 1 and max(r["count"] for r in got.requests["hec"]) <= 70
    es = [d for k, d in got.es_docs.items() if k.startswith("logs-1password.signin_attempts-default/")]
    assert len(es) == 220 and json.loads(es[0]["message"])["uuid"] in signins and "@timestamp" in es[0]
    dd = got.received["datadog"][0]
    assert dd["ddsource"] == "1password" and dd["service"] == "1password" and "env:test" in dd["ddtags"]
    sentinel = got.received["sentinel"]
    assert {r["log_source"] for r in sentinel} == {"signinattempts", "itemusages"} and all(
        r["TimeGenerated"] for r in sentinel
    )
    assert got.requests["sentinel"][0]["path"] == "/dataCollectionRules/dcr-0123/streams/Custom-OnePasswordEventLogs_CL"
    assert got.requests["sumo"][-1]["category"] == "security/1password"
    uef = [r for r in got.received["rapid7"] if r.get("event_type") == "INGRESS_AUTHENTICATION"]
    assert len(uef) == 220 and uef[0]["authentication_result"] == "SUCCESS" and uef[0]["time"].endswith("Z")
    assert {r["log_type"] for r in got.received["secops"]} == {"ONEPASSWORD"}


def test_elasticsearch_is_idempotent_and_handles_each_item(
    source: Any, intakes: Any, secrets: Any, tmp_path: Path
) -> None:
    uuids = fill(source.live, source.key, Feature.AUDITEVENTS, 120)
    intakes.intake.poison.add(uuids[5])
    intakes.intake.fail("es_item", [429] * 7)
    es = {"type": "elasticsearch", "url": intakes.url, "api_key": secrets["ES"], "format": "ecs"}
    cfg = config(
        tmp_path / "state", source.url, {"es": es}, features=["auditevents"], start_time="2020-01-01T00:00:00Z"
    )
    assert run_once(cfg).code == 0
    stored = {d["event"]["id"] for d in intakes.intake.es_docs.values()}
    assert set(uuids) - {uuids[5]} <= stored and uuids[5] not in stored
    assert intakes.intake.requests["es"][0]["params"] == {"pipeline": "_none"}
    dead = jsonl(tmp_path / "state/dead-letters/src.es.jsonl")
    assert [d["uuid"] for d in dead] == [uuids[5]] and "mapper_parsing_exception" in dead[0]["reason"]
    # A replay from scratch (lost checkpoint): every create is refused with 409 and counted as delivered.
    count = len(intakes.intake.es_docs)
    cfg2 = config(
        tmp_path / "state2", source.url, {"es": es}, features=["auditevents"], start_time="2020-01-01T00:00:00Z"
    )
    assert run_once(cfg2).code == 0
    assert len(intakes.intake.es_docs) == count


def test_a_uuid_served_with_two_timestamps_arrives_as_two_events_once_each(
    source: Any, intakes: Any, secrets: Any, tmp_path: Path
) -> None:
    """siemgate serves a uuid reused with another timestamp as another event (docs/events.md,
    "Duplicates"): sinks that deduplicate (Elasticsearch `_id`, the webhook's `webhook-id`) must
    keep both, and still drop a redelivery of either."""
    now = time.time_ns()
    first = MAKERS[Feature.AUDITEVENTS](now - 2 * SECOND)
    again = {**MAKERS[Feature.AUDITEVENTS](now - SECOND), "uuid": first["uuid"]}
    other = MAKERS[Feature.AUDITEVENTS](now)
    assert source.live.ingest(source.key, Feature.AUDITEVENTS, [first, again, other]).status_code == 200
    sinks = {
        "es": {"type": "elasticsearch", "url": intakes.url, "api_key": secrets["ES"]},
        "hook": {"type": "webhook", "url": f"{intakes.url}/webhook", "secret": secrets["WH"], "max_events": 1},
    }
    got = intakes.intake
    for state in ("state", "state2"):  # the second run redelivers everything (a lost checkpoint)
        cfg = config(tmp_path / state, source.url, sinks, features=["auditevents"], start_time="2020-01-01T00:00:00Z")
        assert run_once(cfg).code == 0
        for vendor in ("es", "webhook"):
            assert sorted(got.uuids(vendor)) == sorted([first["uuid"], first["uuid"], other["uuid"]]), (state, vendor)
        stamps = sorted(json.loads(d["message"])["timestamp"] for d in got.es_docs.values())
        assert stamps == sorted([first["timestamp"], again["timestamp"], other["timestamp"]])
    assert len(got.requests["webhook"]) == 6  # three sent twice: the repeats were dropped by their id


def test_elasticsearch_items_refused_for_the_credential_are_retried_not_dead_lettered(
    source: Any, intakes: Any, secrets: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An API key without the privileges on a data stream gets 200 from `_bulk` with each item
    403 security_exception. Those items were dead-lettered as bad data (the whole stream, had it
    lasted); they are the credential's fault: retried, said as an ERROR naming the fix, and the
    items accepted beside them are not sent twice."""
    uuids = fill(source.live, source.key, Feature.AUDITEVENTS, 20)
    intakes.intake.fail("es_item", [403] * 12)
    es = {"type": "elasticsearch", "url": intakes.url, "api_key": secrets["ES"]}
    cfg = config(tmp_path / "state", source.url, {"es": es}, features=["auditevents"])
    with caplog.at_level(logging.DEBUG, logger="siemgate.forward"):
        assert run_once(cfg).code == 0
    assert sorted(intakes.intake.uuids("es")) == sorted(uuids)
    assert not (tmp_path / "state/dead-letters/src.es.jsonl").exists() or not jsonl(
        tmp_path / "state/dead-letters/src.es.jsonl"
    )
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR and "sink es" in r.getMessage()]
    assert len(errors) == 1 and "security_exception" in errors[0] and "privileges" in errors[0], errors
    assert [r["count"] for r in intakes.intake.requests["es"]] == [20, 12]


def test_hec_ack_endpoint_refusals_never_dead_letter_the_batch(
    source: Any, intakes: Any, secrets: Any, tmp_path: Path
) -> None:
    """A 400 from `/services/collector/ack` (a channel the indexer behind a load balancer does not
    know, ack turned off) says nothing about the events, which HEC already took: it was classified
    as poison, so the batch was split and every event dead-lettered. It is now retried."""
    uuids = fill(source.live, source.key, Feature.SIGNINATTEMPTS, 4)
    intakes.intake.requests["hec_ack_mode"] = [{"on": True}]
    intakes.intake.fail("hec_ack", [400] * 7)
    hec = {"type": "splunk_hec", "url": intakes.url, "token": secrets["HEC"], "indexer_acknowledgement": True}
    hec["ack_poll_interval"] = 0.01
    cfg = config(tmp_path / "state", source.url, {"hec": hec}, features=["signinattempts"])
    assert run_once(cfg).code == 0
    dead = tmp_path / "state/dead-letters/src.hec.jsonl"
    assert not dead.exists() or jsonl(dead) == []
    assert set(intakes.intake.uuids("hec")) == set(uuids)


def test_webhook_events_without_uuid_in_another_run_are_not_taken_for_repeats(
    intakes: Any, secrets: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`webhook-id` stood for an event without a uuid by its position in the pipeline, which starts
    at 0 in every run: another event without a uuid, first in the next run, had the same id and the
    receiver dropped it. Such an event is now stood for by its content."""
    monkeypatch.setenv("FORWARD_TEST_TOKEN", "unused")
    hook = {"type": "webhook", "url": f"{intakes.url}/webhook", "secret": secrets["WH"]}
    cfg = config(tmp_path / "state", "http://127.0.0.1:9", {"hook": hook})
    for run in ("first", "second"):  # each run a new sink, numbering from 0, as after a restart
        sink = cfg.sinks["hook"].build("hook", SinkContext("src"))
        try:
            record = make_record(Feature.AUDITEVENTS, {"action": run, "timestamp": "2026-01-01T00:00:00Z"}, "src")
            sink.send([Item(0, record, sink.encode(record))])
            sink.send([Item(0, record, sink.encode(record))])  # the same event again: a repeat
        finally:
            sink.close()
    assert [r["event"]["action"] for r in intakes.intake.received["webhook"]] == ["first", "second"]


def test_official_clients_are_accepted_by_the_same_intakes(intakes: Any) -> None:
    """Oracles: the vendors' own Python clients, pointed at the local intakes."""
    from elasticsearch import Elasticsearch, helpers

    es = Elasticsearch(intakes.url, api_key=ES_API_KEY)
    actions = [
        {
            "_op_type": "create",
            "_index": "logs-1password.audit_events-default",
            "_id": f"ID{n}",
            "_source": {"@timestamp": "2026-01-01T00:00:00Z", "message": json.dumps({"uuid": f"ID{n}"})},
        }
        for n in range(5)
    ]
    ok, errors = helpers.bulk(es, actions, raise_on_error=False)
    assert ok == 5 and errors == []
    ok, errors = helpers.bulk(es, actions, raise_on_error=False)  # the replay: 409 per item
    assert isinstance(errors, list)
    assert ok == 0 and {e["create"]["status"] for e in errors} == {409}

    from datadog_api_client import ApiClient, Configuration
    from datadog_api_client.v2.api.logs_api import LogsApi
    from datadog_api_client.v2.model.content_encoding import ContentEncoding
    from datadog_api_client.v2.model.http_log import HTTPLog
    from datadog_api_client.v2.model.http_log_item import HTTPLogItem

    configuration = Configuration(host=intakes.url)
    configuration.api_key["apiKeyAuth"] = DD_API_KEY
    with ApiClient(configuration) as client:
        LogsApi(client).submit_log(
            body=HTTPLog([HTTPLogItem(ddsource="1password", message="hello", service="1password", uuid="DDORACLE")]),
            content_encoding=ContentEncoding.GZIP,
        )
    assert "DDORACLE" in intakes.intake.uuids("datadog")


def test_hec_indexer_acknowledgement_and_sentinel_retry_after(
    source: Any, intakes: Any, secrets: Any, tmp_path: Path
) -> None:
    uuids = fill(source.live, source.key, Feature.SIGNINATTEMPTS, 40)
    intakes.intake.requests["hec_ack_mode"] = [{"on": True}]
    intakes.intake.fail("sentinel", [429, 503, 500])
    sinks = {
        "hec": {
            "type": "splunk_hec",
            "url": intakes.url,
            "token": secrets["HEC"],
            "indexer_acknowledgement": True,
            "ack_poll_interval": 0.01,
        },
        "sentinel": {
            "type": "sentinel",
            "endpoint": intakes.url,
            "rule_id": "dcr-1",
            "tenant_id": "t",
            "client_id": "c",
            "client_secret": secrets["AZ"],
            "authority": intakes.url,
        },
    }
    cfg = config(tmp_path / "state", source.url, sinks, features=["signinattempts"])
    assert run_once(cfg).code == 0
    assert set(intakes.intake.uuids("hec")) == set(uuids) == set(intakes.intake.uuids("sentinel"))
    assert all(v <= 0 for v in intakes.intake.ack_pending.values())


def test_check_says_what_is_wrong(
    source: Any, intakes: Any, secrets: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEC", "wrong")
    monkeypatch.setenv("DD", "wrong")
    monkeypatch.setenv("AZ", "wrong")
    sinks = all_sinks(intakes.url, secrets, tmp_path)
    sinks["down"] = {"type": "syslog", "protocol": "tcp", "host": "127.0.0.1", "port": 9}
    cfg = config(tmp_path / "state", source.url, {k: sinks[k] for k in ("hec", "dd", "sentinel", "es", "down")})
    results = {r.what.split(" ")[1]: r.problems for r in check(cfg)}
    assert results["src"] == []
    assert "token was refused" in results["hec"][0]
    assert "API key was refused" in results["dd"][0]
    assert "Invalid client secret" in results["sentinel"][0] and "wrong" not in results["sentinel"][0]
    assert results["es"] == []
    assert "cannot connect" in results["down"][0]


def test_sentinel_over_tls_with_the_azure_client_as_oracle(
    source: Any, tls_intakes: Any, secrets: Any, tmp_path: Path
) -> None:
    """azure-monitor-ingestion (which gzips and splits into 1 MB chunks itself) and our sink are
    both accepted by the same Logs Ingestion fake, over HTTPS (azure-core sends no bearer over http)."""
    from azure.core.credentials import AccessToken
    from azure.monitor.ingestion import LogsIngestionClient

    from .fake_intakes import AZURE_TOKEN

    class Static:
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            assert scopes == ("https://monitor.azure.com/.default",)  # the SDK's own form
            return AccessToken(AZURE_TOKEN, 2**31)

    ca = str(tls_intakes.tls_dir / "ca.pem")
    rows: list[MutableMapping[str, Any]] = [
        {"uuid": f"AZ{n:024d}", "padding": "x" * 2000, "TimeGenerated": "2026-01-01T00:00:00Z"} for n in range(1500)
    ]
    client = LogsIngestionClient(tls_intakes.url, Static(), connection_verify=ca)
    client.upload("dcr-oracle", "Custom-OnePasswordEventLogs_CL", rows)
    assert len(tls_intakes.intake.uuids("sentinel")) == 1500  # 3 MB arrived in several accepted chunks

    uuids = fill(source.live, source.key, Feature.AUDITEVENTS, 50)
    sink = {
        "type": "sentinel",
        "endpoint": tls_intakes.url,
        "rule_id": "dcr-1",
        "tenant_id": "t",
        "client_id": "c",
        "client_secret": secrets["AZ"],
        "authority": tls_intakes.url,
        "ca_file": ca,
    }
    cfg = config(tmp_path / "state", source.url, {"sentinel": sink}, features=["auditevents"])
    assert run_once(cfg).code == 0
    assert set(uuids) <= set(tls_intakes.intake.uuids("sentinel"))


FILE_SINK_HEALTH = """
from siemgate.forward.sinks.base import SinkContext
from siemgate.forward.sinks.files import FileConfig

sink = FileConfig(type="file", path="/proc/sys/siemgate-{feature}/out.jsonl").build("out", SinkContext("src"))
print(sink.health())
"""


def test_file_sink_health_lists_its_folders_in_stream_order_in_every_process() -> None:
    """The folders a file sink cannot write are listed in the order of the streams: they were
    gathered in a set of paths, ordered by the process's hash seed, so `siemgate forward check`
    listed them differently from run to run. /proc/sys is read-only even for root."""
    assert not os.access("/proc/sys", os.W_OK), "this test needs /proc/sys read-only, as Linux keeps it"
    expected = str([f"cannot write to /proc/sys/siemgate-{f.value}" for f in ALL_FEATURES]) + "\n"
    outputs = outputs_under_hash_seeds(FILE_SINK_HEALTH)
    assert set(outputs.values()) == {expected}, outputs
