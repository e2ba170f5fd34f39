"""falco-reconciler: declarative, GitOps-style management of Falco kernel drivers.

The package reads as a pipeline::

    manifests (git) -> facts (host) -> desired -> observed -> plan -> apply

with the CLI and the daemon on top, and thin adapters (``gitsource``, ``store``,
``dockerapi``, ``server``) at the edges.
"""

__version__ = "0.1.0"
