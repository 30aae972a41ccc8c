"""siemgate: self-hosted Events Reporting with a 1Password Events API-compatible REST API."""

__version__ = "0.1.0"
