// The instance sample of report.html (runtime/store/report_page.py). Every string comes from a
// record: it is set with textContent, never parsed as markup, and a link is only ever a
// crashes/<6 digits>.txt file of the run directory.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("sample-data").textContent);
  var list = document.getElementById("sample-list");
  var count = document.getElementById("sample-count");
  var filters = {
    outcome: document.getElementById("f-outcome"),
    intent: document.getElementById("f-intent"),
    stage: document.getElementById("f-stage"),
    reason: document.getElementById("f-reason")
  };
  var CRASH_FILE = /^crashes\/[0-9]{6}\.txt$/;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }

  function fill(select, values) {
    values.slice().sort().forEach(function (v) {
      var o = el("option", null, v);
      o.value = v;
      select.appendChild(o);
    });
  }

  function unique(pick) {
    var seen = {};
    data.forEach(function (d) { pick(d).forEach(function (v) { if (v) { seen[v] = true; } }); });
    return Object.keys(seen);
  }

  function section(title) {
    var s = el("div", "section");
    s.appendChild(el("h4", null, title));
    return s;
  }

  function items(parent, values) {
    var ul = el("ul");
    values.forEach(function (v) { ul.appendChild(el("li", null, v)); });
    parent.appendChild(ul);
  }

  function message(m) {
    var side = m.side === "user";
    var box = el("div", "msg " + m.role + (side ? " user-side" : "") + (m.error ? " error" : ""));
    var who = m.role;
    if (m.role === "tool") { who = "tool result" + (m.name ? ": " + m.name : "") + (m.error ? " (" + m.error + ")" : ""); }
    if (side) { who += " (user side: the simulated user's own tool use)"; }
    box.appendChild(el("div", "who", who));
    if (m.content) { box.appendChild(el("div", "content", m.content)); }
    (m.calls || []).forEach(function (c) {
      var call = el("div", "call");
      call.appendChild(el("div", "call-name", "calls " + c.name));
      call.appendChild(el("pre", "arguments", c.arguments));
      box.appendChild(call);
    });
    return box;
  }

  function instance(d) {
    var box = el("details", "instance " + d.outcome);
    box.dataset.outcome = d.outcome;
    box.dataset.intent = d.intent;
    box.dataset.stage = d.stage;
    var head = el("summary");
    head.appendChild(el("span", "badge outcome", d.outcome));
    head.appendChild(el("code", "id", d.id));
    head.appendChild(document.createTextNode(" " + d.intent + (d.stage ? " · " + d.stage : "")
      + (d.reasons.length ? " · " + d.reasons[0].slice(0, 160) : "")));
    box.appendChild(head);
    var task = section("Task");
    task.appendChild(el("p", "objective", d.objective));
    task.appendChild(el("p", null, "persona: " + (d.persona || "-") + " · level: " + (d.level || "-")));
    if (d.gold.length) { items(task, d.gold.map(function (g) { return "gold: " + g; })); }
    box.appendChild(task);
    if (d.crash) {
      var crash = section("Crash");
      crash.classList.add("crash");
      crash.appendChild(el("p", null, d.crash.stage + ": " + d.crash.source + " " + d.crash.where
        + " raised " + d.crash.type + ": " + d.crash.message));
      if (d.crash.file && CRASH_FILE.test(d.crash.file)) {
        var a = el("a", "traceback", "traceback: " + d.crash.file);
        a.setAttribute("href", d.crash.file);
        crash.appendChild(a);
      }
      box.appendChild(crash);
    }
    if (d.reasons.length) {
      var why = section(d.outcome === "accepted" ? "Reasons" : "Rejected at " + d.stage);
      items(why, d.reasons);
      box.appendChild(why);
    }
    var dialog = section("Dialogue (" + d.messages.length + " messages)");
    dialog.classList.add("dialogue");
    d.messages.forEach(function (m) { dialog.appendChild(message(m)); });
    if (!d.messages.length) { dialog.appendChild(el("p", null, "(no dialogue was made)")); }
    box.appendChild(dialog);
    if (d.verifier) {
      var v = section("Verifier");
      items(v, d.verifier.assertions.map(function (x) { return "assert: " + x; })
        .concat(d.verifier.communicate.map(function (x) { return "communicate: " + x; }))
        .concat(["expected changes: " + d.verifier.expected_changes]));
      box.appendChild(v);
    }
    if (d.feasibility) {
      var f = section("Feasibility: " + (d.feasibility.feasible ? "feasible" : "infeasible"));
      items(f, d.feasibility.reasons);
      box.appendChild(f);
    }
    if (d.validation.length) {
      var rounds = section("Validation rounds");
      var table = el("table", "validation");
      var hr = el("tr");
      ["round", "accepted", "failed checks", "reasons"].forEach(function (h) { hr.appendChild(el("th", null, h)); });
      table.appendChild(hr);
      d.validation.forEach(function (r) {
        var tr = el("tr");
        tr.appendChild(el("td", null, r.round));
        tr.appendChild(el("td", null, r.accepted ? "yes" : "no"));
        tr.appendChild(el("td", null, r.failed.join(", ")));
        tr.appendChild(el("td", null, r.reasons.join("\n")));
        table.appendChild(tr);
      });
      rounds.appendChild(table);
      box.appendChild(rounds);
    }
    return box;
  }

  function apply() {
    var want = {};
    Object.keys(filters).forEach(function (k) { want[k] = filters[k].value; });
    var shown = 0;
    data.forEach(function (d, i) {
      var ok = (!want.outcome || d.outcome === want.outcome) && (!want.intent || d.intent === want.intent)
        && (!want.stage || d.stage === want.stage) && (!want.reason || d.groups.indexOf(want.reason) >= 0);
      nodes[i].hidden = !ok;
      if (ok) { shown += 1; }
    });
    count.textContent = shown + " of " + data.length + " shown";
  }

  fill(filters.intent, unique(function (d) { return [d.intent]; }));
  fill(filters.stage, unique(function (d) { return [d.stage]; }));
  fill(filters.reason, unique(function (d) { return d.groups; }));
  var nodes = data.map(function (d) { var n = instance(d); list.appendChild(n); return n; });
  Object.keys(filters).forEach(function (k) { filters[k].addEventListener("change", apply); });
  apply();
})();
