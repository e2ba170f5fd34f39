"""Reconciliation: the desired state (pure), the observed state (values the edges fill),
the plan (a pure diff of the two), its renderings and saved plans; the planner that reads
the edges for one pass; and the apply side: the executor, the Falco deploy logic (order,
settle, rollback), the kernel-module loader and crash recovery, all over the engine
Protocol of ``edges.docker``."""
