"""report.html in a real browser: headless Chromium (Debian's `chromium`, which `.ci/run`
installs when it is missing) opens the file from disk, with no server, and is driven over the
Chrome DevTools protocol on a pipe (`--remote-debugging-pipe`: no websocket library, no port).
The dialogues render, the filters work, and text a model wrote stays text.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from runtime.store.report import write_report
from runtime.store.run_store import sealed
from tests.runtime.test_crashes import WORKFLOW, broken_domain, cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--remote-debugging-pipe")
HOSTILE = '</script><script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it with "
                                                         "apt-get install -y chromium; here it could not be)")


class Browser:
    """Just enough of the DevTools protocol: open a page, evaluate JavaScript in it."""

    def __init__(self, profile: Path) -> None:
        ours_in, self._in = os.pipe()  # we write commands; chromium reads them on fd 3
        self._out, theirs_out = os.pipe()  # chromium writes answers on fd 4

        def fds() -> None:  # in the child: the pipe ends as fds 3 and 4, kept across exec
            a, b = os.dup(ours_in), os.dup(theirs_out)  # a copy may land on 3 or 4 itself
            os.dup2(a, 3)
            os.dup2(b, 4)
            os.set_inheritable(3, True)  # dup2 onto itself leaves the copy's close-on-exec
            os.set_inheritable(4, True)

        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                     preexec_fn=fds, close_fds=False, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(ours_in)
        os.close(theirs_out)
        self._buf, self._id, self.session, self.events = b"", 0, None, []

    def send(self, method: str, params: dict | None = None, timeout: float = 30.0) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if self.session and not method.startswith(("Target.", "Browser.")):
            msg["sessionId"] = self.session
        os.write(self._in, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" not in self._buf:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self._out], [], [], left)[0]:
                    raise TimeoutError(f"chromium did not answer {method}")
                chunk = os.read(self._out, 1 << 16)
                if not chunk:
                    raise RuntimeError("chromium closed the pipe")
                self._buf += chunk
            line, self._buf = self._buf.split(b"\0", 1)
            answer = json.loads(line)
            if answer.get("id") == self._id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]
            if "method" in answer:
                self.events.append(answer)

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send("Runtime.enable")  # uncaught exceptions arrive as events
        self.send("Page.enable")
        self.send("Page.navigate", {"url": url})
        deadline = time.monotonic() + 30
        while self.js("document.readyState") != "complete" or self.js("document.URL") != url:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not load")
            time.sleep(0.05)

    def js(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def errors(self) -> list[dict]:
        return [e for e in self.events if e.get("method") == "Runtime.exceptionThrown"]

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._in)
        os.close(self._out)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run with accepted, rejected and crashed instances; one accepted record carries
    hostile text (re-sealed, as whoever edits a run directory can) and a user-side tool turn."""
    where = tmp_path_factory.mktemp("html")
    out = where / "run"
    res = cli("run", WORKFLOW, "--domain", broken_domain(where), "--out", out, "--n", "8", "--size", "0.25",
              "-q", "--max-crash-rate", "1")
    assert res.exit_code == 0, res.output
    path = out / "instances.jsonl"
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    first["messages"][1]["content"] = HOSTILE
    call = next(m for m in first["messages"] if m.get("tool_calls"))
    call["tool_calls"][0]["function"]["arguments"] = json.dumps({"account_id": HOSTILE})
    first["messages"] += [
        {"role": "user", "side": "user", "content": None, "tool_calls": [
            {"id": "u1", "type": "function", "function": {"name": "check_phone", "arguments": "{}"}}]},
        {"role": "tool", "side": "user", "tool_call_id": "u1", "name": "check_phone", "content": "signal: none"}]
    lines[0] = json.dumps(sealed(first), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    path.write_text("\n".join(lines) + "\n")
    write_report(out)
    return out


@pytest.fixture(scope="module")
def page(run_dir, tmp_path_factory):
    browser = Browser(tmp_path_factory.mktemp("profile"))
    try:
        browser.open((run_dir / "report.html").as_uri())
        yield browser
    finally:
        browser.close()


def sample_data(run_dir: Path) -> list[dict]:
    from runtime.store.report import _build
    from runtime.store.report_page import sample

    _, accepted, not_accepted = _build(run_dir)
    return sample(accepted, not_accepted)


def visible(page: Browser) -> list[dict]:
    return page.js("""Array.from(document.querySelectorAll('#sample-list .instance'))
        .filter(e => !e.hidden && e.offsetParent !== null)
        .map(e => ({outcome: e.dataset.outcome, intent: e.dataset.intent, stage: e.dataset.stage,
                    id: e.querySelector('summary code').textContent}))""")


def choose(page: Browser, select: str, value: str) -> None:
    page.js(f"""(() => {{ const s = document.getElementById({json.dumps(select)});
        s.value = {json.dumps(value)}; s.dispatchEvent(new Event('change')); }})()""")


def test_the_dialogues_render(page, run_dir):
    data = sample_data(run_dir)
    outcomes = {d["outcome"] for d in data}
    assert outcomes == {"accepted", "rejected", "crashed"}
    assert page.errors() == []
    assert page.js("document.querySelectorAll('#sample-list .instance').length") == len(data)
    assert len(visible(page)) == len(data)
    assert page.js("document.getElementById('sample-count').textContent") == f"{len(data)} of {len(data)} shown"
    accepted = [json.loads(x) for x in (run_dir / "instances.jsonl").read_text().splitlines()]
    for r in accepted:  # every accepted instance is in the sample (8 < 50); each message is shown
        sel = f"#sample-list .instance[data-outcome=accepted]:has(summary code)"
        found = page.js(f"""Array.from(document.querySelectorAll({json.dumps(sel)}))
            .filter(e => e.querySelector('summary code').textContent === {json.dumps(r['id'])})
            .map(e => ({{msgs: e.querySelectorAll('.dialogue .msg').length,
                        calls: Array.from(e.querySelectorAll('.call-name')).map(c => c.textContent),
                        results: e.querySelectorAll('.msg.tool').length,
                        rounds: e.querySelectorAll('table.validation tr').length - 1,
                        verifier: e.querySelector('.section h4') && Array.from(e.querySelectorAll('.section h4'))
                                   .some(h => h.textContent === 'Verifier'),
                        text: e.textContent}}))""")
        assert len(found) == 1, r["id"]
        got = found[0]
        assert got["msgs"] == len(r["messages"])
        assert got["calls"] == [f"calls {c['function']['name']}" for m in r["messages"] for c in m.get("tool_calls") or []]
        assert got["results"] == sum(m["role"] == "tool" for m in r["messages"])
        assert got["rounds"] == len(r["validation"]) and got["verifier"]
        assert r["task"]["objective"] in got["text"]
        for a in r["verifier"]["assertions"]:
            assert a["description"] in got["text"]


def test_model_text_stays_text(page, run_dir):
    assert page.js("typeof window.__pwned") == "undefined"
    assert page.js("document.querySelectorAll('#sample-list script, #sample-list img').length") == 0
    texts = page.js("Array.from(document.querySelectorAll('.msg.user .content')).map(e => e.textContent)")
    assert HOSTILE in texts
    args = page.js("Array.from(document.querySelectorAll('.call .arguments')).map(e => e.textContent)")
    assert any(json.dumps(HOSTILE) in a for a in args)
    side = page.js("Array.from(document.querySelectorAll('.msg.user-side .who')).map(e => e.textContent)")
    assert len(side) == 2 and all("user side" in s for s in side)
    assert "</script><script>" not in (run_dir / "report.html").read_text()  # escaped in the JSON
    # the plots load from beside the file (the page's CSP allows them and nothing from the network)
    assert page.js("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")


def test_the_filters_work(page, run_dir):
    data = sample_data(run_dir)
    try:
        for select, key in (("f-intent", "intent"), ("f-stage", "stage"), ("f-outcome", "outcome")):
            values = sorted({d[key] for d in data if d[key]})
            assert len(values) >= 2, (key, values)
            options = page.js(f"Array.from(document.getElementById('{select}').options).map(o => o.value)")
            assert set(values) <= set(options)
            for value in values:
                choose(page, select, value)
                shown = visible(page)
                assert shown and all(s[key] == value for s in shown)
                assert sorted(s["id"] for s in shown) == sorted(d["id"] for d in data if d[key] == value)
            choose(page, select, "")
        groups = sorted({g for d in data for g in d["groups"]})
        assert "crash: TaskValidation" in groups and "crash: UserIntent" in groups
        for group in groups:
            choose(page, "f-reason", group)
            assert sorted(s["id"] for s in visible(page)) == sorted(d["id"] for d in data if group in d["groups"])
        # filters combine: crashed at TaskValidation, each with its traceback link
        choose(page, "f-reason", "")
        choose(page, "f-outcome", "crashed")
        choose(page, "f-stage", "TaskValidation")
        shown = visible(page)
        want = [d for d in data if d["outcome"] == "crashed" and d["stage"] == "TaskValidation"]
        assert sorted(s["id"] for s in shown) == sorted(d["id"] for d in want) and want
        links = page.js("""Array.from(document.querySelectorAll('#sample-list .instance'))
            .filter(e => !e.hidden).map(e => e.querySelector('a.traceback').getAttribute('href'))""")
        assert links == [d["crash"]["file"] for d in sorted(want, key=lambda d: d["index"])]
        assert all((run_dir / link).is_file() for link in links)
        assert page.js("document.getElementById('sample-count').textContent") == f"{len(want)} of {len(data)} shown"
    finally:
        for select in ("f-outcome", "f-intent", "f-stage", "f-reason"):
            choose(page, select, "")
    assert page.errors() == []


def test_the_sample_is_deterministic_and_spread(run_dir):
    from runtime.store.report_page import _spread

    records = [{"index": i, "task": {"intent": "ab"[i % 2] if i < 40 else "c"}} for i in range(100)]
    picked = _spread(records, lambda r: r["task"]["intent"], 6)
    assert [r["index"] for r in picked] == [0, 1, 40, 2, 3, 41]  # round-robin over intents, in index order
    html = (run_dir / "report.html").read_text()
    write_report(run_dir)
    assert (run_dir / "report.html").read_text() == html
