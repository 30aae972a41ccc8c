"""The tamper-evident event log (docs/integrity.md): RFC 9162 Merkle trees, proofs, C2SP signed
notes and checkpoints, the signer and the offline verifier.

This package imports only the standard library, `cryptography` and `siemgate.model.timestamps`
(itself standard library only, but for `siemgate.model.text`, which is too), so that
`siemgate-verify` runs where nothing else of siemgate is installed. A test checks it.
"""
