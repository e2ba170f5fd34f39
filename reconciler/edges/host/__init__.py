"""The host under ``--host-root``: its facts (``facts``), installed kernels (``kernels``),
apt's package lists (``apt``), the loaded kernel module (``kmod``), the ``openssl``
that checks module signatures (``openssl``) and the host's own keys (``crypto``: module
signing and signed indexes, in this process); ``reader`` is the host as a plan reads it."""
