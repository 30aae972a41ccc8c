"""siemgate: self-hosted Events Reporting with a 1Password Events API-compatible REST API."""

__version__ = "0.2.0"
