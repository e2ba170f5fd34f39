"""The local driver store on disk: ``opener`` reaches files by descriptor without
following a symlink, ``verifier`` hashes them against their ``.sha256`` (remembering each
verdict), ``local.Store`` puts the two together with publishing and one read for a plan;
the signed indexes and trust records kept beside it (``signedindex``)."""
