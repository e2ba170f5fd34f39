"""Stage 4 of the pipeline: what is there now, as plain values (``state``).

``survey`` asks the upstreams which of the missing artifacts they have. The edges fill the
observation; nothing here decides what to do about it.
"""
