// The dashboard's only script: the app page's log view follows new lines
// over Server-Sent Events (the session cookie authorizes the stream). The
// page works without it; this only makes the logs live.
"use strict";
(function () {
  const log = document.getElementById("log");
  if (!log || !log.dataset.stream || !window.EventSource) return;
  const source = new EventSource(log.dataset.stream);
  let first = true;
  source.addEventListener("line", function (e) {
    let line;
    try { line = JSON.parse(e.data).line; } catch (_) { return; }
    if (first) { log.textContent = ""; first = false; }
    const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.appendChild(document.createTextNode(line + "\n"));
    // Keep the view bounded, as the server's history is.
    while (log.childNodes.length > 2000) log.removeChild(log.firstChild);
    if (atEnd) log.scrollTop = log.scrollHeight;
  });
})();
