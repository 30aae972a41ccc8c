"""The composition root (docs/architecture.md): the one layer that knows every other. `wiring`
opens the store and builds the services; `web` puts the app together (imported only by the
commands that serve, so the rest of the CLI never loads the web stack)."""
