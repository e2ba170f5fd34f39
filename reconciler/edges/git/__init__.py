"""git: the manifest repository at one commit (``repo``, GitPython) and commit signatures
(``signatures``, git's own ``verify-commit``)."""
