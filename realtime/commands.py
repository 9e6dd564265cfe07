"""Commands: POST-only views that validate, write in one transaction, and answer ``204``.

Contract of :class:`CommandView`:

- Only POST (405 with ``Allow`` otherwise); CSRF is enforced by Django's middleware (Datastar
  actions send the token as ``X-CSRFToken``, see ``{% command_post %}``).
- Input is the request's Datastar signals (a JSON object body) or form data (htmx, plain forms).
  A body that is not a JSON object, or another content type → 400. Values must be scalars for
  single-value fields → else 422.
- Validated with :attr:`CommandView.form_class`; invalid → 422 with ``{"message", "errors"}``.
- :meth:`CommandView.handle` runs in ``transaction.atomic()``; raising :class:`CommandError` rolls
  everything back and answers 409 with its message. Success → ``204 No Content``.
- Every rejection is also published to the acting tab's private topic (``tab.<id>``, the id being
  the ``tab`` signal or form field), whose stream shows it in place. Publishing goes through the
  relay, so it works when the command and the stream are served by different processes.
- ``detached = True`` validates, answers 204 at once and runs the handler on a background thread;
  its errors reach the tab the same way. Pending work is finished before the process exits.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from django import forms
from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db import close_old_connections, transaction
from django.db.models import Model
from django.forms import modelform_factory
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.http.response import HttpResponseBase
from django.views import View

from realtime.conf import get_config
from realtime.counters import counters
from realtime.notices import CommandNotice
from realtime.relay.publish import publish
from realtime.request_data import BadSignals, parse_signals
from realtime.tabs import pop_tab, tab_topic

logger = logging.getLogger("realtime")


class CommandError(Exception):
    """A business rule refused the command. Its message is shown to the user who sent it.

    Raise it from a handler: the transaction rolls back, the answer is ``409 Conflict`` and the
    acting tab shows the message as a toast.
    """

    def __init__(self, message: str, *, status: int = 409) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class _Rejected(Exception):
    def __init__(
        self, status: int, message: str, errors: dict[str, list[str]] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors or {}


class CommandView(View):
    """A POST-only view: parse → validate with :attr:`form_class` → :meth:`handle` → ``204``."""

    http_method_names: ClassVar[list[str]] = ["post"]  # type: ignore[misc]

    #: The form that validates the command's input.
    form_class: type[forms.Form] = forms.Form
    #: A name for logs and error notices (defaults to the class name).
    name: str | None = None
    #: Answer 204 after validation and run :meth:`handle` in the background.
    detached: bool = False
    #: The database alias whose transaction wraps :meth:`handle` (default: REALTIME['DATABASE']).
    using: str | None = None

    tab: str | None = None

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Callable[..., HttpResponseBase]:
        view = super().as_view(**initkwargs)
        # realtime.handler answers a POST to this view in one call on a thread pool.
        view.runs_command = True  # type: ignore[attr-defined]
        return view

    def handle(self, form: forms.Form) -> None:
        """Do the command: write, then ``publish()``. Runs inside ``transaction.atomic()``."""
        raise NotImplementedError(f"{type(self).__name__} must define handle(self, form).")

    def get_form_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :attr:`form_class` besides ``data``."""
        return {}

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Answer the request, counting the answer's status and duration per command
        (see :mod:`realtime.counters`)."""
        started, status = time.perf_counter(), 500
        try:
            response = super().dispatch(request, *args, **kwargs)
            status = response.status_code
            return response
        except PermissionDenied:
            status = 403
            raise
        except Http404:
            status = 404
            raise
        finally:
            counters.command(self.command_name, status, time.perf_counter() - started)

    def http_method_not_allowed(
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        """405 with ``Allow: POST`` and a JSON message, like every other rejection."""
        response = super().http_method_not_allowed(request, *args, **kwargs)
        response["Content-Type"] = "application/json"
        response.content = json.dumps(
            {"message": f"{self.command_name} accepts POST only.", "errors": {}}
        ).encode()
        return response

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form: forms.Form | None = None
        try:
            data = self._read_input(request)
            self.tab = pop_tab(request, data)
            form = self.form_class(data=data, **self.get_form_kwargs())
            self._check_shapes(form, data)
            if not form.is_valid():
                raise _Rejected(422, "Please correct the errors below.", _errors(form))
            if self.detached:
                _background().submit(self._run_detached, form)
            else:
                self._run(form)
        except _Rejected as rejection:
            return self._reject(rejection, form_fields=_fields_of(form))
        return HttpResponse(status=204)

    def _run(self, form: forms.Form) -> None:
        try:
            with transaction.atomic(using=self.using or get_config().DATABASE):
                self.handle(form)
        except CommandError as exc:
            raise _Rejected(exc.status, exc.message) from exc
        except Http404 as exc:
            # get_object_or_404() in a handler: the tab hears of it like of any rejection.
            raise _Rejected(404, str(exc) or "Not found.") from exc

    def _run_detached(self, form: forms.Form) -> None:
        close_old_connections()
        try:
            self._run(form)
        except _Rejected as rejection:
            self._notify_tab(rejection, _fields_of(form))
        except Exception:
            logger.exception("realtime: detached command %s failed", self.command_name)
            self._notify_tab(_Rejected(500, "Something went wrong; please try again."), [])
        finally:
            close_old_connections()

    @property
    def command_name(self) -> str:
        return self.name or type(self).__name__

    def _read_input(self, request: HttpRequest) -> dict[str, Any] | QueryDict:
        content_type = request.content_type or ""
        if content_type == "application/json" or (not content_type and request.body):
            try:
                return parse_signals(
                    request.body,
                    what="The request body",
                    max_bytes=settings.DATA_UPLOAD_MAX_MEMORY_SIZE or len(request.body),
                    max_depth=get_config().MAX_SIGNALS_DEPTH,
                )
            except BadSignals as exc:
                raise _Rejected(400, str(exc)) from exc
        if (
            content_type in ("application/x-www-form-urlencoded", "multipart/form-data")
            or not content_type
        ):
            return request.POST.copy()
        raise _Rejected(
            400,
            f"Unsupported content type {content_type!r}: send JSON (Datastar signals) or form data.",
        )

    @staticmethod
    def _check_shapes(form: forms.Form, data: dict[str, Any] | QueryDict) -> None:
        if not isinstance(data, dict) or isinstance(data, QueryDict):
            return
        errors: dict[str, list[str]] = {}
        for name, field in form.fields.items():
            value = data.get(name)
            many = isinstance(field, forms.MultipleChoiceField | forms.ModelMultipleChoiceField)
            if many and value is not None and not isinstance(value, list):
                errors[name] = ["Expected a list of values."]
            elif not many and isinstance(value, dict | list):
                errors[name] = ["Expected a single value."]
        if errors:
            raise _Rejected(422, "Please correct the errors below.", errors)

    def _reject(self, rejection: _Rejected, form_fields: list[str]) -> HttpResponse:
        self._notify_tab(rejection, form_fields)
        return JsonResponse(
            {"message": rejection.message, "errors": rejection.errors}, status=rejection.status
        )

    def _notify_tab(self, rejection: _Rejected, form_fields: list[str]) -> None:
        if not self.tab:
            return
        notice = CommandNotice(
            self.command_name, rejection.status, rejection.message, rejection.errors, form_fields
        )
        try:
            publish(tab_topic(self.tab), notice.bounded().to_payload(), using=self.using)
        except ValueError:
            logger.warning(
                "realtime: could not notify tab of %s's error", self.command_name, exc_info=True
            )


def _errors(form: forms.Form) -> dict[str, list[str]]:
    return {field: [str(m) for m in messages] for field, messages in form.errors.items()}


def _fields_of(form: forms.Form | None) -> list[str]:
    return list(form.fields) if form is not None else []


_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _background() -> ThreadPoolExecutor:
    """The pool of detached commands; its threads are joined when the interpreter exits."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="realtime-command")
        return _executor


def wait_for_detached_commands() -> None:
    """Block until every detached command submitted so far has finished."""
    global _executor
    with _executor_lock:
        executor, _executor = _executor, None
    if executor is not None:
        executor.shutdown(wait=True)


def command(
    form_class: type[forms.BaseForm] | type[Model] = forms.Form,
    *,
    fields: Sequence[str] | None = None,
    name: str | None = None,
    login_required: bool = False,
    permission_required: str | tuple[str, ...] | None = None,
    detached: bool = False,
) -> Callable[[Callable[..., None]], Callable[..., HttpResponseBase]]:
    """Turn ``handler(request, form, **url_kwargs)`` into a command view (see :class:`CommandView`).

    ``command(Task, fields=["title"])`` stands for ``command(modelform_factory(Task, fields=...))``
    (the handler gets the ``ModelForm``; ``form.save()`` writes the row). ``login_required``
    answers 403 to anonymous users (commands are not pages to redirect from);
    ``permission_required`` names Django permissions the user must hold.
    """
    if isinstance(form_class, type) and issubclass(form_class, Model):
        if not fields:
            raise ImproperlyConfigured(
                f"command({form_class.__name__}) needs fields=[...]: the fields the command sets."
            )
        form: type[forms.BaseForm] = modelform_factory(form_class, fields=list(fields))
    elif fields is not None:
        raise ImproperlyConfigured("fields= goes with a model: command(Model, fields=[...]).")
    else:
        form = form_class
    if permission_required is not None and not permission_required:
        raise ImproperlyConfigured("permission_required must name at least one permission.")

    def decorate(handler: Callable[..., None]) -> Callable[..., HttpResponseBase]:
        bases: list[type] = []
        attrs: dict[str, Any] = {
            "form_class": form,
            "name": name or handler.__name__,
            "detached": detached,
            "handle": lambda self, form: handler(self.request, form, *self.args, **self.kwargs),
            "__doc__": handler.__doc__,
            "__module__": handler.__module__,
        }
        if login_required:
            bases.append(LoginRequiredMixin)
            attrs["raise_exception"] = True
        if permission_required is not None:
            bases.append(PermissionRequiredMixin)
            attrs["permission_required"] = permission_required
            attrs["raise_exception"] = True
        view_class: type[CommandView] = type(handler.__name__, (*bases, CommandView), attrs)
        view: Callable[..., HttpResponseBase] = view_class.as_view()
        return view

    return decorate
