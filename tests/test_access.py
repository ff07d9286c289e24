"""With logins, annotators see their own queue, judgments and statistics; admins see everyone's."""

import json

import pytest

from app.service.access import Access
from app.service.errors import UserError

from .live_app import running_app


def test_the_access_rule():
    assert Access.from_logins(None).sees_all("anyone") and Access.from_logins(None).own(None) is None
    access = Access.from_logins(["alice", "bob"])  # no admin named: the first login
    assert access.admins == {"alice"} and access.own("alice") is None and access.own("bob") == "bob"
    assert access.annotator("bob", "") == "bob" and access.annotator("bob", "bob") == "bob"
    with pytest.raises(UserError, match="annotator: you are logged in as 'bob' and can act only as yourself, not 'alice'"):
        access.annotator("bob", "alice")
    assert Access().annotator(None, " carol ") == "carol"  # no logins: the name given
    assert Access.from_logins(["alice", "bob"], ["bob"]).admins == {"bob"}
    with pytest.raises(UserError, match="--admin: 'zed' is not a login"):
        Access.from_logins(["alice"], ["zed"])
    with pytest.raises(UserError, match="--admin: admins need logins"):
        Access.from_logins(None, ["alice"])


def test_an_unknown_admin_is_an_error_message_not_a_start(capsys):
    from app.server import main

    assert main(["--auth", "alice:pw", "--admin", "zed"]) == 2
    err = capsys.readouterr().err
    assert "--admin: 'zed' is not a login" in err and "Traceback" not in err


def test_with_logins_each_annotator_sees_their_own_and_the_admin_sees_everyone(tiny_set, tmp_path):
    from gradio_client import Client

    from app.service.studies import StudyRunner
    from app.tabs import annotate, judgments
    from genarm_core.evaluation.study import parse_study

    logins = [("alice", "a-pw"), ("bob", "b-pw"), ("carol", "c-pw")]
    access = Access.from_logins([u for u, _ in logins], ["alice"])
    with running_app([tiny_set], str(tmp_path / "access.sqlite"), auth=logins, access=access) as (url, ctx):
        study = parse_study({"name": "access", "model_set": str(tiny_set), "prompts": ["Hello", "Tell me a joke.", "Hi"],
                             "decoding": {"max_new_tokens": 4}, "overlap": 2,
                             "settings": ["base", {"method": "genarm", "weights": {"helpfulness": 1.0}}]}, "a.yaml")
        sid = StudyRunner(study, ctx.store, ctx.sets.engine, tiny_set, progress=False).run().study_id
        clients = {user: Client(url, auth=(user, pw), verbose=False) for user, pw in logins}
        # Through the API a login acts as itself: another annotator's name is refused, naming the field.
        with pytest.raises(Exception, match="annotator: you are logged in as 'bob'"):
            clients["bob"].predict(sid, "alice", 2, api_name="/queue_next")
        for user in ("bob", "carol", "bob"):
            item = json.loads(clients[user].predict(sid, "", 2, api_name="/queue_next"))
            clients[user].predict(item["slot_id"], "A", "", "", api_name="/queue_vote")
        assert sorted(ctx.store.judgments_frame()["annotator"]) == ["bob", "bob", "carol"]

        # What each sees (the tabs' handlers, as the page calls them with the login's Access.own).
        mine = annotate.progress_table(ctx, access.own("bob"))
        assert list(mine.columns) == ["study", "pairs", "judged by you", "skipped by you"]
        assert mine.iloc[0]["judged by you"] == 2 and "carol" not in mine.to_string()
        admin = annotate.progress_table(ctx, access.own("alice"))
        assert admin.iloc[0]["judged / needed"] == "3 / 6" and "bob (2)" in admin.iloc[0]["annotators"]
        view = judgments.judgments_view(ctx, "carol", "overall", "", None, access.own("bob"))  # asks for carol's
        table, people, choices = view[0], view[7], view[8]
        assert len(table) == 2 and set(table["annotator"]) == {"bob"} and choices == ["bob"]
        assert list(people["annotator"]) == ["bob"]
        everyone = judgments.judgments_view(ctx, "", "overall", "", None, access.own("alice"))
        assert len(everyone[0]) == 3 and set(everyone[7]["annotator"]) == {"bob", "carol"}
        files, _ = judgments.run_export(ctx, "TRL preference JSONL", "", "overall", "", access.own("carol"))
        exported = [json.loads(line) for f in files if f.endswith(".jsonl") for line in open(f).read().splitlines()]
        assert len(exported) == 1  # carol's one judgment, not bob's two
