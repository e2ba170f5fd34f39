"""git: the manifest repository at one commit (``repo``, GitPython) and commit signatures
(``signatures``, git's own ``verify-commit``); ``source`` is a repository at a ref as
a plan reads it."""
