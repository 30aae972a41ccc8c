"""Event generation: a history over a time window, or an endless live stream.

Both yield events in *insertion order*: the order a real account would have recorded them. That is
timestamp order except for late item usages (about 3%, `LATE_FRACTION`): a client that synced late,
emitted hours (history) or minutes (live) after its timestamp, so it comes after newer events.
Every event is a v2 event that passes strict validation. Output is a pure function of the world,
the seed and the time arguments: same inputs, same events, ids included.
"""

from __future__ import annotations

import heapq
import math
import random
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from siemgate.model.features import Feature
from siemgate.model.timestamps import format_ns, parse_ns
from siemgate.simulate.geo import ANONYMISER_HOSTS, ATTACK_SOURCES, CITIES, City, city
from siemgate.simulate.pace import Pace, Rhythm
from siemgate.simulate.world import (
    Person,
    SimDevice,
    SimUser,
    World,
    legacy_device,
    sim_id,
    updated_device,
)

SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
LATE_FRACTION = 0.03
HISTORY_LATE_DELAY = (1 * HOUR, 12 * HOUR)
LIVE_LATE_DELAY = (2 * MINUTE, 30 * MINUTE)
SESSION_TTL = 10 * HOUR
_SIGNIN, _USAGE, _AUDIT = Feature.SIGNINATTEMPTS, Feature.ITEMUSAGES, Feature.AUDITEVENTS

# Sign-ins per device per working day (Poisson means) and the item-usage action mix per client kind.
_SIGNINS = {"desktop": 4.0, "extension": 5.0, "mobile": 2.6, "web": 2.2, "cli": 3.0}
_ACTIONS: dict[str, dict[str, float]] = {
    "desktop": {"fill": 42, "reveal": 23, "secure-copy": 21, "enter-item-edit-mode": 8, "select-sso-provider": 3,
                "share": 1.5, "export": 0.3},
    "extension": {"fill": 70, "reveal": 8, "secure-copy": 10, "select-sso-provider": 7, "enter-item-edit-mode": 4,
                  "share": 1},
    "mobile": {"fill": 50, "reveal": 20, "secure-copy": 22, "enter-item-edit-mode": 5, "share": 2,
               "select-sso-provider": 1},
    "web": {"reveal": 35, "secure-copy": 25, "enter-item-edit-mode": 12, "server-fetch": 10, "server-update": 8,
            "server-create": 3, "share": 5, "export": 1},
    "cli": {"server-fetch": 86, "server-update": 8, "server-create": 5, "export": 0.5},
    "sdk": {"server-fetch": 93, "server-update": 4, "server-create": 3},
}  # fmt: skip
_MFA_FAILURES: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "totp": (("totp_bad", "totp_timeout", "mfa_missing"), (0.75, 0.17, 0.08)),
    "u2f": (("u2f_bad", "u2f_timeout", "mfa_missing"), (0.5, 0.42, 0.08)),
    "duo": (("duo_timeout", "duo_bad", "duo_native_bad", "mfa_missing"), (0.45, 0.3, 0.17, 0.08)),
}


class Emission(NamedTuple):
    """A live event and the time (ns) it is due to be written."""

    due_ns: int
    feature: Feature
    event: dict[str, Any]


@dataclass(slots=True)
class _Session:
    uuid: str
    login_ns: int
    device: SimDevice
    ip: str
    place: City
    located: bool


def history(world: World, start_ns: int, end_ns: int, seed: int) -> Iterator[tuple[Feature, dict[str, Any]]]:
    """Yield (feature, event) for activity with timestamps in [start_ns, end_ns], in insertion order.

    Includes at least one brute-force burst and one firewall burst. Late item usages whose arrival
    would be after end_ns are yielded last. Raises ValueError when end_ns <= start_ns.
    """
    if end_ns <= start_ns:
        raise ValueError("the history's end must be after its start")
    sim = _Sim(world, random.Random(f"siemgate-history:{seed}:{start_ns}:{end_ns}"), HISTORY_LATE_DELAY)
    rng = sim.rng
    days = (end_ns - start_ns) / DAY
    last = max(start_ns, end_ns - 20 * MINUTE)
    for _ in range(max(1, _poisson(rng, days / 2.5))):
        sim.brute_force(rng.randint(start_ns, last))
    for _ in range(max(1, _poisson(rng, days / 4))):
        sim.firewall_burst(rng.randint(start_ns, last))
    for _ in range(_poisson(rng, len(sim.humans) * 0.025 * days)):
        sim.blocked_attempt(rng.randint(start_ns, end_ns))
    for day in range(start_ns // DAY - 1, end_ns // DAY + 2):
        weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
        for user in sim.humans:
            sim.user_day(user, day, day * DAY - user.home.utc_offset_hours * HOUR, weekday)
        for user in sim.machines:
            sim.machine_day(user, day * DAY)
        # Local days start at most 14 hours before their UTC day; nothing later can be earlier.
        yield from sim.drain((day + 1) * DAY - 14 * HOUR, start_ns, end_ns)
    yield from sim.drain(None, start_ns, end_ns)


def live_events(world: World, seed: int, start_ns: int, rate: float | None = None) -> Iterator[Emission]:
    """An endless stream of events from start_ns on, in due order.

    With `rate`, about that many actions per second (each one to a few events) plus a brute-force
    burst within the first two minutes and then about every five, and a firewall burst about every
    eight. Without it, the stream follows the rhythm of this world's history (`history_rhythm`):
    each hour of the week brings about as many events as the history has in that hour, bursts as
    often as in the history, after a first brute-force and a first firewall burst within minutes.
    Timestamps follow a virtual clock that starts at start_ns; the caller paces writing by `due_ns`
    (see `runner.run_live`). Raises ValueError when rate is given and not positive.
    """
    if rate is not None and not rate > 0:
        raise ValueError(f"rate must be a positive number of events per second, got {rate}")
    sim = _Sim(world, random.Random(f"siemgate-live:{seed}:{start_ns}"), LIVE_LATE_DELAY)
    rng = sim.rng
    pace = Pace(rng, rate, None if rate else history_rhythm(world, seed, start_ns))
    brute_every, firewall_every = (300 * SECOND, 480 * SECOND) if rate else (int(2.5 * DAY), 4 * DAY)
    t = start_ns
    next_brute = t + rng.randint(20 * SECOND, 120 * SECOND)
    next_firewall = t + rng.randint(60 * SECOND, 240 * SECOND)
    weights_minute, cum_weights = -1, [0.0]
    while True:
        t = pace.next(t)
        while t >= next_brute:
            sim.brute_force(next_brute)
            next_brute += int(rng.expovariate(SECOND / brute_every) * SECOND) + 30 * SECOND
        while t >= next_firewall:
            sim.firewall_burst(next_firewall)
            next_firewall += int(rng.expovariate(SECOND / firewall_every) * SECOND) + 30 * SECOND
        if t // MINUTE != weights_minute:
            weights_minute, cum_weights = t // MINUTE, sim.activity_weights(t)
        before = sim.pushed
        sim.live_action(t, cum_weights)
        pace.produced += sim.pushed - before
        heap = sim.heap
        while heap and heap[0][0] <= t:
            emit, _, _, feature, event = heapq.heappop(heap)
            yield Emission(emit, feature, event)


def history_rhythm(world: World, seed: int, end_ns: int, weeks: int = 2) -> Rhythm:
    """The events per hour of each hour of the week in `weeks` weeks of `world`'s history ending at end_ns."""
    start_ns = end_ns - weeks * 7 * DAY
    stamps = (parse_ns(event["timestamp"]) for _, event in history(world, start_ns, end_ns, seed))
    return Rhythm.measure(stamps, start_ns, end_ns)


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _cum(weights: dict[str, float]) -> tuple[tuple[str, ...], tuple[float, ...]]:
    total, cum = 0.0, []
    for w in weights.values():
        total += w
        cum.append(total)
    return tuple(weights), tuple(cum)


class _Sim:
    """The generator's mutable state (sessions, item versions, trips, suspensions) and event builders.

    Events go onto a heap keyed by emission time; `drain` pops them in insertion order.
    """

    def __init__(self, world: World, rng: random.Random, late_delay: tuple[int, int]) -> None:
        self.world = world
        self.rng = rng
        self.late_delay = late_delay
        self.account = world.account_uuid
        self.heap: list[tuple[int, int, int, Feature, dict[str, Any]]] = []
        self._counter = 0
        self.humans = [u for u in world.users if u.is_human]
        self.machines = [u for u in world.users if u.role == "service"]
        self.admins = [u for u in self.humans if u.is_admin]
        self.members = [u for u in self.humans if u.role in ("member", "guest")] or self.humans
        self.provisioner = world.provisioner
        self.refs = {u.uuid: world.user_ref(u) for u in world.users}
        self.locations = {c.city: c.location() for c in CITIES}
        self.devices = {u.uuid: list(u.devices) for u in world.users}
        self.versions: dict[str, int] = {}
        self.sessions: dict[str, _Session] = {}  # device uuid -> latest session
        self.trips: dict[str, tuple[int, City, str]] = {}  # user uuid -> (last day, city, ip)
        self.today: dict[str, tuple[int, City, str]] = {}  # user uuid -> (day, city, ip)
        # Suspended or removed users: uuid -> (from, until) in ns. Nobody is suspended in the middle of
        # their activity (`last_active`), and nobody is active while suspended.
        self.away: dict[str, tuple[int, int]] = {}
        self.last_active: dict[str, int] = {}
        self.next_newcomer = 0
        fw = world.firewall
        homes = {u.home.country for u in world.users}
        self.attack_cities = [
            city(n)
            for n in ATTACK_SOURCES
            if city(n).country not in fw.blocked_countries and city(n).country not in homes
        ] or [city("Lagos")]
        self.blocked_cities = [c for c in CITIES if c.country in fw.blocked_countries]
        self.anon_cities = [city(n) for n in ANONYMISER_HOSTS]
        self.travel_cities = [c for c in CITIES if c.city not in ATTACK_SOURCES]
        self.report_cities = [c for c in CITIES if c.country in fw.report_only_countries]
        by_prefix = {p: name for name, p in world.ip_prefixes.items()}
        self.blocked_ips = [(ip, city(by_prefix[_prefix(ip)])) for ip in fw.blocked_ips]
        self.action_tables = {kind: _cum(weights) for kind, weights in _ACTIONS.items()}

    # output -------------------------------------------------------------------------------------
    @property
    def pushed(self) -> int:
        """How many events were generated so far."""
        return self._counter

    def push(self, emit: int, ts: int, feature: Feature, event: dict[str, Any]) -> None:
        self._counter += 1
        heapq.heappush(self.heap, (emit, self._counter, ts, feature, event))

    def drain(self, upto: int | None, start_ns: int, end_ns: int) -> Iterator[tuple[Feature, dict[str, Any]]]:
        """Pop events emitted before `upto` (all when None), keeping those timestamped in the window."""
        heap = self.heap
        while heap and (upto is None or heap[0][0] < upto):
            _, _, ts, feature, event = heapq.heappop(heap)
            if start_ns <= ts <= end_ns:
                yield feature, event

    # sign-ins -----------------------------------------------------------------------------------
    def signin_event(
        self, t: int, session: str, user: SimUser, client: dict[str, str], place: City, category: str, kind: str,
        details: str | None = None, *, located: bool = True,
    ) -> None:  # fmt: skip
        event: dict[str, Any] = {
            "uuid": sim_id(self.rng),
            "session_uuid": session,
            "timestamp": format_ns(t),
            "country": place.country,
            "category": category,
            "type": kind,
            "details": None if details is None else {"value": details},
            "target_user": dict(self.refs[user.uuid]),
            "client": client,
        }
        if located:
            event["location"] = dict(self.locations[place.city])
        event["account_uuid"] = self.account
        self.push(t, t, _SIGNIN, event)

    def signin(self, user: SimUser, device: SimDevice, t: int, ip: str, place: City, located: bool) -> _Session | None:
        """A sign-in, sometimes after a failed try; returns the new session (None when the firewall blocked it)."""
        rng, fw = self.rng, self.world.firewall
        sid = sim_id(rng)
        client = device.client(ip)
        if place.country in fw.blocked_countries:  # a traveller in a denied country
            self.signin_event(
                t, sid, user, client, place, "firewall_failed", "country_blocked", place.country, located=located
            )
            self.touch(user, t)
            return None
        r = rng.random()
        mfa_retry = False
        if not user.is_human:
            pass
        elif r < 0.040:
            for _ in range(1 if rng.random() < 0.85 else 2):
                self.signin_event(
                    t, sid, user, client, place, "credentials_failed", "password_secret_bad", located=located
                )
                t += rng.randint(4 * SECOND, 40 * SECOND)
        elif r < 0.064 and user.mfa != "none":
            kinds, weights = _MFA_FAILURES[user.mfa]
            self.signin_event(
                t, sid, user, client, place, "mfa_failed", rng.choices(kinds, weights)[0], located=located
            )
            t += rng.randint(10 * SECOND, 90 * SECOND)
            mfa_retry = True
        elif r < 0.068:  # on a commercial VPN: blocked, then signs in again without it
            vpn = rng.choice(self.anon_cities)
            vpn_ip = self.world.random_ip(vpn, rng)
            self.signin_event(t, sid, user, device.client(vpn_ip), vpn, "firewall_failed", "anonymous_blocked", vpn_ip)
            t += rng.randint(1 * MINUTE, 5 * MINUTE)
        elif r < 0.0705:
            kind = rng.choice(("sso_user_mismatch", "non_sso_user")) if user.sso else "non_sso_user"
            self.signin_event(t, sid, user, client, place, "sso_failed", kind, located=located)
            t += rng.randint(20 * SECOND, 2 * MINUTE)
        elif r < 0.0725:
            old = legacy_device(rng, user).client(ip)
            kind = "modern_version_old" if rng.random() < 0.8 else "modern_version_missing"
            self.signin_event(t, sid, user, old, place, "modern_version_failed", kind, located=located)
            t += rng.randint(2 * MINUTE, 10 * MINUTE)
        if place.country in fw.report_only_countries:
            self.signin_event(
                t,
                sid,
                user,
                client,
                place,
                "firewall_reported_success",
                "country_blocked",
                place.country,
                located=located,
            )
        else:
            if user.sso:
                kind = "federated"
            elif mfa_retry or (user.mfa != "none" and rng.random() < 0.22):
                kind = "mfa_ok"
            else:
                kind = "credentials_ok"
            self.signin_event(t, sid, user, client, place, "success", kind, located=located)
        self.touch(user, t)
        session = _Session(sid, t, device, ip, place, located)
        self.sessions[device.uuid] = session
        return session

    def attacker_client(self, ip: str) -> dict[str, str]:
        rng = self.rng
        browser, version = rng.choice((("Chrome", "124.0.6367.91"), ("Firefox", "115.0"), ("Chrome", "118.0.5993.70")))
        os_name, os_version = rng.choice((("Windows", "10.0.19045"), ("Linux", "5.15.0"), ("Windows", "10.0.17763")))
        device = SimDevice("", "web", "1Password for Web", "1867", browser, version, os_name, os_version)
        return device.client(ip)

    def brute_force(self, t: int) -> None:
        """10-40 wrong passwords for one user from one foreign IP within minutes; sometimes then IP-blocked."""
        rng = self.rng
        target = rng.choice(self.admins) if self.admins and rng.random() < 0.3 else rng.choice(self.humans)
        source = rng.choice(self.attack_cities)
        ip = self.world.random_ip(source, rng)
        client = self.attacker_client(ip)
        for _ in range(rng.randint(10, 40)):
            self.signin_event(t, sim_id(rng), target, client, source, "credentials_failed", "password_secret_bad")
            t += rng.randint(2 * SECOND, 20 * SECOND)
        if rng.random() < 0.4:  # an administrator added the address to the firewall's deny list
            t += rng.randint(3 * MINUTE, 20 * MINUTE)
            for _ in range(rng.randint(1, 5)):
                self.signin_event(t, sim_id(rng), target, client, source, "firewall_failed", "ip_blocked", ip)
                t += rng.randint(5 * SECOND, 60 * SECOND)

    def firewall_burst(self, t: int) -> None:
        """5-25 attempts from a denied country or an anonymiser, all blocked, within minutes."""
        rng = self.rng
        target = rng.choice(self.humans)
        if self.blocked_cities and rng.random() < 0.7:
            source, kind = rng.choice(self.blocked_cities), "country_blocked"
        else:
            source, kind = rng.choice(self.anon_cities), "anonymous_blocked"
        ip = self.world.random_ip(source, rng)
        client = self.attacker_client(ip)
        value = source.country if kind == "country_blocked" else ip
        for _ in range(rng.randint(5, 25)):
            self.signin_event(t, sim_id(rng), target, client, source, "firewall_failed", kind, value)
            t += rng.randint(5 * SECOND, 60 * SECOND)

    def blocked_attempt(self, t: int) -> None:
        """One stray attempt stopped by the firewall (denied country, denied IP or anonymiser)."""
        rng = self.rng
        r = rng.random()
        if r < 0.45 and self.blocked_cities:
            source = rng.choice(self.blocked_cities)
            ip, kind, value = self.world.random_ip(source, rng), "country_blocked", source.country
        elif r < 0.8 and self.blocked_ips:
            ip, source = rng.choice(self.blocked_ips)
            kind, value = "ip_blocked", ip
        else:
            source = rng.choice(self.anon_cities)
            ip = self.world.random_ip(source, rng)
            kind, value = "anonymous_blocked", ip
        target = rng.choice(self.humans)
        self.signin_event(t, sim_id(rng), target, self.attacker_client(ip), source, "firewall_failed", kind, value)

    # item usage ---------------------------------------------------------------------------------
    def item_usage(self, user: SimUser, s: _Session, t: int) -> None:
        rng = self.rng
        vault = self.world.vaults[rng.choice(user.vaults)]
        item = rng.choices(vault.items, cum_weights=vault.cum_weights)[0]
        actions, cum = self.action_tables[s.device.kind]
        action = rng.choices(actions, cum_weights=cum)[0]
        version = self.versions.get(item.uuid, item.version)
        if action == "server-update" or (action == "enter-item-edit-mode" and rng.random() < 0.6):
            self.versions[item.uuid] = version + 1
        event: dict[str, Any] = {
            "uuid": sim_id(rng),
            "timestamp": format_ns(t),
            "used_version": version,
            "vault_uuid": vault.uuid,
            "item_uuid": item.uuid,
            "action": action,
            "user": dict(self.refs[user.uuid]),
            "client": s.device.client(s.ip),
        }
        if s.located:
            event["location"] = dict(self.locations[s.place.city])
        event["account_uuid"] = self.account
        emit = t + rng.randint(*self.late_delay) if rng.random() < LATE_FRACTION else t
        self.touch(user, t)
        self.push(emit, t, _USAGE, event)

    # audit events -------------------------------------------------------------------------------
    def audit(
        self, actor: SimUser, s: _Session, t: int, action: str, object_type: str, object_uuid: str | None = None, *,
        obj: SimUser | Person | None = None, aux_uuid: str | None = None, aux: SimUser | Person | None = None,
        aux_info: str | None = None,
    ) -> None:  # fmt: skip
        event: dict[str, Any] = {
            "uuid": sim_id(self.rng),
            "timestamp": format_ns(t),
            "actor_uuid": actor.uuid,
            "actor_details": dict(self.refs[actor.uuid]),
            "action": action,
            "object_type": object_type,
        }
        if object_uuid is not None:
            event["object_uuid"] = object_uuid
        if obj is not None:
            event["object_details"] = obj.details()
        if aux_uuid is not None:
            event["aux_uuid"] = aux_uuid
        if aux is not None:
            event["aux_details"] = aux.details()
        if aux_info is not None:
            event["aux_info"] = aux_info
        event["session"] = {"uuid": s.uuid, "login_time": format_ns(s.login_ns), "device_uuid": s.device.uuid,
                            "ip": s.ip}  # fmt: skip
        if s.located:
            event["location"] = dict(self.locations[s.place.city])
        event["actor_type"] = "user"
        event["actor_account_uuid"] = self.account
        event["account_uuid"] = self.account
        self.touch(actor, t)
        self.push(t, t, _AUDIT, event)

    def self_actions(self, user: SimUser, s: _Session, t: int, scale: float = 1.0) -> None:
        """What members do to their own things: items, devices, MFA, master password."""
        rng = self.rng
        vault = self.world.vaults[rng.choice(user.vaults)]
        if rng.random() < 0.25 * scale:
            self.audit(user, s, t, "create", "item", sim_id(rng, lower=True), aux_uuid=vault.uuid)
        if rng.random() < 0.2 * scale:
            item = rng.choice(vault.items)
            self.versions[item.uuid] = self.versions.get(item.uuid, item.version) + 1
            self.audit(user, s, t + rng.randint(SECOND, 20 * MINUTE), "update", "item", item.uuid, aux_uuid=vault.uuid)
        if rng.random() < 0.02 * scale:
            self.audit(user, s, t + rng.randint(SECOND, 30 * MINUTE), "delete", "item", rng.choice(vault.items).uuid,
                       aux_uuid=vault.uuid)  # fmt: skip
        if rng.random() < 0.004 * scale:
            self.new_device(user, s, t + rng.randint(MINUTE, 2 * HOUR))
        if rng.random() < 0.003 * scale:
            action = rng.choice(("enblmfa", "updatmfa", "updatmfa", "disblmfa"))
            self.audit(user, s, t + rng.randint(SECOND, HOUR), action, "user", user.uuid, obj=user)
        if rng.random() < 0.002 * scale:
            self.audit(user, s, t + rng.randint(SECOND, HOUR), "changemp", "user", user.uuid, obj=user)

    def new_device(self, user: SimUser, s: _Session, t: int) -> None:
        """A new or reinstalled client: authorised (audit `create device`), then an MFA sign-in from it."""
        rng = self.rng
        devices = self.devices[user.uuid]
        index = rng.randrange(len(devices))
        device = updated_device(rng, devices[index])
        devices[index] = device
        self.audit(user, s, t, "create", "device", device.uuid, aux_uuid=user.uuid, aux=user)
        sid = sim_id(rng)
        t += rng.randint(5 * SECOND, 60 * SECOND)
        kind = "federated" if user.sso else "mfa_ok"
        self.signin_event(t, sid, user, device.client(s.ip), s.place, "success", kind, located=s.located)
        self.touch(user, t)
        self.sessions[device.uuid] = _Session(sid, t, device, s.ip, s.place, s.located)

    def admin_action(self, actor: SimUser, s: _Session, t: int) -> None:
        """One piece of administration: people, vault access, groups, suspensions, settings."""
        rng, world = self.rng, self.world
        member = rng.choice(self.members)
        vault = world.vaults[rng.randrange(len(world.vaults))]
        group = rng.choice(world.groups[2:]) if len(world.groups) > 2 else world.groups[0]
        r = rng.random()
        if r < 0.12:
            self.onboard(actor, s, t)
        elif r < 0.34:
            action = "grant" if rng.random() < 0.7 else "revoke"
            self.audit(actor, s, t, action, "uva", vault.uuid, aux_uuid=member.uuid, aux=member)
        elif r < 0.40:
            self.audit(actor, s, t, "grant" if rng.random() < 0.8 else "revoke", "gva", vault.uuid, aux_uuid=group.uuid)
        elif r < 0.56:
            self.audit(actor, s, t, "join" if rng.random() < 0.65 else "leave", "gm", group.uuid, aux_uuid=member.uuid,
                       aux=member, aux_info="M")  # fmt: skip
        elif r < 0.61 and self.can_suspend(member, t):
            self.audit(actor, s, t, "suspend", "user", member.uuid, obj=member)
            back = t + rng.randint(1 * HOUR, 48 * HOUR)
            self.away[member.uuid] = (t, back)
            self.audit(actor, s, back, "reactive", "user", member.uuid, obj=member)
        elif r < 0.63 and actor.role == "owner":
            self.audit(actor, s, t, "role", "user", member.uuid, obj=member)
        elif r < 0.67:
            self.audit(actor, s, t, "create", "vault", sim_id(rng, lower=True))
        elif r < 0.68:
            self.audit(actor, s, t, "create", "group", sim_id(rng))
        elif r < 0.72:
            self.audit(actor, s, t, "view", "report", member.uuid)
        elif r < 0.74:
            self.audit(actor, s, t, "updatfw", "account", self.account)
        elif r < 0.75:
            self.audit(actor, s, t, rng.choice(("enblmfa", "updatmfa")), "account", self.account)
        elif r < 0.78:
            devices = self.devices[member.uuid]
            self.audit(actor, s, t, "delete", "device", rng.choice(devices).uuid, aux_uuid=member.uuid, aux=member)
        elif r < 0.79:
            self.offboard(actor, s, t, member)
        else:
            self.self_actions(actor, s, t, scale=2.0)

    def onboard(self, actor: SimUser, s: _Session, t: int) -> None:
        """Invite a newcomer (or provision them through SCIM), confirm them and add them to a group."""
        world, rng = self.world, self.rng
        if self.next_newcomer >= len(world.newcomers):
            return
        person = world.newcomers[self.next_newcomer]
        self.next_newcomer += 1
        team = world.groups[2]
        if self.provisioner is not None:
            bridge = self.provisioner
            bs = self.machine_session(bridge, t)
            t += rng.randint(SECOND, 5 * SECOND)
            self.audit(bridge, bs, t, "provsn", "user", person.uuid, obj=person)
            self.audit(bridge, bs, t + rng.randint(SECOND, 5 * SECOND), "join", "gm", team.uuid, aux_uuid=person.uuid,
                       aux=person, aux_info="M")  # fmt: skip
        else:
            self.audit(actor, s, t, "create", "invite", sim_id(rng), aux_uuid=person.uuid, aux=person)
        t += rng.randint(5 * MINUTE, 90 * MINUTE)
        self.audit(actor, s, t, "activate", "user", person.uuid, obj=person)
        shared = world.vaults[0]
        self.audit(actor, s, t + rng.randint(SECOND, MINUTE), "grant", "uva", shared.uuid, aux_uuid=person.uuid,
                   aux=person)  # fmt: skip

    def offboard(self, actor: SimUser, s: _Session, t: int, member: SimUser) -> None:
        """Suspend a leaver at once, delete them a few days later; they are inactive from then on."""
        if not self.can_suspend(member, t):
            return
        self.audit(actor, s, t, "suspend", "user", member.uuid, obj=member)
        self.away[member.uuid] = (t, 2**62)
        self.audit(actor, s, t + self.rng.randint(1 * DAY, 5 * DAY), "delete", "user", member.uuid, obj=member)

    def touch(self, user: SimUser, t: int) -> None:
        if t > self.last_active.get(user.uuid, 0):
            self.last_active[user.uuid] = t

    def is_away(self, user: SimUser, start: int, end: int) -> bool:
        """Whether `user` is suspended or removed at some time in [start, end]."""
        away = self.away.get(user.uuid)
        return away is not None and away[0] <= end and away[1] > start

    def can_suspend(self, member: SimUser, t: int) -> bool:
        """Not an admin, not already away, and nothing recorded for them after t."""
        return not member.is_admin and not self.is_away(member, t, t) and self.last_active.get(member.uuid, 0) < t

    # days (history) and actions (live) ----------------------------------------------------------
    def whereabouts(self, user: SimUser, day: int) -> tuple[City, str]:
        """Where `user` is on local day `day` and the IP their computers use there (fixed for the day)."""
        cached = self.today.get(user.uuid)
        if cached is not None and cached[0] == day:
            return cached[1], cached[2]
        rng, world = self.rng, self.world
        trip = self.trips.get(user.uuid)
        if trip is not None and trip[0] >= day:
            place, ip = trip[1], trip[2]
        elif rng.random() < 0.012:
            r = rng.random()
            others = [o for o in world.offices if o != user.home]
            if r < 0.6 and others:
                place = rng.choice(others)
            elif r < 0.96 or not (self.report_cities or self.blocked_cities):
                place = rng.choice(self.travel_cities)
            else:
                place = rng.choice(self.report_cities or self.blocked_cities)
            ip = world.random_ip(place, rng)
            self.trips[user.uuid] = (day + rng.randint(1, 5), place, ip)
        elif user.office is None or (day + 3) % 7 >= 5 or rng.random() < 0.35:
            place, ip = user.home, user.home_ip
        else:
            place, ip = user.office, world.office_ips[user.office.city]
        self.today[user.uuid] = (day, place, ip)
        return place, ip

    def network(self, device: SimDevice, place: City, ip: str) -> tuple[str, bool]:
        """The device's address: phones are often on mobile data (some IPv6 without a known location)."""
        rng = self.rng
        if device.kind != "mobile" or rng.random() < 0.45:
            return ip, True
        if rng.random() < 0.25:
            groups = ":".join(f"{rng.randrange(65536):x}" for _ in range(5))
            return f"2a0{rng.randrange(1, 10)}:{groups}::{rng.randrange(1, 65536):x}", rng.random() < 0.7
        return self.world.random_ip(place, rng), True

    def user_day(self, user: SimUser, day: int, midnight: int, weekday: int) -> None:
        """One local day of a person: sign-ins per device, item usage in those sessions, audit events."""
        rng = self.rng
        if self.is_away(user, midnight, midnight + DAY):
            return
        weekend = weekday >= 5
        if rng.random() >= (0.12 if weekend else 0.35 if user.role == "guest" else 0.93):
            return
        place, net_ip = self.whereabouts(user, day)
        if weekend:
            start, span, scale = (
                midnight + int((10 + rng.random() * 9) * HOUR),
                int((0.3 + rng.random() * 2.5) * HOUR),
                0.3,
            )
        else:
            start = midnight + int(min(11.0, max(6.0, rng.gauss(8.8, 0.8))) * HOUR)
            span, scale = int(min(11.0, max(5.0, rng.gauss(8.7, 1.0))) * HOUR), 1.0
        sessions = self.day_sessions(user, place, net_ip, start, span, scale)
        if not weekend and rng.random() < 0.15:  # a short evening look at the phone or laptop
            late = midnight + int((19 + rng.random() * 4) * HOUR)
            sessions += self.day_sessions(user, place, net_ip, late, int(0.5 * HOUR), 0.0)
        if not sessions:
            return
        end = start + span
        per_day = rng.uniform(6, 16) * user.intensity * scale * (0.3 if user.role == "guest" else 1.0)
        for _ in range(round(per_day)):
            s = rng.choice(sessions)
            self.item_usage(user, s, s.login_ns + rng.randint(SECOND, max(MINUTE, end - s.login_ns)))
        s = rng.choice(sessions)
        self.self_actions(user, s, s.login_ns + rng.randint(SECOND, max(MINUTE, end - s.login_ns)), scale)
        if user.is_admin and not weekend:
            for _ in range(_poisson(rng, 2.5)):
                s = rng.choice(sessions)
                self.admin_action(user, s, s.login_ns + rng.randint(SECOND, max(MINUTE, end - s.login_ns)))

    def day_sessions(
        self, user: SimUser, place: City, net_ip: str, start: int, span: int, scale: float
    ) -> list[_Session]:
        rng = self.rng
        sessions = []
        for i, device in enumerate(self.devices[user.uuid]):
            n = _poisson(rng, _SIGNINS[device.kind] * max(scale, 0.4))
            if scale == 0.0:
                n = 1 if rng.random() < 0.5 else 0
            elif i == 0:
                n = max(1, n)
            for k in range(n):
                t = start + int((rng.random() * 0.08 if k == 0 else rng.random()) * span)
                ip, located = self.network(device, place, net_ip)
                s = self.signin(user, device, t, ip, place, located)
                if s is not None:
                    sessions.append(s)
        return sessions

    def machine_day(self, user: SimUser, midnight: int) -> None:
        """A service account: around the clock, a few sign-ins and many server-side fetches."""
        rng = self.rng
        device = self.devices[user.uuid][0]
        ip = self.world.office_ips[user.home.city]
        logins = sorted(midnight + rng.randrange(DAY) for _ in range(rng.randint(4, 10)))
        sessions = [self.signin(user, device, t, ip, user.home, True) for t in logins]
        live = [s for s in sessions if s is not None]
        if not live:
            return
        for _ in range(rng.randint(150, 450)):  # CI jobs fetch secrets on every run
            t = rng.randint(live[0].login_ns, midnight + DAY - 1)
            s = live[bisect_right([x.login_ns for x in live], t) - 1]
            self.item_usage(user, s, t)

    def machine_session(self, user: SimUser, t: int) -> _Session:
        """The machine user's session at t, signing in first when it has none (or an old one)."""
        device = self.devices[user.uuid][0]
        s = self.sessions.get(device.uuid)
        if s is None or not t - SESSION_TTL < s.login_ns <= t:
            s = self.signin(user, device, t, self.world.office_ips[user.home.city], user.home, True)
            assert s is not None  # machines sign in from an office city, never a denied country
        return s

    def activity_weights(self, t: int) -> list[float]:
        """Cumulative weights of the humans at t: working hours count most, nights and weekends little."""
        total, cum = 0.0, []
        hour_now = t / HOUR
        for user in self.humans:
            local = hour_now + user.home.utc_offset_hours
            hour, weekday = local % 24, (int(local // 24) + 3) % 7
            if self.is_away(user, t, t):
                w = 0.0
            elif weekday >= 5:
                w = 0.05 if 10 <= hour < 22 else 0.01
            else:
                w = 1.0 if 8 <= hour < 18 else 0.2 if 18 <= hour < 23 else 0.02
            total += w * user.intensity
            cum.append(total)
        return cum

    def live_action(self, t: int, cum_weights: list[float]) -> None:
        """One background action at t: a sign-in, an item usage or an audit event (live mode)."""
        rng = self.rng
        r = rng.random()
        if r < 0.01:
            self.blocked_attempt(t)
            return
        if r < 0.06 and self.machines:
            machine = rng.choice(self.machines)
            self.item_usage(machine, self.machine_session(machine, t), t)
            return
        user = rng.choices(self.humans, cum_weights=cum_weights)[0] if cum_weights[-1] > 0 else rng.choice(self.humans)
        if self.is_away(user, t, t):
            return
        day = (t + user.home.utc_offset_hours * HOUR) // DAY
        place, net_ip = self.whereabouts(user, day)
        device = rng.choice(self.devices[user.uuid])
        s = self.sessions.get(device.uuid)
        if r < 0.36 or s is None or t - s.login_ns > SESSION_TTL:
            ip, located = self.network(device, place, net_ip)
            s = self.signin(user, device, t, ip, place, located)
            if s is None or r < 0.36:
                return
            t = s.login_ns + rng.randint(SECOND, 30 * SECOND)
        if r < 0.93:
            self.item_usage(user, s, t)
        elif user.is_admin:
            self.admin_action(user, s, t)
        else:
            self.self_actions(user, s, t, scale=4.0)


def _prefix(ip: str) -> tuple[int, int]:
    a, b, _ = ip.split(".", 2)
    return int(a), int(b)
