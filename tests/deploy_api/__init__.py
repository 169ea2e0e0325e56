"""A small deploy-API service with real state, the test platform of the ``http`` backend.

It is what an internal deploy service or a PaaS looks like from the outside: JSON over
HTTP, bearer-token auth, a canary whose replica becomes ready a moment after the deploy,
a rollout the platform walks on its own timers, logs to poll or follow. The routes are
described in /work/wt/DEPLOY_API.md (the spec all issue-14 pieces share):

* :mod:`tests.deploy_api.state` - apps, environments, the rollout walker, the log book.
* :mod:`tests.deploy_api.app` - the aiohttp application: auth, idempotency keys, faults,
  the calls log, the routes.
* ``python -m tests.deploy_api`` - runs it in its own process and prints its URL.
* :mod:`tests.deploy_api.fixtures` - the pytest fixtures that start it once per session.
"""
