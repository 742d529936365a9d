"""A backup set on the wire: its manifest and its bundles, shared by both sides."""
