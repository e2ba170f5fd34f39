"""HTTP as a client: the one transport (``client``), the upstream driver repositories
(``upstream``), build requests sent to build hosts (``requester``) and downloads a
manifest named, under the host's address policy (``guarded``)."""
