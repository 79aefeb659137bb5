"""Headless output, one printer per operation: each turns the operation's events into lines."""
