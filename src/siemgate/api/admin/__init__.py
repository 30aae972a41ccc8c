"""The admin API (`/api/admin/v1/...`): accounts, people, integrations and credentials.

Authenticated by a personal API key (`Authorization: Bearer sgp_...`) or a console session
cookie (with `X-CSRF-Token` on changes). SIEM tokens and ingest keys are refused (401).
"""
