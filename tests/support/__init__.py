"""Helpers shared by tests: a real server process on loopback, a browser."""
