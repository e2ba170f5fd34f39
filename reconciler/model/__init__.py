"""Pure values and pure rules: artifacts and their store names, Falco versions and their
driver versions, the host's facts and how each Falco loader names a kernel from them, the
Falco container spec, and what the edges observed. Nothing here does I/O or imports any
other layer of the package."""
