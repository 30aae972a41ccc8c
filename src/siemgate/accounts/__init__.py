"""The setup flow: people and roles, integrations, the token lifecycle, and siemgate's own audit trail.

The admin API, the console and the CLI are thin layers over these services.
"""
