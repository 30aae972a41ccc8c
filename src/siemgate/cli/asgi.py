"""ASGI factory for `siemgate serve --workers N` (uvicorn imports it in each worker process).

Settings come from the environment the parent process prepared; each worker opens its own store.
"""

from __future__ import annotations

from fastapi import FastAPI

from siemgate.cli.serve_cmds import tune_gc
from siemgate.composition.web import create_app
from siemgate.composition.wiring import open_services
from siemgate.config import load_settings
from siemgate.logs import configure_logging
from siemgate.private import private_process


def create() -> FastAPI:
    private_process()
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    services = open_services(settings)
    app = create_app(services, close_on_shutdown=True)
    tune_gc()
    return app
