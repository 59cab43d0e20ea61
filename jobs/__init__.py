"""Scheduled work: APScheduler wiring and the jobs it runs."""
