"""The ``prometheus`` metrics source and what it needs (file-based service discovery)."""
