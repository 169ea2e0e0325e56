"""The cockpit screen (Textual): app, screens, widgets, themes."""
