"""One site's own things: paths, state, locks, progress, checks, retention."""
