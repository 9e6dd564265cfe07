"""Live, multi-user Django pages without Channels.

Commands write and ``publish``; PostgreSQL ``LISTEN/NOTIFY`` relays; streams re-render.
"""

__version__ = "0.1.0"
