"""The local driver store on disk (``local``): opening files without following symlinks,
and verifying each artifact against its ``.sha256``; the signed indexes and trust records
kept beside it (``signedindex``)."""
