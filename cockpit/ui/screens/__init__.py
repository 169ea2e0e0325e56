"""Screens of the cockpit: main, confirmation, pickers, history, help."""
