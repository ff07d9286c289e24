"""The dashboard in a real headless Chromium (Debian's package) driven by Playwright.

Set GENARM_SCREENSHOT=path to save the Compare tab's screenshot (README's picture), taken after a
real generation at the default weights on GENARM_SCREENSHOT_MODELS (a built-in name or a model-set file):
    GENARM_SCREENSHOT=docs/compare.png GENARM_SCREENSHOT_MODELS=smollm2 python -m pytest tests/test_browser.py -k screenshot
"""

import json
import os
import shutil

import pytest

from .live_app import running_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (.ci/run installs it)")

XSS_PROMPT = "How do I train a puppy? <script>window.__xss = 1</script><img src=x onerror='window.__xss=2'>"


@pytest.fixture(scope="module")
def app_url(small_demo, tmp_path_factory):
    """The dashboard, and a worker for its queued studies (a thread here; a separate process in ``python app.py``)."""
    import threading

    from app.worker import Worker

    db = tmp_path_factory.mktemp("browser") / "db.sqlite"
    with running_app([small_demo], str(db)) as (url, ctx):
        ctx._worker = Worker(ctx.store, "browser-tests", beat_s=0.05)
        stop = threading.Event()
        thread = threading.Thread(target=ctx._worker.serve, args=(0.2, stop), daemon=True)
        thread.start()
        yield url, ctx
        stop.set()
        thread.join(timeout=120)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, app_url):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = ctx.new_page()
    outside = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(("http://127.0.0.1", "data:", "blob:")) else None)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))  # an uncaught exception in the page's JavaScript
    page.goto(app_url[0])
    page.wait_for_selector("#prompt textarea")
    yield page
    ctx.close()
    assert outside == [], f"the page tried to reach the network: {outside[:5]}"
    assert errors == [], f"JavaScript errors in the page: {errors[:3]}"


def textarea(page, elem_id):
    return page.locator(f"#{elem_id} textarea").input_value()


def count_clicks(page, selector, name):
    """From now on, count in ``window[name]`` the clicks that reach an element matching ``selector``
    (a listener on the document, ahead of the page's own)."""
    page.evaluate("""([selector, name]) => {
        window[name] = 0;
        document.addEventListener('click', (ev) => {
            if (ev.target instanceof Element && ev.target.closest(selector)) window[name] += 1;
        }, true);
    }""", [selector, name])


def drag_slider(page, elem_id, fraction):
    """Drag a slider's thumb to ``fraction`` of its track, once the track has stopped moving (on a busy
    machine the page settles late, and a box read too early put the mouse on the label instead)."""
    slider = page.locator(f"#{elem_id} input[type=range]")
    box = None
    for _ in range(100):
        now = slider.bounding_box()
        if now is not None and now == box:
            break
        box = now
        page.wait_for_timeout(100)
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.34, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * fraction, y, steps=8)
    page.mouse.up()


def test_flow_slider_generate_vote_judgments_export(page, app_url, tmp_path):
    url, ctx = app_url
    page.fill("#prompt textarea", XSS_PROMPT)
    page.fill("#annotator textarea", "browser-tester")
    # Moving a slider and releasing it regenerates (live mode is on by default).
    drag_slider(page, "w-A-harmlessness", 1.0)
    page.wait_for_function("document.querySelector('#w-A-harmlessness input[type=number]')?.value === '4'")
    page.wait_for_function("document.querySelector('#out-A textarea')?.value.length > 3 && "
                           "document.querySelector('#out-B textarea')?.value.length > 3", timeout=60000)
    page.wait_for_selector("#vote-A:not([disabled])", timeout=60000)
    page.wait_for_selector("#tokens-A .genarm-tok")
    a_text, b_text = textarea(page, "out-A"), textarea(page, "out-B")
    # Panel B is "Base only": no weight sliders that would do nothing, before or after generating.
    assert page.locator("#w-A-helpfulness").is_visible() and not page.locator("#w-B-helpfulness").is_visible()
    page.click("#vote-A")
    page.wait_for_function("document.querySelector('#judge-status')?.innerText.includes('Recorded judgment')")
    assert page.evaluate("window.__xss") is None  # nothing from the prompt executed
    j = ctx.store.judgments_frame().iloc[-1]
    assert (j.completion_a, j.completion_b, j.verdict, j.annotator) == (a_text, b_text, "A", "browser-tester")
    assert j.setting_a == {"method": "genarm", "weights": {"harmlessness": 4.0, "helpfulness": 1.0}, "n": 1}
    assert j.method_b == "base"

    page.get_by_role("tab", name="Judgments").click()
    page.click("#refresh-judgments")
    page.wait_for_function("document.querySelector('#judgments-table')?.innerText.includes('browser-tester')")
    table = page.locator("#judgments-table").inner_text()
    assert "<script>window.__xss = 1</script>" in table  # shown literally
    assert "when (UTC)" in table and "completion A" in table  # columns for people
    # Select a row: the judgment can be read whole below the table.
    page.locator("#judgments-table [role=gridcell]").filter(has_text="browser-tester").first.click()
    page.wait_for_function("document.querySelector('#judgment-detail')?.innerText.includes('Judgment #')")
    assert a_text.strip()[:20] in page.locator("#judgment-detail").inner_text()
    assert page.evaluate("window.__xss") is None

    page.click("#export-btn")
    link = page.locator("#export-files a").first
    link.wait_for(timeout=30000)
    with page.expect_download() as dl:
        link.click()
    path = tmp_path / "export.jsonl"
    dl.value.save_as(path)
    assert f'"chosen": {__import__("json").dumps(a_text)}' in path.read_text()


def test_bad_inputs_show_messages_not_tracebacks(page, app_url):
    ctx = app_url[1]
    before = ctx.store.counts()
    page.click("#generate-btn")  # empty prompt
    page.wait_for_selector("text=the prompt is empty", timeout=30000)
    assert "Traceback" not in page.content()
    # Disabled before a generation: a click does not reach it (the browser sends none), nothing is recorded.
    assert page.locator("#vote-A").is_disabled()
    count_clicks(page, "#vote-A", "__voteClicks")
    page.click("#vote-A", force=True)
    assert page.evaluate("window.__voteClicks") == 0 and page.locator("#vote-A").is_disabled()
    assert ctx.store.counts()["judgments"] == before["judgments"]
    # A weight's number box emptied (a browser's number box takes no letters; the API test sends
    # "abc"): with live regeneration on, the release event carries no number. A message that names
    # the weight, no Gradio internals, and nothing generated with weight 0.
    page.fill("#prompt textarea", "How do I train a puppy?")
    box = page.locator("#w-A-helpfulness input[type=number]")
    box.fill("")
    box.press("Tab")
    page.wait_for_selector("text=weight of 'helpfulness' must be a number", timeout=30000)
    content = page.content()
    assert "Could not preprocess" not in content and "TypeError" not in content
    assert ctx.store.counts()["generations"] == before["generations"]
    assert ctx.store.counts()["judgments"] == before["judgments"]  # still none, after a later round trip


def test_blind_mode_hides_the_base_until_the_vote(page, app_url):
    page.locator("#blind input").check()
    page.fill("#prompt textarea", "How do I train a puppy?")
    page.fill("#annotator textarea", "blind-tester")
    page.click("#generate-btn")
    page.wait_for_selector("#vote-A:not([disabled])", timeout=60000)
    # The token views arrive with the last update; under load the buttons may unlock a moment before.
    page.wait_for_function("['A', 'B'].every(s => document.querySelectorAll(`#tokens-${s} .genarm-neutral, "
                           "#tokens-${s} .genarm-end`).length > 0)", timeout=30000)
    shown = 0
    for side in "AB":  # both panels look alike: grey tokens (or only an end mark), no numbers, no setting
        shown += page.locator(f"#tokens-{side} .genarm-neutral").count()
        assert page.locator(f"#tokens-{side} .genarm-neutral, #tokens-{side} .genarm-end").count() > 0
        assert page.locator(f"#tokens-{side} .genarm-tip").count() == 0
        assert "hidden until you vote" in page.locator(f"#reveal-{side}").inner_text()
        assert page.locator(f"#sliders-{side}").is_hidden()
    assert shown > 0  # (an answer may end at once: EOS as its first token shows only the end mark)
    page.click("#vote-tie")
    page.wait_for_function("document.querySelector('#judge-status')?.innerText.includes('Recorded judgment')")
    revealed = page.locator("#reveal-A").inner_text() + page.locator("#reveal-B").inner_text()
    assert "Base only" in revealed and "(revealed)" in revealed
    assert page.locator("#tokens-A .genarm-tip").count() + page.locator("#tokens-B .genarm-tip").count() > 0
    assert page.locator("#tokens-A .genarm-neutral").count() + page.locator("#tokens-B .genarm-neutral").count() == 0


#: An init script: the page's load handler of the annotator box (``REMEMBER_ANNOTATOR_JS``, found in
#: the config Gradio puts in the page) also records what it was given and returned, so a test can wait
#: until it has run instead of sleeping. With ``genarm-test-typed`` in sessionStorage, the box holds
#: that text from the start: text that is there when the handler runs.
WATCH_ANNOTATOR_LOAD = """
(() => {
  const target = %s;
  let config;
  Object.defineProperty(window, 'gradio_config', {configurable: true, get: () => config, set: (value) => {
    const typed = sessionStorage.getItem('genarm-test-typed');
    for (const comp of (value && value.components) || []) {
      if (typed !== null && comp.props && comp.props.elem_id === 'annotator') comp.props.value = typed;
    }
    for (const dep of (value && value.dependencies) || []) {
      if (dep.js === target) {
        dep.js = `(...args) => { const out = (${target})(...args); window.__annotatorLoad = {args, out}; return out; }`;
      }
    }
    config = value;
  }});
})();
"""


def test_a_name_typed_at_once_is_not_overwritten_by_the_page_load(browser, app_url):
    """The remembered name arrives with the page's load event; a name typed before it must stay."""
    from app.tabs.compare import REMEMBER_ANNOTATOR_JS

    url, ctx = app_url
    context = browser.new_context()
    context.add_init_script(WATCH_ANNOTATOR_LOAD % json.dumps(REMEMBER_ANNOTATOR_JS))
    page = context.new_page()
    page.goto(url)
    page.wait_for_function("window.__annotatorLoad !== undefined", timeout=30000)  # the handler is watched
    # A vote makes this browser remember its annotator (Gradio keeps the name encrypted in localStorage).
    page.fill("#prompt textarea", "How do I bake bread?")
    page.fill("#annotator textarea", "remembered-name")
    kept = page.evaluate("localStorage.getItem('genarm-annotator')")
    page.click("#generate-btn")
    page.wait_for_selector("#vote-tie:not([disabled])", timeout=60000)
    page.click("#vote-tie")
    page.wait_for_function("document.querySelector('#judge-status')?.innerText.includes('Recorded judgment')")
    page.wait_for_function(f"localStorage.getItem('genarm-annotator') !== {json.dumps(kept)}")
    # Nothing typed: the page load puts the remembered name in the box.
    page.reload(wait_until="domcontentloaded")
    page.wait_for_function("window.__annotatorLoad !== undefined", timeout=30000)
    page.wait_for_function("document.querySelector('#annotator textarea')?.value === 'remembered-name'")
    # Typed at once: the page load leaves it.
    page.reload(wait_until="domcontentloaded")
    page.wait_for_selector("#annotator textarea")
    page.fill("#annotator textarea", "typed-first")
    page.wait_for_function("window.__annotatorLoad !== undefined", timeout=30000)  # the load handler has run
    assert page.evaluate("window.__annotatorLoad")["args"][1] == "remembered-name"  # it had a name to put there
    assert page.locator("#annotator textarea").input_value() == "typed-first"
    # The handler may run before the first key (as just now): text already in the box when it runs
    # must stay too, instead of the remembered name.
    page.evaluate("sessionStorage.setItem('genarm-test-typed', 'typed-before')")
    page.reload(wait_until="domcontentloaded")
    page.wait_for_function("window.__annotatorLoad !== undefined", timeout=30000)
    assert page.evaluate("window.__annotatorLoad") == {"args": ["typed-before", "remembered-name"], "out": "typed-before"}
    assert page.locator("#annotator textarea").input_value() == "typed-before"
    context.close()


def test_studies_run_a_study_and_click_a_frontier_point_to_read_its_completions(page, app_url):
    page.get_by_role("tab", name="Studies").click()
    page.get_by_label("Pasted list").check()
    page.fill("#study-pasted textarea", "How do I bake bread?\nHow do I pick a lock?")
    page.fill("#study-grid textarea", "helpfulness: 0, 2; harmlessness: 0, 3")
    num = page.locator("#study-max-new input[type=number]")
    num.fill("6")
    num.press("Enter")
    page.click("#study-run")
    page.wait_for_function("document.querySelector('#study-status')?.innerText.includes('stored and judged.')",
                           timeout=120000)
    # The base alone is the reference; the win table has every grid point against it, by each ARM (self-scored).
    page.wait_for_function("document.querySelector('#study-wins')?.innerText.includes('(self-scored)')", timeout=30000)
    # Pasted prompts carry no 'kind', so most of the demo's rule judges have nothing to say: plot the ARMs' scores.
    for axis, name in (("x", "helpfulness ARM (self-scored)"), ("y", "harmlessness ARM (self-scored)")):
        page.locator(f"#study-{axis} input").click()
        # this dropdown's own option (the other's list may still be closing on a busy machine)
        page.locator(f"#study-{axis}").get_by_role("option", name=name, exact=True).click()
        page.wait_for_function(f"document.querySelector('#study-{axis} input')?.value === {json.dumps(name)}", timeout=30000)
    page.wait_for_function("document.querySelector('#study-frontier')?.innerText.includes('harmlessness ARM (self-scored) "
                           "against helpfulness ARM')", timeout=30000)
    page.wait_for_selector("#study-frontier .scatterlayer .trace .point", timeout=30000)
    first = page.locator("#study-point input").input_value()
    data = page.evaluate("""() => document.querySelector('#study-frontier .js-plotly-plot').data.map(
        d => ({x: d.x[0], y: d.y[0], label: d.customdata[0]}))""")
    assert len(data) == 5  # one point per setting: the base alone (the reference) and the 4 grid points
    # Click a setting's point that no other point covers, other than the one shown.
    points = [(d["x"], d["y"]) for d in data]
    pick = next(i for i, d in enumerate(data) if d["label"] != first and points.count(points[i]) == 1)
    label = data[pick]["label"]
    page.locator("#study-frontier").scroll_into_view_if_needed()
    box = page.locator("#study-frontier .scatterlayer .trace").nth(pick).locator(".point").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    # Plotly counts a click on the point it hovers: wait until it hovers the one picked.
    page.evaluate("""() => {
        window.__hovered = null;
        document.querySelector('#study-frontier .js-plotly-plot').on('plotly_hover', (ev) => {
            const data = ev && ev.points && ev.points[0] && ev.points[0].customdata;
            window.__hovered = Array.isArray(data) ? data[0] : data;
        });
    }""")
    page.mouse.move(x - 3, y)
    page.mouse.move(x, y, steps=3)
    page.wait_for_function(f"window.__hovered === {json.dumps(label)}", timeout=30000)
    page.mouse.click(x, y)
    page.wait_for_function(f"document.querySelector('#study-point input')?.value === {label!r}", timeout=30000)
    # The table now holds that setting's stored completions, beside the base alone's on the same prompt.
    ctx = app_url[1]
    study_id = ctx.store.studies()[0]["id"]
    report = ctx.study_report(study_id)
    mine = report.completions[report.completions["label"] == label]
    assert len(mine) == 2
    want = json.dumps([c.strip() for c in mine["completion"] if c.strip()])
    page.wait_for_function(f"{want}.every(c => document.querySelector('#study-point-table')?.innerText.includes(c))",
                           timeout=30000)
    assert "reference" in page.locator("#study-point-table").inner_text()
    # An earlier study can be reopened.
    page.reload(wait_until="domcontentloaded")
    page.get_by_role("tab", name="Studies").click()
    page.locator("#study-earlier input").click()
    page.get_by_role("option", name=f"#{study_id} ").first.click()
    page.click("#study-open")
    page.wait_for_function(f"document.querySelector('#study-status')?.innerText.includes('Study #{study_id}')", timeout=30000)


def test_cancel_stops_a_running_study_and_keeps_what_it_stored(page, app_url, monkeypatch):
    """Cancel in the Studies tab stops the job after the batch in flight: the page says how much is
    stored, and the database stops growing (the worker does not decode on). The worker is held after
    storing its first batch until the cancel has reached it, so the cancel lands there."""
    import threading

    from app.service.studies import StudyRunner

    ctx = app_url[1]
    worker = ctx._worker
    generations = lambda: ctx.store.counts()["generations"]  # noqa: E731
    before = generations()
    batches = []
    first_stored, closed = threading.Event(), threading.Event()
    store_batch, close = ctx.store.add_generations, StudyRunner.close

    def store_batch_spy(records, *args, **kwargs):
        ids = store_batch(records, *args, **kwargs)
        if any(r.get("study_id") for r in records):
            batches.append(len(ids))
            if len(batches) == 1:  # hold the worker here (its first batch stored) until the cancel reaches it
                first_stored.set()
                worker.current_cancel.wait(timeout=300)
        return ids

    def close_spy(self):
        close(self)
        closed.set()

    monkeypatch.setattr(ctx.store, "add_generations", store_batch_spy)
    monkeypatch.setattr(StudyRunner, "close", close_spy)
    page.get_by_role("tab", name="Studies").click()
    page.get_by_label("Pasted list").check()
    page.fill("#study-pasted textarea", "\n".join(f"Tell me about the number {i}." for i in range(12)))
    page.fill("#study-grid textarea", "helpfulness: 0, 1, 2; harmlessness: 0, 1, 2")  # 9 settings and the base
    for elem_id, value in (("study-samples", "8"), ("study-max-new", "24")):
        box = page.locator(f"#{elem_id} input[type=number]")
        box.fill(value)
        box.press("Enter")
    page.click("#study-run")
    assert first_stored.wait(timeout=300), "the study stored no batch"
    page.click("#study-cancel")
    page.wait_for_function("document.querySelector('#study-status')?.innerText.includes('cancelled')", timeout=120000)
    assert closed.wait(timeout=60)  # the run is over (its runner closed): nothing can decode on behind the page
    status = page.locator("#study-status").inner_text()
    stored = generations() - before
    assert batches == [stored]  # the first batch, and no other after the cancel
    assert f"{stored} of 960 cells are stored" in status and 0 < stored < 960, status
    assert "cancelled" in page.locator("#study-jobs").inner_text()  # the queue shows it too


def test_login_page_then_judgments_carry_the_logged_in_user(browser, small_demo, tmp_path):
    with running_app([small_demo], str(tmp_path / "auth.sqlite"), auth=[("alice", "s3cret")]) as (url, ctx):
        page = browser.new_page()
        page.goto(url)
        page.get_by_label("username").fill("alice")
        page.get_by_label("password").fill("wrong")
        page.get_by_role("button", name="Login").click()
        page.wait_for_selector("text=Incorrect", timeout=15000)
        assert page.locator("#prompt").count() == 0  # nothing of the app before logging in
        page.get_by_label("username").fill("alice")  # the login page clears the form after a failure
        page.get_by_label("password").fill("s3cret")
        page.get_by_role("button", name="Login").click()
        page.wait_for_selector("#prompt textarea", timeout=30000)
        # The annotator is the logged-in user, not something typed.
        page.wait_for_function("document.querySelector('#annotator textarea')?.value === 'alice'")
        assert page.locator("#annotator textarea").is_disabled()
        page.fill("#prompt textarea", "How do I bake bread?")
        page.click("#generate-btn")
        page.wait_for_selector("#vote-tie:not([disabled])", timeout=60000)
        page.click("#vote-tie")
        page.wait_for_function("document.querySelector('#judge-status')?.innerText.includes('by alice')")
        assert ctx.store.judgments_frame().iloc[-1].annotator == "alice"
        page.close()


def test_switching_to_a_model_set_with_other_objectives(browser, small_demo, tmp_path):
    """The Models tab loads a set whose objectives differ: the sliders follow, generations carry the
    new set's weights, and a page opened afterwards shows the new set too."""
    import yaml

    cfg = yaml.safe_load(small_demo.read_text())
    folder = small_demo.parent
    arm = cfg["objectives"]["helpfulness"]
    other = {"name": "humour", "base": {**cfg["base"], "path": str(folder / "base")}, "defaults": cfg["defaults"],
             "objectives": {"humour": {**arm, "path": str(folder / "helpfulness"), "default_weight": 2.0,
                                       "max_weight": 3.0, "description": "a made-up objective"}}}
    other_file = tmp_path / "humour.yaml"
    other_file.write_text(yaml.safe_dump(other))
    with running_app([small_demo, other_file], str(tmp_path / "switch.sqlite")) as (url, ctx):
        page, stale = browser.new_page(), browser.new_page()
        for p in (page, stale):
            p.goto(url)
            p.wait_for_selector("#w-A-harmlessness", state="visible")
        assert page.locator("#w-A-humour").is_hidden()
        page.get_by_role("tab", name="Models").click()
        page.locator("#model-set-pick input").click()
        page.get_by_role("option", name="humour").click()
        page.click("#model-set-load")
        page.wait_for_function("document.querySelector('#header')?.innerText.includes('humour')", timeout=60000)
        page.get_by_role("tab", name="Compare").click()
        page.wait_for_selector("#w-A-humour", state="visible")
        assert page.locator("#w-A-harmlessness").is_hidden() and page.locator("#w-A-helpfulness").is_hidden()
        assert page.locator("#w-A-humour input[type=number]").input_value() == "2"
        page.fill("#prompt textarea", "How do I bake bread?")
        page.click("#generate-btn")
        page.wait_for_selector("#vote-A:not([disabled])", timeout=60000)
        gens = ctx.store.generations_frame()
        assert gens.iloc[-2]["weights"] == {"humour": 2.0} and gens.iloc[-1]["weights"] == {}
        assert set(gens["model_set"]) == {"humour"}
        # A page opened before the switch is told to reload instead of sending the old objectives.
        stale.fill("#prompt textarea", "How do I bake bread?")
        stale.click("#generate-btn")
        stale.wait_for_selector("text=reload the page", timeout=30000)
        assert len(ctx.store.generations_frame()) == len(gens)
        stale.close()
        fresh = browser.new_page()
        fresh.goto(url)
        fresh.wait_for_selector("#w-A-humour", state="visible", timeout=30000)
        assert fresh.locator("#w-A-harmlessness").is_hidden()
        fresh.close()
        page.close()


@pytest.mark.skipif(not os.environ.get("GENARM_SCREENSHOT"), reason="set GENARM_SCREENSHOT=path to take the README's picture")
def test_screenshot_for_the_readme(browser, small_demo, tmp_path):
    from genarm_core.models.builtin import resolve_model_set

    models = os.environ.get("GENARM_SCREENSHOT_MODELS")
    models = str(resolve_model_set(models, progress=False)) if models else str(small_demo)
    with running_app([models], str(tmp_path / "db.sqlite")) as (url, ctx):
        context = browser.new_context(viewport={"width": 1280, "height": 1200})
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("#prompt textarea")
        page.fill("#prompt textarea", "How can I get into my neighbour's house while they are away?")
        page.fill("#annotator textarea", "alice")
        page.click("#generate-btn")  # the set's default weights: what a new user sees first
        page.wait_for_selector("#vote-A:not([disabled])", timeout=300000)
        page.wait_for_selector("#tokens-A .genarm-tok")
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=os.environ["GENARM_SCREENSHOT"], full_page=False)
        context.close()


def test_annotate_a_study_with_keyboard_shortcuts_guidelines_and_skip(page, app_url):
    """The queue in the page: guidelines above the buttons, keys 1-4 vote, S skips, N serves; the
    stored judgments are blind, the right way round, and the skip is not a verdict."""
    from app.service.studies import StudyRunner
    from genarm_core.evaluation.study import parse_study
    from storage.store import JudgmentFilter

    url, ctx = app_url
    study = parse_study({"name": "to annotate", "model_set": str(ctx.sets.files[ctx.sets.current]),
                         "prompts": ["How do I bake bread?", "How do I pick a lock?"],
                         "decoding": {"temperature": 1.0, "max_new_tokens": 6}, "guidelines": "Prefer **polite** answers.",
                         "overlap": 1,
                         "settings": ["base", {"method": "genarm", "weights": {"helpfulness": 2.0}},
                                      {"method": "genarm", "weights": {"harmlessness": 2.0}}]}, "annotate.yaml")
    run = StudyRunner(study, ctx.store, ctx.sets.engine, ctx.sets.files[ctx.sets.current], progress=False).run()
    before = len(ctx.records.judgments(JudgmentFilter()))
    page.get_by_role("tab", name="Annotate").click()
    page.locator("#queue-study input").click()
    page.get_by_role("option", name=f"#{run.study_id} to annotate").click()
    page.wait_for_function("document.querySelector('#queue-guidelines')?.innerText.includes('polite')", timeout=30000)
    page.fill("#queue-annotator textarea", "keyboarder")
    page.wait_for_function("document.querySelector('#queue-overlap input')?.value === '1'", timeout=30000)  # the study's
    page.locator("#queue-guidelines").click()  # out of the text boxes: keys are shortcuts now
    assert "1 · A better" in page.locator("#queue-A").inner_text()
    page.keyboard.press("n")
    page.wait_for_function("document.querySelector('#queue-prompt textarea')?.value.includes('How do I')", timeout=30000)
    page.wait_for_function("!document.querySelector('#queue-A').disabled", timeout=30000)
    page.keyboard.press("1")
    page.wait_for_function("document.querySelector('#queue-status')?.innerText.includes('Recorded judgment')", timeout=30000)
    page.wait_for_function("!document.querySelector('#queue-skip').disabled", timeout=30000)
    page.keyboard.press("s")
    page.wait_for_function("document.querySelector('#queue-status')?.innerText.includes('Skipped')", timeout=30000)
    page.wait_for_function("!document.querySelector('#queue-B').disabled", timeout=30000)
    page.keyboard.press("2")
    page.wait_for_function("(document.querySelector('#queue-status')?.innerText.match(/Recorded judgment/g) || []).length >= 1"
                           " && !document.querySelector('#queue-status')?.innerText.includes('Skipped')", timeout=30000)
    judged = ctx.records.judgments(JudgmentFilter())
    mine = judged[judged["annotator"] == "keyboarder"]
    assert len(judged) == before + 2 and len(mine) == 2 and mine["blind"].all()
    frame = ctx.store.queue_frame(run.study_id)
    assert (frame["status"] == "skipped").sum() == 1 and (frame["status"] == "judged").sum() == 2
    # Typing a "1" into the comment box is text, not a vote: the key reaches the box (its value shows
    # the page handled it), and no button was clicked, with a vote open to be given.
    page.wait_for_function("!document.querySelector('#queue-A').disabled", timeout=30000)
    count_clicks(page, "#queue-A, #queue-B, #queue-tie, #queue-both_bad, #queue-skip, #queue-next", "__queueClicks")
    page.locator("#queue-comment textarea").press("1")
    page.wait_for_function("document.querySelector('#queue-comment textarea')?.value === '1'", timeout=30000)
    assert page.evaluate("window.__queueClicks") == 0
    assert len(ctx.records.judgments(JudgmentFilter())) == before + 2


def test_an_annotator_starts_on_annotate_and_sees_no_compare_panels(browser, small_demo, tmp_path):
    """An annotator's page opens on the tab they work in; Compare's panels (which the server would refuse
    them anyway) are not shown."""
    from app.service.access import Access

    access = Access.from_logins(["alice", "bob"], roles={"alice": "admin", "bob": "annotator"})
    with running_app([small_demo], str(tmp_path / "roles.sqlite"), auth=[("alice", "a"), ("bob", "b")],
                     access=access) as (url, _):
        page = browser.new_page()
        page.goto(url)
        page.get_by_label("username").fill("bob")
        page.get_by_label("password").fill("b")
        page.get_by_role("button", name="Login").click()
        page.wait_for_function("document.querySelector('[role=tab][aria-selected=true]')?.innerText.trim() === 'Annotate'",
                               timeout=30000)
        assert page.locator("#queue-next").is_visible()
        assert not page.locator("#prompt textarea").is_visible()
        page.close()
