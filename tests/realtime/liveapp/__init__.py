"""A small app for the live admin's tests (realtime.admin): one model with every kind of field the
stale-edit guard shows, and its ``LiveModelAdmin``."""
