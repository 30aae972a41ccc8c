"""A private redis-server of a test's own, to pause, stop and start again (the machine's Redis is
shared by every test): for what the server does while Redis does not answer."""

from __future__ import annotations

import subprocess

import redis

from .ports import free_port
from .waiting import wait_for


class PrivateRedis:
    """A redis-server on its own port, without persistence; `start` again after `stop` on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.location = f"127.0.0.1:{self.port}/0"  # as messages name it
        self.url = f"redis://{self.location}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        wait_for("redis-server to answer", self._answers, 10)

    def _answers(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None
