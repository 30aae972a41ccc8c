"""Settings: one object built once (by the CLI or the ASGI factory) and passed down.

Sources, highest priority first: keyword arguments, environment (`SIEMGATE_*`, nested with `__`),
a TOML file (`SIEMGATE_CONFIG`, else `./siemgate.toml` when present), defaults.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from siemgate.address import PublicAddress, parse_address
from siemgate.errors import ConfigError
from siemgate.model.durations import MAX_RETENTION_DAYS
from siemgate.model.text import excerpt
from siemgate.outbound import OutboundPolicy

# The largest `ingest_max_event_bytes`: a quarter of the longest line archives and bundles are read
# with (tlog.bundle.MAX_LINE_BYTES, 64 MiB), so every stored event
# can be archived, exported and read back.
MAX_EVENT_BYTES = 16 * 1024 * 1024

# An SMTP EHLO name: a domain name, or an address literal (RFC 5321 4.1.3); nothing that could end
# the command (no space, CR or LF).
HELO_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,253}[A-Za-z0-9])?|\[(?:IPv6:)?[0-9A-Fa-f.:]{2,64}\]")


class Settings(BaseSettings):
    """Everything configurable. Field docs are the reference (docs/configuration.md)."""

    # inf and nan are no durations: `inf` seconds overflowed where they became nanoseconds, at start
    model_config = SettingsConfigDict(
        env_prefix="SIEMGATE_", env_nested_delimiter="__", extra="forbid", allow_inf_nan=False
    )

    data_dir: Path = Field(Path("siemgate-data"), description="Where the SQLite store and key files live.")
    database_url: str | None = Field(
        None,
        description="Store location; default sqlite:///<data_dir>/siemgate.db. postgresql://... for PostgreSQL.",
    )
    database_pool_size: int = Field(
        8, ge=1, le=200, description="PostgreSQL: most connections each siemgate process opens (its pool)."
    )
    database_connect_seconds: float = Field(
        10,
        gt=0,
        le=600,
        description="PostgreSQL: how long a siemgate process waits at start for the database to accept"
        " a connection (retrying) before it stops with an error naming the server.",
    )
    database_prepared_statements: bool = Field(
        True,
        description="PostgreSQL: prepare the statements each request runs (less parsing and planning)."
        " Set false behind a pooler in transaction mode that does not track prepared statements"
        " (PgBouncer before 1.21, or with max_prepared_statements = 0).",
    )
    host: str = Field("127.0.0.1", description="Address `siemgate serve` binds to.")
    port: int = Field(8080, ge=1, le=65535, description="Port `siemgate serve` listens on.")
    public_url: str | None = Field(
        None,
        description="The address SIEMs and people use to reach this server: scheme://host[:port], e.g."
        " https://siemgate.example.com. Shown in the console and the connection guides; its host[:port] is"
        " the `aud` of issued tokens. Default: http(s)://host:port.",
    )
    public_host: str | None = Field(
        None,
        description="Older form of public_url: host[:port] only (the scheme is https with tls_certfile, else http).",
    )
    http_keepalive_seconds: int = Field(
        75,
        ge=1,
        description="How long an idle HTTP connection stays open for its next request; keep it longer than"
        " the idle timeout of load balancers in front (often 60 s) and the polling interval of connectors.",
    )
    tls_certfile: Path | None = Field(None, description="Serve HTTPS with this certificate (PEM).")
    tls_keyfile: Path | None = Field(None, description="Private key for tls_certfile (PEM).")
    rate_limit_per_minute: int = Field(600, ge=1, description="Events API requests per token per minute.")
    rate_limit_per_hour: int = Field(30_000, ge=1, description="Events API requests per token per hour.")
    account_rate_limit_per_minute: int = Field(
        6_000,
        ge=1,
        description="Events API requests per account per minute, all its tokens together (an hour: 60 times it).",
    )
    admin_rate_limit_per_minute: int = Field(
        600, ge=1, description="Admin API requests (the console's included) per person per minute."
    )
    admin_rate_limit_per_hour: int = Field(20_000, ge=1, description="Admin API requests per person per hour.")
    console_session_hours: int = Field(
        12,
        ge=1,
        le=720,
        description="A console session ends this many hours after sign-in, however busy (the person signs in"
        " again); at most 720 (30 days). 12 is NIST SP 800-63B's AAL2 reauthentication period.",
    )
    console_idle_minutes: int = Field(
        30,
        ge=5,
        le=43_200,
        description="A console session not used for this many minutes ends (the person signs in again); 5 to"
        " 43200, and at most console_session_hours. 30 is NIST SP 800-63B's AAL2 inactivity limit.",
    )
    admin_queries_per_account: int = Field(
        2,
        ge=1,
        le=64,
        description="Event searches, exports and dashboard counts of one account running at once in a server"
        " process (of all accounts': half of database_pool_size); more wait their turn (at most 30 s, then 429).",
    )
    admin_query_seconds: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="An event search, export page or dashboard count that runs longer is stopped (503 saying to"
        " narrow the window).",
    )
    redis_url: str | None = Field(
        None,
        description="Share rate limits between server processes through Redis (redis://host:6379/0);"
        " in memory, per process, when absent.",
    )
    allow_account_creation: bool = Field(
        False,
        description="Let any signed-in person create accounts through the admin API (POST"
        " /api/admin/v1/accounts), and owners and administrators rename theirs (PATCH). Off: only the"
        " operator creates and renames accounts, with `siemgate account create` and `rename`.",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses or networks of reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are"
        " believed (client IPs in the audit trail and sign-in limits), e.g. 10.0.0.2 or 10.0.0.0/24;"
        " comma-separated in the environment. Empty: never believed, whoever sends them.",
    )
    metrics_token_file: Path | None = Field(
        None,
        description="File holding the bearer secret Prometheus sends to GET /metrics from another machine"
        " (Authorization: Bearer ...). Without it /metrics answers only scrapes over loopback (127.0.0.1, ::1).",
    )
    retention_days: int = Field(
        120,
        ge=1,
        le=MAX_RETENTION_DAYS,
        description="Default retention of events, per account and feature (at most 36500 days, 100 years).",
    )
    events_max_body_bytes: int = Field(64 * 1024, ge=1024, description="Largest Events API request body.")
    events_pages_per_account: int = Field(
        4,
        ge=1,
        le=64,
        description="Events API requests of one account (all its tokens together) served at once in a server"
        " process; more wait their turn (at most 10 s, then 429), holding no worker thread.",
    )
    admin_max_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="Largest request body of the admin API, the console and every endpoint other than the"
        " Events and ingest APIs; checked before the request is authenticated or parsed.",
    )
    ingest_max_body_bytes: int = Field(
        32 * 1024 * 1024, ge=1024, description="Largest ingest request body, as sent (gzip-encoded or not)."
    )
    ingest_max_decoded_bytes: int = Field(
        32 * 1024 * 1024, ge=1024, description="Largest ingest request body once gzip is decoded."
    )
    ingest_max_gzip_members: int = Field(
        10_000, ge=1, description="Most gzip members (concatenated gzip streams) in one gzip-encoded ingest body."
    )
    ingest_max_lines: int = Field(
        20_000,
        ge=1,
        description="Most lines in one NDJSON ingest body, blank lines included (keep it >= ingest_max_batch).",
    )
    ingest_max_batch: int = Field(10_000, ge=1, description="Most events in one ingest request.")
    ingest_max_event_bytes: int = Field(
        64 * 1024,
        ge=1024,
        le=MAX_EVENT_BYTES,
        description="Largest single event (its stored JSON), at most 16 MiB (archives read no longer line).",
    )
    ingest_max_future_seconds: int = Field(
        86_400,
        ge=0,
        description="How far after the server's clock an event sent to the ingest API may be dated; later ones"
        " are refused (400), as are events dated before the stream's retention window or ingest_max_past_days.",
    )
    ingest_max_past_days: int = Field(
        2000,
        ge=1,
        le=MAX_RETENTION_DAYS,
        description="How many days before the server's clock an event sent to the ingest API may be dated, whatever"
        " the stream's retention (older ones are refused, 400); the operator's `siemgate ingest`, the simulator"
        " and archive replay are not bounded.",
    )
    ingest_quota_per_minute: int = Field(
        600_000,
        ge=0,
        description="Most events one account may send through the ingest API per minute, shared by every"
        " process through redis_url; 0 for no limit.",
    )
    ingest_requests_per_account: int = Field(
        2,
        ge=1,
        le=64,
        description="Ingest requests of one account received and stored at once in a server process; more wait"
        " their turn (at most 10 s, then 429), holding no thread or database connection.",
    )
    stored_events_quota: int = Field(
        0, ge=0, description="Most events one account may hold in the store (ingest past it is 429); 0 for no limit."
    )
    sqlite_synchronous: Literal["NORMAL", "FULL"] = Field(
        "NORMAL",
        description="SQLite durability: NORMAL survives process crashes (the last commits may roll back on"
        " power loss); FULL also survives power loss, at the cost of an fsync per write.",
    )
    alerts_enabled: bool = Field(True, description="Evaluate alert rules as events are stored, and run their actions.")
    alerts_dispatch_seconds: float = Field(
        1.0,
        gt=0,
        description="How often due alert actions are carried out (new ones go at once); alerts waiting to be"
        " recorded as events are written after about a second, whatever this is.",
    )
    alerts_check_seconds: float = Field(
        60.0, gt=0, description="How often scheduled rules (SIEM tokens) are checked and evaluation catches up."
    )
    alerts_max_event_age_days: int = Field(
        7, ge=1, description="Events older than this when stored (archive replays, backfills) are not evaluated."
    )
    alerts_max_attempts: int = Field(8, ge=1, description="Attempts per alert action before it is marked failed.")
    alerts_retry_seconds: float = Field(
        30.0, gt=0, le=3600, description="First retry delay of a failed action; doubles per attempt, at most 1 hour."
    )
    alerts_dispatch_workers: int = Field(
        16, ge=1, le=256, description="Alert action deliveries carried out at once (each bounded by its timeout)."
    )
    alerts_account_concurrency: int = Field(
        4, ge=1, le=64, description="Alert action deliveries of one account in flight at once (its budget)."
    )
    alerts_account_cpu_share: float = Field(
        0.25,
        ge=0,
        le=64,
        description="CPU seconds per second one account's alert evaluation may use on average (up to 2 seconds"
        " saved up); past it, its costly rules are not evaluated on some events and show as failing. Its rebuilds of"
        " first-seen values from the stored history take at most this share of the time too. 0: unbounded.",
    )
    alerts_syslog_ca_file: Path | None = Field(
        None,
        description="CA file (PEM) that syslog alert actions over TLS check receivers with; default: the system CAs."
        " Set by the operator only: rules cannot name files.",
    )
    outbound_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Networks (10.0.0.0/8, 127.0.0.1) and host names that destinations set by tenants (alert"
        " webhooks, Slack hooks, syslog receivers) may reach although they are loopback, link-local, private"
        " or otherwise not global; comma-separated in the environment. Default: none (docs/security.md).",
    )
    smtp_host: str | None = Field(None, description="SMTP server for email alert actions.")
    smtp_port: int = Field(25, ge=1, le=65535, description="SMTP port (587 with starttls, 465 with tls).")
    smtp_from: str = Field("siemgate@localhost", description="Sender address of alert emails.")
    smtp_username: str | None = Field(None, description="SMTP login, if the server needs one.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password (env or file; never logged).")
    smtp_security: Literal["none", "starttls", "tls"] = Field("none", description="SMTP transport security.")
    smtp_helo_name: str | None = Field(
        None,
        description="Name siemgate gives itself in SMTP EHLO/HELO (a domain name or an address literal such as"
        " [192.0.2.1]). Default: the machine's host name when it has a dot, else the address literal of the"
        " connection's local end; never a DNS lookup, which no deadline bounds.",
    )
    smtp_timeout: float = Field(
        10.0, gt=0, le=60, description="Seconds an email attempt may take in all (at most 60, as other actions)."
    )
    retention_interval_seconds: float = Field(
        3600.0, gt=0, description="How often the server applies retention (archive, then purge)."
    )
    archive_dir: Path | None = Field(None, description="Where archives are written; default <data_dir>/archive.")
    archive_format: Literal["none", "jsonl", "parquet"] = Field(
        "jsonl", description="Default archive format for events leaving the store (none: purge without archiving)."
    )
    integrity_signer_url: str | None = Field(
        None, description="The log signer's URL, e.g. http://127.0.0.1:8790 (docs/integrity.md)."
    )
    integrity_signer_secret_file: Path | None = Field(
        None, description="File holding the shared secret of the log signer (never logged)."
    )
    integrity_checkpoint_seconds: int = Field(
        10, ge=1, le=3600, description="At most one checkpoint of a changing log per this many seconds."
    )
    integrity_heartbeat_seconds: int = Field(
        3600, ge=1, le=86400, description="An idle log is re-signed (a heartbeat) after this many seconds."
    )
    integrity_public_key_file: Path | None = Field(
        None, description="Public key file served at /.well-known/siemgate-log-keys; default: the signer's keys."
    )
    integrity_witness_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Witnesses (siemgate witness serve, or any C2SP tlog-witness) asked to cosign every checkpoint"
        " before it is published, e.g. https://witness.example.org; comma-separated in the environment"
        " (docs/integrity.md, 'Waiting for witnesses').",
    )
    integrity_witness_key_file: Path | None = Field(
        None,
        description="The witnesses' public key file (siemgate witness keys --out): their cosignatures are checked"
        " with these keys. Required with integrity_witness_urls.",
    )
    integrity_witness_quorum: int | None = Field(
        None,
        ge=0,
        description="How many distinct witnesses must cosign a checkpoint before it is published (default: every"
        " key in integrity_witness_key_file; 0: ask them, but publish without waiting).",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "text"] = Field("auto", description="auto: text on a TTY, else JSON.")

    @field_validator("outbound_allow", mode="before")
    @classmethod
    def _allow_list(cls, value: Any) -> list[str]:
        entries = setting_list(value)
        OutboundPolicy.from_allow_list(entries)  # ValueError names a bad entry
        return entries

    @field_validator("integrity_witness_urls", mode="before")
    @classmethod
    def _witness_urls(cls, value: Any) -> list[str]:
        return setting_list(value)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: Any) -> list[str]:
        return [proxy_network(entry) for entry in setting_list(value)]

    @field_validator("smtp_helo_name")
    @classmethod
    def _helo_name(cls, value: str | None) -> str | None:
        if value is not None and not HELO_NAME.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a name for SMTP EHLO: give a domain name (mail.example.com) or an address"
                " literal ([192.0.2.1], [IPv6:2001:db8::1]), at most 255 characters"
            )
        return value

    @field_validator("public_host")
    @classmethod
    def _no_scheme(cls, value: str | None) -> str | None:
        if value and "://" in value:
            raise ValueError(
                "give host[:port] without a scheme, e.g. siemgate.example.com or 10.0.0.5:8443"
                " (or the whole address as public_url)"
            )
        return value

    @field_validator("public_url")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else parse_address(value).url

    @model_validator(mode="after")
    def _idle_within_lifetime(self) -> Settings:
        if self.console_idle_minutes > self.console_session_hours * 60:
            raise ValueError(
                f"console_idle_minutes {self.console_idle_minutes} is longer than console_session_hours"
                f" {self.console_session_hours} ({self.console_session_hours * 60} minutes), so it would never"
                " apply; lower console_idle_minutes or raise console_session_hours"
            )
        return self

    @model_validator(mode="after")
    def _one_address(self) -> Settings:
        if self.public_url and self.public_host:
            url = parse_address(self.public_url)
            if url != parse_address(f"{url.scheme}://{self.public_host}"):
                raise ValueError(
                    f"public_url {self.public_url} and public_host {self.public_host} name different addresses;"
                    " set only public_url"
                )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = _config_file()
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    def _legacy_address(self) -> PublicAddress:
        scheme = "https" if self.tls_certfile else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return parse_address(f"{scheme}://{self.public_host or f'{host}:{self.port}'}")

    @property
    def address(self) -> PublicAddress:
        """The one address SIEMs use (public_url, else public_host, else host:port)."""
        return parse_address(self.public_url) if self.public_url else self._legacy_address()

    @property
    def address_configured(self) -> bool:
        """Whether the operator set the public address (public_url or public_host)."""
        return bool(self.public_url or self.public_host)

    @property
    def audience(self) -> str:
        """The `aud` of tokens this server issues: the public address's host[:port]."""
        return self.address.audience

    @property
    def base_url(self) -> str:
        """The URL users point their SIEM at."""
        return self.address.url

    @property
    def archive_path(self) -> Path:
        """Where archives go: archive_dir, or <data_dir>/archive."""
        return self.archive_dir or self.data_dir / "archive"

    @property
    def store_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'siemgate.db').resolve()}"


def _config_file() -> Path | None:
    explicit = os.environ.get("SIEMGATE_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"SIEMGATE_CONFIG points to {path}, which is not a file")
        return path
    default = Path("siemgate.toml")
    return default if default.is_file() else None


# SIEMGATE_* variables that are not settings: the config file's path, the signer's flags, the
# shell variables `siemgate demo` suggests, and the test suite's own.
_NOT_SETTINGS = ("SIEMGATE_CONFIG", "SIEMGATE_TOKEN", "SIEMGATE_INGEST_KEY")
_NOT_SETTINGS_PREFIXES = ("SIEMGATE_SIGNER_", "SIEMGATE_TEST_")
_warned: set[str] = set()


def unknown_variables(environ: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """(name, closest setting's variable or None) for each SIEMGATE_* variable that is not a setting."""
    fields = {f"SIEMGATE_{name.upper()}" for name in Settings.model_fields}
    unknown = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith("SIEMGATE_") or upper in _NOT_SETTINGS or upper.startswith(_NOT_SETTINGS_PREFIXES):
            continue
        if upper.split("__", 1)[0] in fields:  # nested values: SIEMGATE_<FIELD>__<KEY>
            continue
        close = difflib.get_close_matches(upper, sorted(fields), n=1, cutoff=0.75)
        unknown.append((name, close[0] if close else None))
    return unknown


def _problem(loc: tuple[int | str, ...], message: str, file: Path | None) -> str:
    """One invalid setting: its name, pydantic's message, and where it can be set (its environment
    variable, and the configuration file when one is read)."""
    name = ".".join(str(p) for p in loc) or "settings"
    where = f"SIEMGATE_{str(loc[0]).upper()}" if loc else "SIEMGATE_<NAME>"
    if file is not None:
        where += f" or {file.resolve()}"
    return f"{name}: {message.removeprefix('Value error, ')} (set by {where})"


def _warn_unknown_variables(settings: Settings) -> None:
    """Say once per process, on stderr, which SIEMGATE_* variables are ignored (a typo would
    otherwise silently leave a setting at its default); quiet with log_level = error."""
    if settings.log_level == "error":
        return
    for name, close in unknown_variables(os.environ):
        if name in _warned:
            continue
        _warned.add(name)
        hint = f"; did you mean {close}?" if close else ""
        print(
            f"warning: {name} is not a siemgate setting and is ignored{hint} (docs/configuration.md)",
            file=sys.stderr,
        )


_TOML_AT_LINE = re.compile(r"\(at line (\d+), column \d+\)")


def explain_toml_error(exc: ValueError, text: str) -> str:
    """tomllib's message for TOML `text`; for a key or table given twice, which tomllib reports
    as "Cannot overwrite a value" or "Cannot declare ... twice" without naming it, also the line."""
    message = str(exc)
    found = _TOML_AT_LINE.search(message)
    if found is None or not ("overwrite" in message or "twice" in message):
        return message
    lines = text.splitlines()
    number = int(found.group(1))
    shown = excerpt(lines[number - 1].strip()) if 0 < number <= len(lines) else "?"
    return f"{message}: line {number} ({shown}) sets a key or table an earlier line set; set each once"


def setting_list(value: Any) -> list[str]:
    """A setting that holds a list: a list of strings, or one string holding a JSON list of strings
    or entries separated by commas or spaces (the environment's form). Raises ValueError saying
    which forms are taken."""
    if value is None:
        return []
    if isinstance(value, str):
        if not value.lstrip().startswith("["):
            return [part for part in value.replace(",", " ").split() if part]
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError(
                'not a JSON list: give entries separated by commas (a, b) or a JSON list of strings (["a", "b"])'
            ) from None
    if not isinstance(value, list | tuple) or not all(isinstance(entry, str) for entry in value):
        raise ValueError('give a list of strings (in TOML, ["a", "b"]; in the environment, a, b)')
    return [entry.strip() for entry in value if entry.strip()]


def proxy_network(entry: str) -> str:
    """A `trusted_proxies` entry as an address or network in its normal form. Raises ValueError
    for anything else: a name or a mistyped address would never match a client, and the
    server would then count every person behind the proxy as one address; `*` (every client)
    would let anyone choose the address the audit trail records and the sign-in limits count."""
    if entry == "*":
        raise ValueError(
            "'*' would believe X-Forwarded-For from every client, so anyone could choose the address the"
            " audit trail records and sign-in limits count: list your proxies' addresses or networks"
        )
    try:
        network = ipaddress.ip_network(entry, strict=False) if "/" in entry else ipaddress.ip_address(entry)
    except ValueError:
        raise ValueError(
            f"{excerpt(entry)} is not an IP address or network: give each proxy's address (10.0.0.2) or"
            " network (10.0.0.0/24); names are not looked up"
        ) from None
    # host bits set (10.0.0.1/8), not a network written another way (2001:DB8::/32, 2001:0db8::/32)
    written = ipaddress.ip_address(entry.partition("/")[0]) if "/" in entry else None
    if isinstance(network, ipaddress.IPv4Network | ipaddress.IPv6Network) and written != network.network_address:
        raise ValueError(f"{excerpt(entry)} has host bits set: give the network as {network}")
    return str(network)


def _read_quietly(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def load_settings(**overrides: Any) -> Settings:
    """Build Settings from all sources; raises ConfigError naming each bad setting and how to fix it.
    Warns on stderr about SIEMGATE_* variables that are not settings."""
    file = _config_file()
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(_problem(err["loc"], err["msg"], file) for err in exc.errors())
        raise ConfigError(f"invalid configuration: {problems}") from None
    except ValueError as exc:  # e.g. a TOML syntax error; the file may have been found in the working directory
        named = f" {file.resolve()}" if file is not None else ""
        text = _read_quietly(file) if file is not None else ""
        raise ConfigError(f"invalid configuration file{named}: {explain_toml_error(exc, text)}") from None
    _warn_unknown_variables(settings)
    return settings
