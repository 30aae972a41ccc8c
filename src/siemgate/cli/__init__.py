"""The `siemgate` command: the composition root, the only place concrete backends are chosen."""
