"""HTTP as a client: the one transport (``client``), the upstream driver repositories
(``upstream``), build requests sent to build hosts (``requester``), downloads a
manifest named, under the host's address policy (``guarded``), and status probes
(``probe``: our server's HEAD and Falco's ``/healthz``, with a fake)."""
