"""HTTP as a client: the one transport (``client``), the upstream driver repositories
(``upstream``) and build requests sent to build hosts (``requester``)."""
