"""Start the real dashboard in-process on a free loopback port (for API and browser tests)."""

from __future__ import annotations

import socket
from contextlib import contextmanager


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(model_files, db_url, auth=None, **kw):
    """``auth``: Gradio's list of (user, password) pairs, as ``app.server.parse_auth`` makes it."""
    from app.server import create_app
    from app.ui import launch_kwargs

    demo, ctx = create_app(model_files, db_url, auth_enabled=auth is not None, **kw)
    ctx._demo = demo  # the Blocks, for tests that look at the registered functions
    port = free_port()
    demo.queue(default_concurrency_limit=1).launch(server_name="127.0.0.1", server_port=port, share=False, auth=auth,
                                                   prevent_thread_lock=True, quiet=True, **launch_kwargs())
    try:
        yield f"http://127.0.0.1:{port}/", ctx
    finally:
        demo.close()
