"""The GitOps daemon behind ``reconciler run``: one level-triggered pass after another.

    triggers (poll, git refs, webhook, SIGHUP, Docker events, store) -> wakeup (debounced)
        -> loop (suspend, backoff, last good revision) -> passes (plan + executor)
        -> state (status.json), metrics, notify (systemd)

``lock`` keeps one daemon per state dir; ``control`` is how ``suspend``/``resume``/
``reconcile`` reach it (a persisted file plus SIGHUP); ``recovery`` mends what a daemon
killed in the middle of a container replacement left behind.
"""
