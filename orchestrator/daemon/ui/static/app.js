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
    }
  });
})();
