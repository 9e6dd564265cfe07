"""``runserver`` that serves the project's ASGI application with uvicorn, so streams stream.

Django's own ``runserver`` is a WSGI server: it buffers an asynchronous streaming response until
it ends, which for a Server-Sent-Events stream is never. This command keeps runserver's flags and
habits (``addrport``, ``--noreload``, ``--nostatic``, ``--insecure``, Django's autoreloader, static
files in DEBUG) and hands requests to uvicorn instead, with request bodies over
``DATA_UPLOAD_MAX_MEMORY_SIZE`` refused before Django reads them (:mod:`realtime.asgi`).

Stopping never hangs on open streams: a code reload ends the whole server process (Django's
autoreloader), and Ctrl-C with ``--noreload`` gives streams ``--shutdown-timeout`` seconds to end
before uvicorn cancels them.
"""

from __future__ import annotations

import sys
from typing import Any

from django.conf import settings
from django.core.management.base import CommandParser
from django.core.management.commands.runserver import Command as DjangoRunserverCommand
from django.db import connections
from django.utils import autoreload
from django.utils.module_loading import import_string

from realtime.asgi import RequestBodyLimit
from realtime.asgi_types import ASGIApp
from realtime.handler import get_asgi_application


class Command(DjangoRunserverCommand):
    help = "Starts a lightweight ASGI web server (uvicorn) for development, with live streams."

    # Set by Django's handle() from ``addrport``.
    addr: str
    port: str
    _raw_ipv6: bool

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--nostatic",
            action="store_false",
            dest="use_static_handler",
            help="Do not serve static files (django.contrib.staticfiles) automatically.",
        )
        parser.add_argument(
            "--insecure",
            action="store_true",
            dest="insecure_serving",
            help="Serve static files even when DEBUG is False.",
        )
        parser.add_argument(
            "--shutdown-timeout",
            type=float,
            default=3.0,
            metavar="SECONDS",
            help="With --noreload: seconds open responses (streams) get to finish on Ctrl-C "
            "before they are cancelled (default: %(default)s). Under the autoreloader, Ctrl-C "
            "and code changes end the server process at once.",
        )

    def get_application(self, **options: Any) -> ASGIApp:
        """The ASGI application: ``settings.ASGI_APPLICATION``, else realtime's handler
        (:mod:`realtime.handler`: Django's, opening streams in one hop), with request bodies bounded (:class:`~realtime.asgi.RequestBodyLimit`) unless it is already."""
        path = getattr(settings, "ASGI_APPLICATION", None)
        app: ASGIApp = import_string(path) if path else get_asgi_application()
        if not isinstance(app, RequestBodyLimit):
            app = RequestBodyLimit(app)
        if self._serves_static(**options):
            from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

            app = ASGIStaticFilesHandler(app)  # type: ignore[arg-type]
        return app

    def _serves_static(self, **options: Any) -> bool:
        from django.apps import apps

        return (
            apps.is_installed("django.contrib.staticfiles")
            and options.get("use_static_handler", True)
            and (settings.DEBUG or options.get("insecure_serving", False))
        )

    def inner_run(self, *args: Any, **options: Any) -> None:
        import uvicorn

        autoreload.raise_last_exception()
        if not options["skip_checks"]:
            self.stdout.write("Performing system checks...\n\n")
            self.check(display_num_errors=True)
        self.check_migrations()
        for conn in connections.all(initialized_only=True):
            conn.close()

        config = uvicorn.Config(
            self.get_application(**options),
            host=self.addr,
            port=int(self.port),
            lifespan="off",
            log_level="info" if options["verbosity"] >= 1 else "warning",
            access_log=options["verbosity"] >= 1,
            timeout_graceful_shutdown=options["shutdown_timeout"],
        )
        server = uvicorn.Server(config)
        self.on_bind(self.port)
        try:
            server.run()
        except KeyboardInterrupt:
            sys.exit(0)
        if not server.started:
            sys.exit(1)

    def on_bind(self, server_port: int | str) -> None:
        quit_command = "CTRL-BREAK" if sys.platform == "win32" else "CONTROL-C"
        addr = f"[{self.addr}]" if self._raw_ipv6 else self.addr
        self.stdout.write(
            f"Django version {self._django_version()}, using settings {settings.SETTINGS_MODULE!r}\n"
            f"Starting ASGI development server (uvicorn) at {self.protocol}://{addr}:{server_port}/\n"
            f"Quit the server with {quit_command}."
        )

    @staticmethod
    def _django_version() -> str:
        import django

        return django.get_version()
