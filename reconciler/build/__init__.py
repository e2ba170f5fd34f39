"""Driver builds in Docker: builder image -> kernel headers -> driver source -> compile ->
verify -> publish.

One module per step (``images``, ``headers``, ``sources``, ``compile``, ``verify``), the
SDK calls behind ``engine``, and ``runner`` driving a set of builds in parallel. The public
entry point is ``runner.build_all`` with ``runner.BuildRequest`` and ``runner.BuildConfig``.
"""
