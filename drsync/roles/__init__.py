"""Site roles: switchover, failover, reprotect, set-independent, and the role epoch (DESIGN §7).

One idea per module: `epoch` (who is what, and refusing the past), `fence` (table modes),
`tablelog` (rolling a table back to a version, inventories at a version), `audit`, and one
module per command.
"""
