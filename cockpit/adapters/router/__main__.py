"""``python -m cockpit.adapters.router``: run the router process (see :mod:`.server`)."""

from cockpit.adapters.router.server import main

main()
