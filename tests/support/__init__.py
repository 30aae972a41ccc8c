"""Helpers shared by the test folders (importable as `support`: pytest puts tests/ on the path
through `pythonpath` in pyproject.toml).

- `ports`: free TCP/UDP ports on 127.0.0.1.
- `waiting`: `wait_for`, polling a condition with a deadline (never a fixed sleep).
- `clocks`: a real clock that tests can move forward, and a fixed one.
- `stores`: the machine's PostgreSQL and Redis URLs, migrated stores of each backend.
- `servers`: a real siemgate server (uvicorn on 127.0.0.1 in a thread) and its client helpers.
- `events`: valid v2 events of each feature.
- `procs`: `siemgate` run as real processes, and their sockets seen through /proc.
- `receivers`: local HTTP receivers (webhooks) and a private rsyslogd.
- `admin`: an account with one person of each role, and admin API helpers.
- `services`: the markers of tests that need PostgreSQL, Redis, Chromium or rsyslog (skip when
  absent, fail the run under CI=true).
"""
