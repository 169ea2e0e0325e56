"""Names shared by the router process and the backend that drives it.

Kept apart from :mod:`router` so importing the backend does not import the router's
``__main__`` module (and the router process stays light at start)."""

TOKEN_ENV = "COCKPIT_ROUTER_TOKEN"  # the control token reaches the router via env, not argv (ps)
TOKEN_HEADER = "X-Cockpit-Token"
TRACK_HEADER = "x-cockpit-track"  # added to every proxied response: which track served it
