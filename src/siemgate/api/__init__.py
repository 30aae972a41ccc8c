"""The HTTP surface: `create_app(services)` builds the ASGI app."""
