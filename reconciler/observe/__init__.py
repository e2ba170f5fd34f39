"""Stage 4 of the pipeline: what is there now, as plain values (``state``).

``sources`` declares what a pass reads as small Protocols gathered in one ``Sources``
(the composition root builds it; ``fakes`` has a fake of each). ``gather`` reads through
them into one ``ObservedState``; ``stored`` decides what the store's files mean (present,
corrupt, a misfit, unsigned, unsafe); ``survey`` asks the upstreams which of the missing
artifacts they have. Nothing here decides what to do about it: that is ``plan``'s.
"""
