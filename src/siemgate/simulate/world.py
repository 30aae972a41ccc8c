"""The simulated organisation: people, their devices and networks, vaults, groups and firewall.

`build_world` is deterministic: the same (users, seed, account name, domain) always builds the same
world, ids included. Everything is precomputed here (names, emails, clients, IP addresses), so the
event generator never calls Faker.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from faker import Faker
from faker.decode import unidecode

from siemgate.simulate.geo import ATTACK_SOURCES, CITIES, DENY_COUNTRIES, OFFICE_HUBS, City, city

Role = Literal["owner", "admin", "member", "guest", "service", "provisioner"]
DeviceKind = Literal["desktop", "extension", "mobile", "web", "cli", "sdk", "scim"]
MfaMethod = Literal["totp", "u2f", "duo", "none"]

DEPARTMENTS: tuple[tuple[str, float], ...] = (
    ("Engineering", 0.34),
    ("Sales", 0.15),
    ("Customer Support", 0.12),
    ("Marketing", 0.10),
    ("Finance", 0.07),
    ("IT", 0.07),
    ("People", 0.06),
    ("Legal", 0.04),
)
# First octets of public unicast IPv4 space (no private, CGNAT, loopback, link-local, test or multicast).
_PUBLIC_OCTETS = (
    23, 24, 31, 37, 45, 46, 50, 62, 64, 66, 67, 68, 69, 71, 72, 73, 74, 76, 77, 78, 79, 80, 81, 82,
    83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 104, 107, 108, 109, 151,
    173, 174, 176, 178, 185, 188, 193, 194, 195, 212, 213, 217,
)  # fmt: skip
_FAKER_LOCALES = {
    "US": "en_US", "CA": "en_CA", "GB": "en_GB", "IE": "en_IE", "AU": "en_AU", "NZ": "en_NZ",
    "DE": "de_DE", "CH": "de_CH", "FR": "fr_FR", "NL": "nl_NL", "ES": "es_ES", "PT": "pt_PT",
    "IT": "it_IT", "SE": "sv_SE", "PL": "pl_PL", "CZ": "cs_CZ", "RO": "ro_RO", "BR": "pt_BR",
    "AR": "es_AR", "CL": "es_CL", "CO": "es_CO", "MX": "es_MX", "IN": "en_IN", "JP": "ja_JP",
    "CN": "zh_CN", "TW": "zh_TW", "HK": "zh_CN", "SG": "en_US", "IL": "en_US",
}  # fmt: skip
_ROMANIZED = {"ja_JP", "zh_CN", "zh_TW"}
_SERVICE_ACCOUNTS = ("CI/CD Pipeline", "Terraform", "Kubernetes Operator", "Backup Job", "Monitoring")
_SERIAL_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_PAIRS = tuple(a + b for a in _B32 for b in _B32)  # 10 bits -> 2 characters
_PAIRS_LOWER = tuple(p.lower() for p in _PAIRS)
_SHIFTS = tuple(range(120, -1, -10))


def sim_id(rng: random.Random, *, lower: bool = False) -> str:
    """A 26-character base32 id drawn from `rng` (same shape as `model.ids.new_id`, but reproducible).

    Equal to `base64.b32encode(16 random bytes)` without the padding, upper-case for users, events,
    sessions and accounts, lower-case (lower=True) for vaults, items and devices.
    """
    n = rng.getrandbits(128) << 2  # 130 bits: 13 pairs of base32 characters
    pairs = _PAIRS_LOWER if lower else _PAIRS
    return "".join([pairs[(n >> shift) & 1023] for shift in _SHIFTS])


@dataclass(frozen=True, slots=True)
class SimDevice:
    """One 1Password client a user signs in from; `client(ip)` gives the Events API `client` object."""

    uuid: str
    kind: DeviceKind
    app_name: str
    app_version: str
    platform_name: str
    platform_version: str
    os_name: str
    os_version: str

    def client(self, ip: str) -> dict[str, str]:
        """The `client` object (all seven fields) for an event from this device at `ip`."""
        return {
            "app_name": self.app_name,
            "app_version": self.app_version,
            "platform_name": self.platform_name,
            "platform_version": self.platform_version,
            "os_name": self.os_name,
            "os_version": self.os_version,
            "ip_address": ip,
        }


@dataclass(frozen=True, slots=True)
class Person:
    """Someone who is not (yet, or any longer) an active member: invitees and leavers."""

    uuid: str
    name: str
    email: str

    def details(self) -> dict[str, str]:
        """The audit `ResourceDetails` object for this person."""
        return {"uuid": self.uuid, "name": self.name, "email": self.email}


@dataclass(frozen=True, slots=True)
class SimUser:
    """A member of the account. `office` is None for remote workers; `vaults` index `World.vaults`."""

    uuid: str
    name: str
    email: str
    role: Role
    department: str
    home: City
    office: City | None
    home_ip: str
    devices: tuple[SimDevice, ...]
    vaults: tuple[int, ...]
    private_vault_uuid: str
    mfa: MfaMethod
    sso: bool
    intensity: float  # relative activity level, about 0.3 to 3

    @property
    def is_admin(self) -> bool:
        """Owners and administrators."""
        return self.role in ("owner", "admin")

    @property
    def is_human(self) -> bool:
        """Not a service account or the provisioning bridge."""
        return self.role not in ("service", "provisioner")

    def details(self) -> dict[str, str]:
        """The audit `ResourceDetails` object for this user."""
        return {"uuid": self.uuid, "name": self.name, "email": self.email}


@dataclass(frozen=True, slots=True)
class SimItem:
    uuid: str
    version: int  # version at the start of the simulation


@dataclass(frozen=True, slots=True)
class SimVault:
    """A shared vault and its items; `cum_weights` are the items' cumulative popularity weights."""

    uuid: str
    name: str
    items: tuple[SimItem, ...]
    cum_weights: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class SimGroup:
    uuid: str
    name: str


@dataclass(frozen=True, slots=True)
class Firewall:
    """The account's sign-in firewall: denied countries and IPs, and report-only countries."""

    blocked_countries: tuple[str, ...]
    report_only_countries: tuple[str, ...]
    blocked_ips: tuple[str, ...]
    blocks_anonymous: bool = True


@dataclass(frozen=True)
class World:
    """Everything the generator draws from. Immutable; the generator keeps its own mutable state.

    `users` holds humans first, then service accounts, then (when SCIM provisioning is used) the
    provisioning bridge. Only shared vaults are in `vaults`: private vaults never produce item usage.
    """

    account_uuid: str
    account_name: str
    domain: str
    users: tuple[SimUser, ...]
    vaults: tuple[SimVault, ...]
    groups: tuple[SimGroup, ...]
    offices: tuple[City, ...]
    office_ips: dict[str, str]  # office city name -> egress IP
    firewall: Firewall
    newcomers: tuple[Person, ...]  # invitees and leavers for onboarding/offboarding audit events
    sso_enabled: bool
    ip_prefixes: dict[str, tuple[int, int]] = field(repr=False)  # city name -> first two octets

    @property
    def humans(self) -> tuple[SimUser, ...]:
        return tuple(u for u in self.users if u.is_human)

    @property
    def admins(self) -> tuple[SimUser, ...]:
        """Owners and administrators."""
        return tuple(u for u in self.users if u.is_admin)

    @property
    def provisioner(self) -> SimUser | None:
        """The SCIM bridge's Provision Manager, when the account provisions users through SCIM."""
        return next((u for u in self.users if u.role == "provisioner"), None)

    def user_ref(self, user: SimUser | Person) -> dict[str, str]:
        """The v2 `UserV2` object for `user` (target_user, user, actor_details)."""
        return {
            "uuid": user.uuid,
            "name": user.name,
            "email": user.email,
            "user_type": "user",
            "user_account_uuid": self.account_uuid,
        }

    def random_ip(self, place: City, rng: random.Random) -> str:
        """A random IPv4 address in the block this world assigns to `place`."""
        return _address(self.ip_prefixes, place.city, rng)


def domain_for(account_name: str) -> str:
    """The e-mail domain derived from an account name: "Acme Corp" -> "acme-corp.example".

    `.example` is reserved (RFC 2606), so simulated addresses can never reach a real mailbox.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", unidecode(account_name).lower()).strip("-")
    return f"{slug or 'company'}.example"


def build_world(account_uuid: str, account_name: str, users: int, seed: int, *, domain: str | None = None) -> World:
    """Build the organisation: `users` people (plus service accounts and maybe a SCIM bridge).

    Deterministic in (account_name, users, seed, domain); `account_uuid` only fills the
    `*_account_uuid` fields. Raises ValueError when `users` is not between 1 and 100,000.
    """
    if not 1 <= users <= 100_000:
        raise ValueError(f"users must be between 1 and 100000, got {users}")
    rng = random.Random(f"siemgate-world:{seed}:{users}")
    domain = domain or domain_for(account_name)
    prefixes = _ip_prefixes(rng)
    hubs = [city(name) for name in OFFICE_HUBS]
    n_offices = 1 if users < 15 else rng.choice((2, 2, 3, 3, 4))
    offices = tuple(rng.sample(hubs, n_offices))
    office_ips = {o.city: _address(prefixes, o.city, rng) for o in offices}
    names = _NameMaker(seed, domain)

    # Roles, departments and homes.
    n_owners = min(3, max(1, round(users * 0.01)))
    n_admins = max(1, round(users * 0.03)) if users >= 3 else users - n_owners
    n_guests = round(users * 0.05) if users >= 10 else 0
    counts: tuple[tuple[Role, int], ...] = (("owner", n_owners), ("admin", n_admins), ("guest", n_guests))
    roles: list[Role] = [role for role, n in counts for _ in range(n)]
    roles += ["member"] * (users - len(roles))
    office_weights = [0.5 if i == 0 else 0.5 / max(1, n_offices - 1) for i in range(n_offices)]
    remote_pool = [c for c in CITIES if c.country not in DENY_COUNTRIES and c.city not in ATTACK_SOURCES]
    dept_names = [d for d, _ in DEPARTMENTS]
    dept_weights = [w for _, w in DEPARTMENTS]

    # Vaults: one shared vault per department, plus "Shared", "Infrastructure", "Executive", "Partners".
    vault_names = ["Shared", *dept_names, "Infrastructure", "Executive"] + (["Partners"] if n_guests else [])
    vaults = tuple(_vault(rng, name, users) for name in vault_names)
    vault_index = {v.name: i for i, v in enumerate(vaults)}
    groups = tuple(SimGroup(sim_id(rng), name) for name in ("Owners", "Administrators", "Team Members", *dept_names))

    people: list[SimUser] = []
    for role in roles:
        if role == "guest":
            office, home = None, rng.choice(remote_pool)
            dept = "Partners"
        else:
            dept = (
                "IT" if role in ("owner", "admin") and rng.random() < 0.5 else rng.choices(dept_names, dept_weights)[0]
            )
            if rng.random() < 0.85:
                office = rng.choices(offices, office_weights)[0]
                home = office
            else:
                office, home = None, rng.choice(remote_pool)
        name, email = names.person(home.country)
        access = _vault_access(rng, role, dept, vault_index, len(vaults))
        people.append(
            SimUser(
                uuid=sim_id(rng),
                name=name,
                email=email,
                role=role,
                department=dept,
                home=home,
                office=office,
                home_ip=_address(prefixes, home.city, rng),
                devices=_devices(rng, role, dept, home, name),
                vaults=access,
                private_vault_uuid=sim_id(rng, lower=True),
                mfa=_mfa(rng, role),
                sso=False,
                intensity=min(3.0, max(0.3, rng.lognormvariate(0.0, 0.45))),
            )
        )
    sso_enabled = rng.random() < 0.3
    if sso_enabled:  # owners keep a password (break-glass); members sign in through the IdP
        people = [dataclasses.replace(u, sso=True) if u.role in ("member", "admin") else u for u in people]

    # Service accounts (SDK) and, for some accounts, the SCIM bridge's Provision Manager.
    hq = offices[0]
    n_service = 0 if users < 10 else max(1, users // 100)
    for i in range(n_service):
        label = _SERVICE_ACCOUNTS[i % len(_SERVICE_ACCOUNTS)] + ("" if i < len(_SERVICE_ACCOUNTS) else f" {i}")
        slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
        infra = (vault_index["Infrastructure"], vault_index["Engineering"])
        people.append(_machine(rng, "service", f"{label} (service account)", f"{slug}@{domain}", hq, office_ips, infra))
    if users >= 20 and rng.random() < 0.5:
        people.append(_machine(rng, "provisioner", "Provision Manager", f"scim-bridge@{domain}", hq, office_ips, ()))

    homes = {u.home.country for u in people}
    firewall = Firewall(
        blocked_countries=tuple(c for c in DENY_COUNTRIES if c not in homes),
        report_only_countries=tuple(c for c in ("CN", "VN", "NG") if c not in homes)[:2],
        blocked_ips=tuple(_address(prefixes, name, rng) for name in rng.sample(ATTACK_SOURCES, 3)),
    )
    newcomers = tuple(
        Person(sim_id(rng), *names.person(rng.choice(offices).country)) for _ in range(max(4, users // 8))
    )
    return World(
        account_uuid=account_uuid,
        account_name=account_name,
        domain=domain,
        users=tuple(people),
        vaults=vaults,
        groups=groups,
        offices=offices,
        office_ips=office_ips,
        firewall=firewall,
        newcomers=newcomers,
        sso_enabled=sso_enabled,
        ip_prefixes=prefixes,
    )


# --- helpers -------------------------------------------------------------------------------------


class _NameMaker:
    """Unique names and e-mail addresses from seeded Faker instances, one per locale (made lazily)."""

    def __init__(self, seed: int, domain: str) -> None:
        self._seed = seed
        self._domain = domain
        self._fakers: dict[str, Any] = {}
        self._emails: set[str] = set()

    def person(self, country: str) -> tuple[str, str]:
        locale = _FAKER_LOCALES.get(country, "en_US")
        fake = self._fakers.get(locale)
        if fake is None:
            fake = Faker(locale)
            fake.seed_instance(f"{self._seed}:{locale}")
            self._fakers[locale] = fake
        if locale in _ROMANIZED:
            first, last = fake.first_romanized_name(), fake.last_romanized_name()
        else:
            first, last = fake.first_name(), fake.last_name()
        local = ".".join(re.sub(r"[^a-z]", "", unidecode(p).lower()) for p in (first, last)) or "user"
        email, n = f"{local}@{self._domain}", 1
        while email in self._emails:
            n += 1
            email = f"{local}{n}@{self._domain}"
        self._emails.add(email)
        return f"{first} {last}", email


def _address(prefixes: dict[str, tuple[int, int]], city_name: str, rng: random.Random) -> str:
    a, b = prefixes[city_name]
    return f"{a}.{b}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _ip_prefixes(rng: random.Random) -> dict[str, tuple[int, int]]:
    pairs = [(a, b) for a in _PUBLIC_OCTETS for b in range(256)]
    chosen = rng.sample(pairs, len(CITIES))
    return {c.city: p for c, p in zip(CITIES, chosen, strict=True)}


def _vault(rng: random.Random, name: str, users: int) -> SimVault:
    base = {"Shared": 30, "Engineering": 60, "Infrastructure": 80, "Executive": 15, "Partners": 10}.get(name, 25)
    n = max(5, int(base * rng.uniform(0.6, 1.4) * min(4.0, max(0.5, (users / 200) ** 0.5))))
    items = tuple(SimItem(sim_id(rng, lower=True), 1 + int(rng.expovariate(0.25))) for _ in range(n))
    total, cum = 0.0, []
    for rank in range(n):  # Zipf-like popularity: a few items are used all the time
        total += 1.0 / (rank + 1) ** 0.9
        cum.append(total)
    return SimVault(sim_id(rng, lower=True), name, items, tuple(cum))


def _vault_access(rng: random.Random, role: Role, dept: str, index: dict[str, int], n: int) -> tuple[int, ...]:
    if role == "guest":
        return (index["Partners"],)
    if role in ("owner", "admin"):
        return tuple(i for name, i in index.items() if name != "Partners" and (role == "owner" or name != "Executive"))
    access = [index["Shared"], index[dept]]
    if dept in ("Engineering", "IT"):
        access.append(index["Infrastructure"])
    if rng.random() < 0.2:
        extra = rng.randrange(n)
        if extra not in access and extra != index["Executive"] and extra != index.get("Partners"):
            access.append(extra)
    return tuple(access)


def _mfa(rng: random.Random, role: Role) -> MfaMethod:
    if role in ("owner", "admin"):
        return "u2f" if rng.random() < 0.5 else "totp"
    if role == "guest":
        return "totp" if rng.random() < 0.4 else "none"
    methods: tuple[MfaMethod, ...] = ("totp", "u2f", "duo", "none")
    return rng.choices(methods, (0.58, 0.22, 0.08, 0.12))[0]


def _machine(
    rng: random.Random, role: Role, name: str, email: str, hq: City, office_ips: dict[str, str], vaults: Sequence[int]
) -> SimUser:
    kind: DeviceKind = "sdk" if role == "service" else "scim"
    return SimUser(
        uuid=sim_id(rng),
        name=name,
        email=email,
        role=role,
        department="Infrastructure",
        home=hq,
        office=hq,
        home_ip=office_ips[hq.city],
        devices=(_device(rng, kind, "linux", hq, name),),
        vaults=tuple(vaults),
        private_vault_uuid=sim_id(rng, lower=True),
        mfa="none",
        sso=False,
        intensity=1.0,
    )


# --- devices -------------------------------------------------------------------------------------

_APP8 = ("81024002", "81026001", "81028003", "81030012", "81032005")  # 8.10.24 build 002, ...
_APP8_W = (0.08, 0.12, 0.2, 0.3, 0.3)
_WEB = ("1867", "1872", "1881")
_CLI = ("2290001", "2300001", "2300301")
_SDK = ("0020101", "0030001", "0030101")
_SCIM = ("2090201", "2090301")
_BROWSERS: dict[str, tuple[str, ...]] = {
    "Chrome": ("127.0.6533.120", "128.0.6613.138", "129.0.6668.90"),
    "Firefox": ("128.0.3", "129.0.2", "130.0.1"),
    "Safari": ("17.6", "18.0"),
    "Edge": ("127.0.2651.105", "128.0.2739.79"),
}
_BROWSER_CHOICE: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "mac": (("Chrome", "Safari", "Firefox", "Edge"), (0.55, 0.2, 0.17, 0.08)),
    "windows": (("Chrome", "Edge", "Firefox"), (0.55, 0.35, 0.1)),
    "linux": (("Firefox", "Chrome"), (0.55, 0.45)),
}
_OS: dict[str, tuple[str, tuple[str, ...]]] = {
    "mac": ("macOS", ("13.6.9", "14.6.1", "14.7", "15.0")),
    "windows": ("Windows", ("10.0.19045", "10.0.22631", "10.0.26100")),
    "linux": ("Linux", ("6.5.0", "6.8.0", "6.10.6")),
    "ios": ("iOS", ("17.6.1", "18.0", "18.0.1")),
    "android": ("Android", ("13", "14", "15")),
}
_MODELS: dict[str, tuple[str, ...]] = {
    "mac": ("MacBookPro18,3", "MacBookPro18,1", "Mac14,5", "Mac15,6", "Mac14,2", "MacBookAir10,1", "iMac21,1"),
    "windows": ("Latitude 7440", "ThinkPad X1 Carbon Gen 11", "HP EliteBook 840 G10", "Surface Laptop 5",
                "XPS 15 9530", "OptiPlex 7010"),
    "linux": ("ThinkPad T14 Gen 4", "XPS 13 9315", "Framework Laptop 13", "ThinkPad X1 Carbon Gen 11"),
}  # fmt: skip
_PHONES: dict[str, tuple[tuple[str, str], ...]] = {
    "ios": (("iPhone", "iPhone14,5"), ("iPhone", "iPhone15,2"), ("iPhone", "iPhone16,1"), ("iPad", "iPad13,18")),
    "android": (("Google", "Pixel 7a"), ("Google", "Pixel 8"), ("samsung", "SM-S918B"), ("samsung", "SM-A546B")),
}
_DESKTOP_APP = {"mac": "1Password for Mac", "windows": "1Password for Windows", "linux": "1Password for Linux"}
_GOOS = {"mac": "darwin", "windows": "windows", "linux": "linux"}
# 1Password 7 clients, refused by the server (modern_version_failed).
LEGACY_DEVICES: tuple[tuple[str, str, str], ...] = (
    ("1Password for Windows", "70902005", "windows"),
    ("1Password for Mac", "70911002", "mac"),
)


def _devices(rng: random.Random, role: Role, dept: str, home: City, name: str) -> tuple[SimDevice, ...]:
    """1 to 3 clients: a desktop app or the web app, then some of browser extension, phone and CLI."""
    if role == "guest":
        platform = rng.choices(("mac", "windows"), (0.5, 0.5))[0]
        devices = [_device(rng, "web", platform, home, name)]
        if rng.random() < 0.3:
            devices.append(_device(rng, "mobile", platform, home, name))
        return tuple(devices)
    linux_weight = 0.3 if dept in ("Engineering", "IT") else 0.03
    platform = rng.choices(("mac", "windows", "linux"), (0.55, 0.35, linux_weight))[0]
    devices = [_device(rng, "desktop" if rng.random() < 0.85 else "web", platform, home, name)]
    extras: list[DeviceKind] = []
    if rng.random() < 0.75:
        extras.append("extension")
    if rng.random() < 0.6:
        extras.append("mobile")
    if dept in ("Engineering", "IT") and rng.random() < 0.5:
        extras.append("cli")
    rng.shuffle(extras)
    devices += [_device(rng, kind, platform, home, name) for kind in extras[:2]]
    return tuple(devices)


def _device(rng: random.Random, kind: DeviceKind, platform: str, home: City, owner: str) -> SimDevice:
    uuid = sim_id(rng, lower=True)
    os_name, os_versions = _OS[platform]
    os_version = rng.choice(os_versions)
    app8 = rng.choices(_APP8, _APP8_W)[0]
    if kind == "desktop":
        model = rng.choice(_MODELS[platform])
        return SimDevice(uuid, kind, _DESKTOP_APP[platform], app8, _hostname(rng, platform, home, owner), model,
                         os_name, os_version)  # fmt: skip
    if kind in ("extension", "web"):
        browsers, weights = _BROWSER_CHOICE[platform]
        browser = rng.choices(browsers, weights)[0]
        app_name, version = (
            ("1Password Browser Extension", app8) if kind == "extension" else ("1Password for Web", rng.choice(_WEB))
        )
        return SimDevice(uuid, kind, app_name, version, browser, rng.choice(_BROWSERS[browser]), os_name, os_version)
    if kind == "mobile":
        phone_os = "ios" if rng.random() < (0.85 if platform == "mac" else 0.4) else "android"
        maker, model = rng.choice(_PHONES[phone_os])
        app_name = "1Password for iOS" if phone_os == "ios" else "1Password for Android"
        os_name, os_versions = _OS[phone_os]
        return SimDevice(uuid, kind, app_name, app8, maker, model, os_name, rng.choice(os_versions))
    arch = "arm64" if platform == "mac" or rng.random() < 0.2 else "amd64"
    if kind == "cli":
        return SimDevice(uuid, kind, "1Password CLI", rng.choice(_CLI), _GOOS[platform], arch, os_name, os_version)
    if kind == "sdk":
        runtime, version = rng.choice((("Python", "3.12.5"), ("Go", "go1.22.6"), ("JavaScript", "20.17.0")))
        return SimDevice(uuid, kind, "1Password SDK", rng.choice(_SDK), runtime, version, "Linux", os_version)
    return SimDevice(uuid, kind, "1Password SCIM Bridge", rng.choice(_SCIM), "scim-bridge", arch, "Linux", os_version)


def legacy_device(rng: random.Random, user: SimUser) -> SimDevice:
    """A 1Password 7 desktop client of `user`'s: the server refuses it (modern_version_failed)."""
    app_name, version, platform = rng.choice(LEGACY_DEVICES)
    fresh = _device(rng, "desktop", platform, user.home, user.name)
    return dataclasses.replace(fresh, app_name=app_name, app_version=version)


def updated_device(rng: random.Random, old: SimDevice) -> SimDevice:
    """The same kind of client newly set up (new phone, reinstalled browser): a new uuid, latest app."""
    latest = {"8": _APP8[-1], "1": _WEB[-1], "2": _CLI[-1]}.get(old.app_version[:1], old.app_version)
    if old.kind in ("sdk", "scim"):
        latest = old.app_version
    return dataclasses.replace(old, uuid=sim_id(rng, lower=True), app_version=latest)


def _hostname(rng: random.Random, platform: str, home: City, owner: str) -> str:
    if platform == "mac":  # asset-tag style, as in real data: "US - C02FR0H8MD6P"
        return f"{home.country} - C02" + "".join(rng.choice(_SERIAL_CHARS) for _ in range(9))
    if platform == "windows":
        prefix = rng.choice(("DESKTOP-", "LAPTOP-"))
        return prefix + "".join(rng.choice(_SERIAL_CHARS) for _ in range(7))
    first = re.sub(r"[^a-z]", "", unidecode(owner.split()[0]).lower()) or "dev"
    return f"{first}-{rng.choice(('thinkpad', 'xps', 'framework', 'workstation'))}"
