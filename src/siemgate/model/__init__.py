"""Event types, enums, ids, timestamps and features: pure data, no I/O."""
