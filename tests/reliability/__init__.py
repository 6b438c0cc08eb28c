"""Reliability and security tests (issue 7): fuzzing, faults, load, hostile input, backups."""
