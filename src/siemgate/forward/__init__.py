"""The forwarder: poll an Events API (siemgate's or 1Password's) and deliver each stream into SIEMs.

    client.py      the Events API client (public as `siemgate.client`): pages, retries, streams
    checkpoint.py  durable cursors in a SQLite file, committed only after every sink acknowledged
    pipeline.py    one source, several sinks: batching, commit-after-ack
    delivery.py    one sink's batches: retry, bisect poison, dead letters
    formats/       raw, ecs, ocsf documents
    sinks/         one module per destination
    config.py      the TOML configuration (pydantic), secrets from env or files
    runner.py      builds pipelines from the config; `siemgate forward` and `forward check`
    metrics.py     Prometheus metrics and the /healthz, /readyz, /metrics HTTP server

The delivery contract is in docs/forwarding.md.
"""
