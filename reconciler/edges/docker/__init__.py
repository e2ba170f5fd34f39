"""The Docker engine: ``client`` (the only importer of the SDK, with its one error
translation), ``protocol`` (what the layers above ask of an engine), ``fake`` (an
in-memory engine for tests of that logic) and ``jobs`` (labelled one-shot containers for
builds)."""
