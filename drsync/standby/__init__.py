"""The standby side: receive, verify, apply, expose (barrier maps), compare."""
