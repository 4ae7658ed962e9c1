"""Charter's domain package: governance, storage, connectors, reasoners and the CLI.

Dependency direction: schemas <- charter <- activities <- workflows <- entry points.
"""
