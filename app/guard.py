"""Every handler the server registers checks the caller's role, however it is called.

Gradio runs a registered function when a page triggers it, when a client calls its API name, and
when anyone posts its bare ``fn_index`` (``api_visibility="private"`` only hides it from the API
page). So the check cannot live in the page: ``guard`` wraps every registered function, after the
tabs are wired, with a check of the login (the request Gradio is serving, ``LocalContext.request``)
against the role the function needs (``HANDLER_ROLES``, by its module and name). A function no entry
covers makes the server refuse to start: a new handler must say who may call it.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

from .service.access import Access
from .service.errors import UserError
from .tabs.common import refuse

#: module -> {function name -> the role it needs}; "*" is the module's default. Page views that only
#: show the loaded set (and Gradio's own cancel functions) need no more than an annotator.
HANDLER_ROLES: dict[str, dict[str, str]] = {
    "app.ui": {"*": "annotator"},
    "app.tabs.compare": {"*": "researcher", "on_method": "annotator", "recolour": "annotator", "on_load": "annotator"},
    "app.tabs.annotate": {"*": "annotator"},
    "app.tabs.judgments": {"*": "annotator"},  # every view filters to the login's own judgments unless admin
    "app.tabs.studies": {"*": "researcher"},
    "app.tabs.models": {"*": "admin"},  # switching the model set switches it for everyone
    "app.tabs.api": {"*": "annotator", "api_generate_pair": "researcher"},
}


def role_of(fn: Callable) -> str:
    """The role a registered function needs.

    Raises:
        RuntimeError: a function of the app that ``HANDLER_ROLES`` does not cover (a new handler must
        say who may call it; the server does not start without it).
    """
    module = getattr(fn, "__module__", "") or ""
    if module.startswith("gradio"):  # Gradio's own helpers (cancelling a run the page started)
        return "annotator"
    table = HANDLER_ROLES.get(module)
    if table is None:
        raise RuntimeError(f"handler {module}.{getattr(fn, '__qualname__', fn)} has no role in app.guard.HANDLER_ROLES")
    return table.get(getattr(fn, "__name__", ""), table["*"])


def current_login() -> str | None:
    """The login of the request Gradio is serving now (None: no logins, or not in a request)."""
    from gradio.context import LocalContext

    request = LocalContext.request.get(None)
    return getattr(request, "username", None) if request is not None else None


def checked(fn: Callable, role: str, access: Access) -> Callable:
    """``fn`` that first refuses a caller without ``role`` (a generator stays a generator, so Gradio
    streams it as before)."""
    what = f"this action ({getattr(fn, '__name__', 'handler')})"

    def check() -> None:
        try:
            access.require(current_login(), role, what)
        except UserError as exc:
            raise refuse(exc) from None

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen(*args: Any, **kwargs: Any):
            check()
            yield from fn(*args, **kwargs)
        wrapped: Callable = gen
    elif inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def coro(*args: Any, **kwargs: Any):
            check()
            return await fn(*args, **kwargs)
        wrapped = coro
    else:
        @functools.wraps(fn)
        def plain(*args: Any, **kwargs: Any):
            check()
            return fn(*args, **kwargs)
        wrapped = plain
    wrapped.__genarm_role__ = role  # type: ignore[attr-defined]
    return wrapped


def guard(demo: Any, access: Access) -> dict[int, str]:
    """Wrap every registered function of ``demo`` with its role check; returns fn index -> role."""
    roles = {}
    for index, block_fn in demo.fns.items():
        if block_fn.fn is None or getattr(block_fn.fn, "__genarm_role__", None):
            continue
        role = role_of(block_fn.fn)
        block_fn.fn = checked(block_fn.fn, role, access)
        roles[index] = role
    return roles
