"""The embedded demo: a real HTTP service with versions that behave differently, and a
traffic generator, so a release can be practised end to end on one machine."""
