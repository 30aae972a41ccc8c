"""The server's side of the tamper-evident log (docs/integrity.md): its public keys, the signer
connection, and (with the store's log tables) integration and checkpoints."""
