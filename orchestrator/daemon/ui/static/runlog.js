// The run page's log: lines from GET /runs/{id}/log appended as text (never as HTML)
// while the job runs; the stream ends, and is closed, once the run has ended.
"use strict";

(function () {
  const panel = document.getElementById("run-log");
  if (!panel) {
    return;
  }
  const lines = document.getElementById("log-lines");
  const note = document.getElementById("log-note");
  const source = new EventSource(panel.dataset.log);

  source.addEventListener("open", function () {
    note.textContent = "following the log";
  });
  source.addEventListener("log", function (message) {
    // Keep following the end only when the reader is there already.
    const atEnd = lines.scrollTop + lines.clientHeight >= lines.scrollHeight - 4;
    lines.append(JSON.parse(message.data).lines.join("\n") + "\n");
    if (atEnd) {
      lines.scrollTop = lines.scrollHeight;
    }
  });
  source.addEventListener("missing", function (message) {
    note.textContent = JSON.parse(message.data).text;
  });
  source.addEventListener("end", function (message) {
    source.close(); // else the browser would reconnect and wait for lines that never come
    const state = JSON.parse(message.data).state;
    if (!lines.textContent) {
      note.textContent = note.textContent === "following the log" ? "no log lines" : note.textContent;
    } else {
      note.textContent = "the run ended: " + state;
    }
    const timeline = document.getElementById("timeline");
    if (timeline && !timeline.querySelector(".s-" + state)) {
      const item = document.createElement("li");
      const badge = document.createElement("span");
      badge.className = "state s-" + state;
      badge.textContent = state;
      item.append(badge, " just now");
      timeline.appendChild(item);
    }
  });
})();
