"""The daemon: the schedule, one loop that executes recorded intent."""
