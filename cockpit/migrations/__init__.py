"""Database migrations: runners for one environment's database (SQLite, PostgreSQL, any
CLI), the record of applied steps kept in that database, and the squawk lint. No Textual,
no engine: the engine's :mod:`cockpit.engine.migrations` decides when a step may run."""
