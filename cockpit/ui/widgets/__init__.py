"""Widgets of the cockpit screen: header, environment columns, weight bar, metrics, logs."""
