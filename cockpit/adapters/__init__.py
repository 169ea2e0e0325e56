"""Backend adapters. Each lives in its own module and is found through the registry."""
