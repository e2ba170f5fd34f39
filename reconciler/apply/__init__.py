"""Stage 6 of the pipeline: carry out a plan, one outcome per change.

``executor`` runs the changes in the plan's order; ``fetcher`` brings artifacts from
upstreams, verified; ``deploy`` (re)starts Falco safely; ``modules`` inserts the module of
a ``kmod-preloaded`` Falco; ``recovery`` mends what a killed replacement left behind.
"""
