"""The primary side of a round, in data-flow order: barrier, collect, pack, ship."""
