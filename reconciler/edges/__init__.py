"""Every outside system, grouped by the system it speaks to, each adapter the only importer
of its library and translating its errors once (``raise OurError(...) from exc``):
``git`` (the manifest repository, commit signatures), ``host`` (facts, kernels, apt, the
kernel module, openssl), ``http`` (the client, upstreams, build requests sent), ``store``
(the driver store on disk), ``state`` (durable records under the state dir), ``docker``
(the engine), ``vm`` (QEMU and the kernel images it boots), ``atomic`` (files written
whole or not at all), ``capped`` (small files read whole, refused past a limit),
``clock`` (time, with a fake that moves only when told to) and ``secrets`` (shared
secrets read from files)."""
