"""Settings that hold lists (`trusted_proxies`, `outbound_allow`, `integrity_witness_urls`) take
the same two forms in the environment, entries separated by commas or a JSON list, and a list in
the TOML file. `trusted_proxies` took only JSON in the environment (a comma-separated value
stopped the server with "error parsing value for field "trusted_proxies" from source
"EnvSettingsSource"", not saying what to give), and took any string: a name or a mistyped address
never matched the proxy, so every person behind it counted as the proxy's one address in the
sign-in limits, and `*` believed X-Forwarded-For from any client. An invalid setting names its own
environment variable (it said `SIEMGATE_<NAME>`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from siemgate.config import load_settings
from siemgate.errors import ConfigError


@pytest.fixture(autouse=True)
def _no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no siemgate.toml read by chance
    monkeypatch.delenv("SIEMGATE_CONFIG", raising=False)


@pytest.mark.parametrize(
    ("value", "proxies"),
    [
        ("10.0.0.2", ["10.0.0.2"]),
        ("10.0.0.2, 192.168.1.0/24 fd00::/8", ["10.0.0.2", "192.168.1.0/24", "fd00::/8"]),
        # a network written in capitals or with leading zeros is the same network (it was refused as
        # "has host bits set"), as an address so written was taken
        ("2001:DB8::/32, 2001:0db8:0001::/48, FD00::2", ["2001:db8::/32", "2001:db8:1::/48", "fd00::2"]),
        ('["10.0.0.2", "192.168.1.0/24"]', ["10.0.0.2", "192.168.1.0/24"]),
        ("", []),
        ("[]", []),
    ],
)
def test_trusted_proxies_take_commas_or_a_json_list_in_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str, proxies: list[str]
) -> None:
    monkeypatch.setenv("SIEMGATE_TRUSTED_PROXIES", value)
    assert load_settings().trusted_proxies == proxies


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("proxy.internal", "'proxy.internal' is not an IP address or network: give each proxy's address"),
        ("10.0.0.300", "'10.0.0.300' is not an IP address or network"),
        ("10.0.0.1/8", "'10.0.0.1/8' has host bits set: give the network as 10.0.0.0/8"),
        ("2001:DB8::1/32", "'2001:DB8::1/32' has host bits set: give the network as 2001:db8::/32"),
        ("*", "'*' would believe X-Forwarded-For from every client"),
        ('["10.0.0.2", 7]', "give a list of strings"),
        ('["10.0.0.2"', "not a JSON list: give entries separated by commas"),
    ],
)
def test_a_trusted_proxy_that_is_not_an_address_or_network_is_refused_saying_what_to_give(
    monkeypatch: pytest.MonkeyPatch, value: str, said: str
) -> None:
    monkeypatch.setenv("SIEMGATE_TRUSTED_PROXIES", value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith("invalid configuration: trusted_proxies: "), message
    assert said in message and "(set by SIEMGATE_TRUSTED_PROXIES)" in message, message


def test_the_file_takes_a_list_and_refuses_a_star(tmp_path: Path) -> None:
    config = tmp_path / "siemgate.toml"
    config.write_text('trusted_proxies = ["10.0.0.2", "10.1.0.0/16"]\n')
    assert load_settings().trusted_proxies == ["10.0.0.2", "10.1.0.0/16"]
    config.write_text('trusted_proxies = ["*"]\n')
    with pytest.raises(ConfigError, match=r"'\*' would believe") as info:
        load_settings()
    assert f"(set by SIEMGATE_TRUSTED_PROXIES or {config.resolve()})" in str(info.value)


@pytest.mark.parametrize("name", ["SIEMGATE_OUTBOUND_ALLOW", "SIEMGATE_INTEGRITY_WITNESS_URLS"])
def test_the_other_lists_take_both_forms_too(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    setting = name.removeprefix("SIEMGATE_").lower()
    entries = ["10.0.0.0/8", "192.168.0.0/16"] if "ALLOW" in name else ["https://w1.example", "https://w2.example"]
    if "WITNESS" in name:
        monkeypatch.setenv("SIEMGATE_INTEGRITY_WITNESS_KEY_FILE", "/dev/null")
    for value in (", ".join(entries), '["' + '", "'.join(entries) + '"]'):
        monkeypatch.setenv(name, value)
        assert getattr(load_settings(), setting) == entries


def test_an_invalid_setting_names_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIEMGATE_PORT", "eighty")
    monkeypatch.setenv("SIEMGATE_LOG_FORMAT", "xml")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "port: Input should be a valid integer" in message and "(set by SIEMGATE_PORT)" in message, message
    assert "log_format: " in message and "(set by SIEMGATE_LOG_FORMAT)" in message, message
    assert "<NAME>" not in message
