"""The web console at /console: server-rendered page shells whose scripts call the admin API
(docs/console.md)."""
