"""Supervision of child processes, apart from what any one backend does with them.

* :mod:`~cockpit.adapters.supervise.procs` - spawning children that die with the cockpit
  (under the :mod:`~cockpit.adapters.supervise.shim`), their explicit environment
  (:func:`~cockpit.adapters.supervise.procs.child_env`), stopping a whole process tree,
  and the /proc facts (liveness, markers, who listens on a port);
* :mod:`~cockpit.adapters.supervise.managed` - :class:`ManagedProcess`, one running child
  with its log pumps and an unexpected-exit callback;
* :mod:`~cockpit.adapters.supervise.logs` - :class:`LogHub`, the children's lines to the
  engine's log sink in batches.

Used by the local backend (replicas), the router handle (the router process) and the
demo (its traffic generator). Import the modules themselves: this package ``__init__``
stays empty so the shim, run by file path, and light children import nothing extra."""
