"""Every outside system, behind a small adapter that is the only importer of its library
and translates its errors once (``raise OurError(...) from exc``): git (``gitrepo``,
``gitsign``), the host (``hostfacts``, ``kmod``), the driver store (``store``, the one
definition of a verified artifact), HTTP as a client (``httpclient``), files written
atomically (``atomic``) and the Docker engine (``docker``)."""
