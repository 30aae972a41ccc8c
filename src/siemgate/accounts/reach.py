"""Whether a SIEM can use the public address, said before its token is issued (docs/setup.md,
"The public address")."""

from __future__ import annotations

from siemgate.address import PublicAddress

SET_IT = "set SIEMGATE_PUBLIC_URL (public_url) to the address {who} reaches siemgate by, then issue the token"


def address_warnings(name: str, cloud: bool, url_from_token: bool, address: PublicAddress) -> list[str]:
    """What stops SIEM `name` from using `address` (loopback, a private network from the cloud,
    plain HTTP, a token audience the connector cannot use), each with what to change; [] when none."""
    who = f"{name} in the cloud" if cloud else name
    fix = SET_IT.format(who=who)
    warnings = []
    if address.local_only:
        where = "this machine only" if address.host != "0.0.0.0" and address.host != "::" else "no address at all"
        if cloud:
            warnings.append(f"{name} runs in the cloud and cannot reach {address.url} ({where}): {fix}.")
        else:
            warnings.append(f"{address.url} reaches {where}: unless {name}'s connector runs on this machine, {fix}.")
    elif cloud and address.private:
        warnings.append(f"{address.url} is on a private network, which {name} in the cloud cannot reach: {fix}.")
    if url_from_token and not address.https:
        warnings.append(
            f"{name}'s connector ignores any URL and connects to https://{address.audience} (the token's audience),"
            f" but siemgate's address is {address.url}: serve HTTPS there (SIEMGATE_TLS_CERTFILE or a TLS reverse"
            " proxy) and set SIEMGATE_PUBLIC_URL=https://... before issuing the token; a token keeps the address"
            " it was issued with."
        )
    elif cloud and not address.https and not address.local_only:
        warnings.append(
            f"{address.url} is plain HTTP: {name} would send the token across the internet in clear, and cloud"
            " connectors may refuse it. Serve HTTPS (docs/deploy.md) and set SIEMGATE_PUBLIC_URL=https://..."
        )
    return warnings
