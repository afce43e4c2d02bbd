// Keeps the grid and the run page current from the daemon's server-sent events,
// changing only the cells (or the state) an event names; no reloads, no libraries.
"use strict";

(function () {
  const live = document.getElementById("live");
  // The grid's page of days, or the run page's run: the server sends only those.
  const source = new EventSource(document.body.dataset.events);

  source.addEventListener("open", function () {
    live.textContent = "live";
    live.classList.add("on");
  });
  source.addEventListener("error", function () {
    live.textContent = "reconnecting…";
    live.classList.remove("on");
  });

  source.addEventListener("partition", function (message) {
    const cell = JSON.parse(message.data);
    const td = document.querySelector('td[data-key="' + CSS.escape(cell.key) + '"]');
    if (!td) {
      return; // a day on another page
    }
    td.className = "cell s-" + cell.state;
    td.title = cell.workflow + " " + cell.day + ": " + cell.state + (cell.why ? ": " + cell.why : "");
    // A cell without a run links to its partition's page: why it is not running.
    const link = document.createElement("a");
    link.href = cell.run_id ? "/runs/" + encodeURIComponent(cell.run_id)
      : "/partitions/" + encodeURIComponent(cell.workflow) + "/" + cell.day;
    link.textContent = cell.state;
    td.replaceChildren(link);
  });

  source.addEventListener("run", function (message) {
    const run = JSON.parse(message.data);
    const state = document.getElementById("run-state");
    if (state && state.dataset.run === run.id) {
      state.textContent = run.state;
      state.className = "state s-" + run.state;
      const cancel = document.getElementById("act-cancel");
      if (cancel) {
        cancel.hidden = run.state !== "running";
      }
    }
  });
})();

// The actions: each a POST carrying the API token as its bearer header. The token stays
// in this tab's sessionStorage, never in a cookie, so no other site's page can make the
// browser send it. The backfills' progress is read every few seconds.
(function () {
  const KEY = "charon.api-token";
  const input = document.getElementById("api-token");
  const buttons = document.querySelectorAll("button.act");
  const result = document.querySelector(".act-result");
  const panel = document.getElementById("backfills");

  function token() {
    return sessionStorage.getItem(KEY) || "";
  }
  function say(text) {
    if (result) {
      result.textContent = text;
    }
  }
  function showToken() {
    const has = token() !== "";
    input.placeholder = has ? "token in use" : "API token";
    for (const button of buttons) {
      button.disabled = !has;
      button.title = has ? "" : "enter the API token first";
    }
    say(has ? "" : "Actions need the API token: enter it above.");
  }
  function field(id) {
    return document.getElementById(id).value.trim();
  }

  // What a button asks for: its path, its body, and how to say it was done.
  function request(what) {
    if (what === "trigger") {
      const path = "/api/partitions/" + encodeURIComponent(field("act-workflow")) + "/" +
        encodeURIComponent(field("act-day")) + "/trigger";
      return [path, {}, function (done) { return done.workflow + " " + done.date + " triggered"; }];
    }
    if (what === "backfill") {
      const body = { workflow: field("act-workflow"), interval: field("act-interval"),
                     order: field("act-order") };
      return ["/api/backfills", body, function (done) {
        return "backfill " + done.id + " started: " + done.total + " days";
      }];
    }
    return [what, {}, function (done) {
      return done.status === "cancelled" ? "cancelled" : "re-run requested";
    }];
  }

  async function act(path, body) {
    const response = await fetch(path, {
      method: "POST",
      headers: { "Authorization": "Bearer " + token(), "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const answer = await response.json();
    if (!response.ok) {
      throw new Error(answer.error + " (" + response.status + ")");
    }
    return answer;
  }

  for (const button of buttons) {
    button.addEventListener("click", function () {
      const [path, body, said] = request(button.dataset.act);
      button.disabled = true;
      say("sending…");
      act(path, body).then(function (done) { say(said(done)); },
                           function (error) { say("refused: " + error.message); })
        .finally(function () { button.disabled = token() === ""; poll(true); });
    });
  }
  document.getElementById("token-use").addEventListener("click", function () {
    if (input.value.trim()) {
      sessionStorage.setItem(KEY, input.value.trim());
    } else {
      sessionStorage.removeItem(KEY); // "use" with nothing entered forgets the token
    }
    input.value = "";
    showToken();
  });

  // A click on a cell without a run picks its workflow and day for "trigger the day".
  document.addEventListener("click", function (event) {
    const td = event.target.closest ? event.target.closest("td.cell") : null;
    if (!td || event.target.closest("a") || !document.getElementById("act-day")) {
      return;
    }
    const key = td.dataset.key;
    const cut = key.lastIndexOf("/");
    document.getElementById("act-workflow").value = key.slice(0, cut);
    document.getElementById("act-day").value = key.slice(cut + 1);
  });

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
    return td;
  }
  // A running backfill's own button: made with each render, so not among `buttons`.
  function cancelButton(id) {
    const button = document.createElement("button");
    button.textContent = "cancel";
    button.className = "cancel-backfill";
    button.disabled = token() === "";
    button.title = button.disabled ? "enter the API token first" : "";
    button.addEventListener("click", function () {
      button.disabled = true;
      say("sending…");
      act("/api/backfills/" + encodeURIComponent(id) + "/cancel", {})
        .then(function (done) { say("backfill " + done.id + " cancelled"); },
              function (error) { say("refused: " + error.message); })
        .finally(function () { poll(true); });
    });
    return button;
  }
  function render(backfills) {
    const rows = backfills.map(function (backfill) {
      const row = document.createElement("tr");
      row.dataset.backfill = backfill.id;
      for (const text of [backfill.id, backfill.task, backfill.interval]) {
        cell(row, text);
      }
      cell(row, backfill.state).className = "state s-" + backfill.state;
      const shown = cell(row, " " + backfill.done + " done, " + backfill.failed + " failed, of " +
                         backfill.total);
      const bar = document.createElement("progress");
      bar.max = backfill.total;
      bar.value = backfill.done + backfill.failed;
      shown.prepend(bar);
      const end = cell(row, "");
      if (backfill.state === "running") {
        end.appendChild(cancelButton(backfill.id));
      }
      return row;
    });
    panel.querySelector("tbody").replaceChildren(...rows);
    panel.hidden = rows.length === 0;
  }
  // Besides the first, only while the page's event stream is up: a daemon gone away is
  // not asked again until it is back.
  function poll(first) {
    if (!panel || !(first || document.querySelector("#live.on"))) {
      return;
    }
    fetch("/api/backfills")
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (answer) { if (answer) { render(answer.backfills); } })
      .catch(function () {}); // asked again at the next tick
  }

  showToken();
  poll(true);
  setInterval(poll, 2000);
})();
