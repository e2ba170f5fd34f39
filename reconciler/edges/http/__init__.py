"""HTTP as a client: the one transport (``client``), the upstream driver repositories
(``upstream``), build requests sent to build hosts (``requester``) and status probes
(``probe``: our server's HEAD and Falco's ``/healthz``, with a fake)."""
