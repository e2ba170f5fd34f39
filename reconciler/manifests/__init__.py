"""Manifests: the files of one commit in, a validated ``ManifestSet`` or every located
problem (``file:line: message``) out. Models, driverkit's own config format, loading,
and the JSON Schema. Pure: the files come from ``edges.git.repo``."""
