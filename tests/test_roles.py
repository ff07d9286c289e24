"""Roles on a shared server: every registered handler checks its role, however it is called (the page,
its API name, or a bare fn_index), with three logins of three roles; keys and verdicts stay their owner's."""

from __future__ import annotations

import json
import time

import pytest

from app.guard import HANDLER_ROLES, role_of
from app.service.access import ROLES, Access

LOGINS = [("alice", "pw-a"), ("rita", "pw-r"), ("bob", "pw-b")]
ACCESS = Access.from_logins([u for u, _ in LOGINS], roles={"alice": "admin", "rita": "researcher", "bob": "annotator"})


def test_roles_from_the_auth_file_and_the_flags():
    from app.service import UserError

    assert ACCESS.role("alice") == "admin" and ACCESS.role("rita") == "researcher" and ACCESS.role("bob") == "annotator"
    assert ACCESS.may("rita", "annotator") and not ACCESS.may("rita", "admin") and not ACCESS.may("bob", "researcher")
    assert Access().role("anyone") == "admin"  # no logins: the machine's owner does everything
    assert Access.from_logins(["x", "y"]).roles == {"x": "admin", "y": "annotator"}  # the first login is the admin
    with pytest.raises(UserError, match="unknown role"):
        Access.from_logins(["x"], roles={"x": "boss"})


def test_auth_file_lines_carry_roles_and_passwords_may_hold_colons(tmp_path):
    from app.server import parse_auth

    f = tmp_path / "auth"
    f.write_text("# team\nalice:s3cret:admin\nrita:a:b:c:researcher\nbob:plain\n")
    pairs, roles = parse_auth(None, str(f))
    assert pairs == [("alice", "s3cret"), ("rita", "a:b:c"), ("bob", "plain")]
    assert roles == {"alice": "admin", "rita": "researcher"}


def test_a_non_loopback_host_without_logins_is_refused(capsys):
    from app.server import is_loopback, main

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    assert main(["--host", "0.0.0.0", "--models", "demo"]) == 2
    assert "--auth-file" in capsys.readouterr().err


@pytest.fixture(scope="module")
def live(tiny_set, tmp_path_factory):
    """The app with three logins of three roles; ``ctx._demo`` is its Blocks."""
    from .live_app import running_app

    db = tmp_path_factory.mktemp("roles") / "db.sqlite"
    with running_app([tiny_set], str(db), auth=LOGINS, access=ACCESS) as (url, ctx):
        yield url, ctx


def _call_as(fn, login):
    """Call a registered (guarded) function as ``login`` with no inputs: the role error, or None when
    the role check let it through (the handler then fails on the missing inputs, which is fine here)."""
    from gradio.context import LocalContext

    class Request:
        username = login

    token = LocalContext.request.set(Request())
    try:
        out = fn()
        if hasattr(out, "__next__"):
            next(out)
    except Exception as exc:  # noqa: BLE001 - sorted below
        return str(exc) if "needs the " in str(exc) else None
    finally:
        LocalContext.request.reset(token)
    return None


def test_every_registered_function_checks_its_role_for_every_login(live):
    """Each function the server registered (by the page, by API name, by fn_index: all the same function)
    refuses the logins below its role and lets the others through."""
    url, ctx = live
    demo = ctx._demo
    checked = 0
    for index, block_fn in demo.fns.items():
        if block_fn.fn is None:
            continue
        role = getattr(block_fn.fn, "__genarm_role__", None)
        assert role in ROLES, f"fn_index {index} ({block_fn.name}) is not guarded"
        for login, _ in LOGINS:
            refusal = _call_as(block_fn.fn, login)
            if ACCESS.may(login, role):
                assert refusal is None, (index, block_fn.name, login, refusal)
            else:
                assert refusal and f"needs the {role} role" in refusal, (index, block_fn.name, login)
        checked += 1
    assert checked >= 30
    roles = {getattr(f.fn, "__genarm_role__", None) for f in demo.fns.values() if f.fn is not None}
    assert roles == set(ROLES)  # each role guards something


def test_an_unlisted_handler_stops_the_server_from_starting():
    def sneaky():
        return 1

    sneaky.__module__ = "app.tabs.newtab"
    with pytest.raises(RuntimeError, match="has no role"):
        role_of(sneaky)
    assert "app.tabs.compare" in HANDLER_ROLES


def _join(url, session, fn_index, data):
    """Call a registered function by its bare fn_index through Gradio's queue, as any HTTP client could;
    returns the final message of its event stream."""
    import uuid

    sid = uuid.uuid4().hex
    r = session.post(f"{url}gradio_api/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": sid,
                                                           "event_data": None, "trigger_id": None})
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 60
    with session.stream("GET", f"{url}gradio_api/queue/data", params={"session_hash": sid}, timeout=60) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed":
                    return msg
            assert time.monotonic() < deadline
    raise AssertionError("no answer")


def test_an_annotator_cannot_generate_or_switch_models_by_name_or_by_fn_index(live):
    import httpx
    from gradio_client import Client

    url, ctx = live
    bob = Client(url, auth=("bob", "pw-b"), verbose=False)
    with pytest.raises(Exception, match="needs the researcher role"):
        bob.predict("Human: hi Assistant:", '{"helpfulness": 1}', "genarm", "{}", "base", 1.0, 1.0, 0, 1.0, 4, 0,
                    api_name="/generate_pair")
    assert ctx.store.counts()["generations"] == 0
    demo = ctx._demo
    generate = next(i for i, f in demo.fns.items() if f.name == "on_generate")
    switch = next(i for i, f in demo.fns.items() if f.fn is not None and f.fn.__module__ == "app.tabs.models")
    with httpx.Client() as s:
        assert s.post(f"{url}login", data={"username": "bob", "password": "pw-b"}).status_code in (200, 302, 303)
        done = _join(url, s, switch, [ctx.current])
        assert not done["success"] and "needs the admin role" in json.dumps(done)
        n_inputs = len(demo.fns[generate].inputs)
        done = _join(url, s, generate, [None] * n_inputs)
        assert not done["success"] and "needs the researcher role" in json.dumps(done)
    assert ctx.store.counts()["generations"] == 0
    rita = Client(url, auth=("rita", "pw-r"), verbose=False)
    out = json.loads(rita.predict("Human: hi Assistant:", '{"helpfulness": 1}', "genarm", "{}", "base", 1.0, 1.0, 0, 1.0,
                                  4, 0, api_name="/generate_pair"))
    assert out["generation_ids"]


def test_an_annotator_cannot_read_squat_or_hijack_anothers_vote(live):
    """bob sends alice's default key, her pair and her verdict: his own vote is stored, hers is never
    shown to him; carol's key squatted first still lets carol vote."""
    from gradio_client import Client

    url, ctx = live
    rita = Client(url, auth=("rita", "pw-r"), verbose=False)
    ids = json.loads(rita.predict("Human: bread? Assistant:", '{"helpfulness": 1}', "genarm", "{}", "base", 1.0, 1.0, 0,
                                  1.0, 4, 1, api_name="/generate_pair"))["generation_ids"]
    alice = Client(url, auth=("alice", "pw-a"), verbose=False)
    bob = Client(url, auth=("bob", "pw-b"), verbose=False)
    a_jid = json.loads(alice.predict(ids[0], ids[1], "B", "{}", "", "mine", "", api_name="/record_judgment"))["judgment_id"]
    guessed = f"api:{ids[0]}:{ids[1]}:alice"  # the old guessable default key
    b_jid = json.loads(bob.predict(ids[0], ids[1], "B", "{}", "", "mine", guessed, api_name="/record_judgment"))["judgment_id"]
    assert b_jid != a_jid
    with pytest.raises(Exception) as caught:
        bob.predict(ids[0], ids[1], "A", "{}", "", "", guessed, api_name="/record_judgment")
    assert "alice" not in str(caught.value) and f"#{a_jid}" not in str(caught.value)
    frame = ctx.store.judgments_frame().set_index("judgment_id")
    assert (frame.loc[a_jid, "annotator"], frame.loc[a_jid, "verdict"]) == ("alice", "B")
    assert (frame.loc[b_jid, "annotator"], frame.loc[b_jid, "verdict"]) == ("bob", "B")
    with pytest.raises(Exception, match="logged in as 'bob'"):
        bob.predict(ids[0], ids[1], "A", "{}", "alice", "", "", api_name="/record_judgment")
