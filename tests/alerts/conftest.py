"""Fixtures shared by the alert tests: `site`, services on a data folder that can be restarted."""

from .test_alerts_live import site

__all__ = ["site"]
