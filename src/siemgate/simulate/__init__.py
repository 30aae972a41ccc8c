"""Realistic activity for an account: a simulated organisation and the events its people produce.

    world = build_world(account.uuid, account.name, users=200, seed=1)
    simulate_history(writer, account.id, world, days=30, end_ns=time.time_ns(), seed=1)
    run_live(writer, account.id, world, seed=1, rate=5.0, stop=stop_event)   # until stop is set

`world` builds the organisation (people, devices, networks, vaults, firewall), `generator` turns it
into events in insertion order (history or an endless live stream), `runner` writes them through
`EventWriter`, and `geo` holds the table of cities. Same seed and arguments, same events.
"""

from siemgate.simulate.generator import Emission, history, live_events
from siemgate.simulate.runner import run_live, simulate_history
from siemgate.simulate.world import World, build_world

__all__ = ["Emission", "World", "build_world", "history", "live_events", "run_live", "simulate_history"]
