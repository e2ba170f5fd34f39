"""The host under ``--host-root``: its facts (``facts``), installed kernels (``kernels``),
apt's package lists (``apt``), the loaded kernel module (``kmod``) and the ``openssl``
that checks module signatures (``openssl``); ``reader`` is the host as a plan reads it."""
