// Integrity page: copy the verifier key; poll a running "verify now" for its progress.
"use strict";
(function () {
  const copy = document.getElementById("copy-vkey");
  if (copy) {
    copy.addEventListener("click", function () {
      const input = document.getElementById("vkey");
      input.select();
      const done = function () { copy.textContent = "✔ Copied"; };
      if (navigator.clipboard) navigator.clipboard.writeText(input.value).then(done, function () {});
      else done();
    });
  }
  const box = document.getElementById("verify-job");
  if (!box || box.dataset.state !== "running") return;
  const bar = document.getElementById("verify-progress");
  const out = document.getElementById("verify-result");
  function show(job) {
    bar.max = job.total || 1;
    bar.value = job.done;
    if (job.state === "running") {
      out.textContent = "verifying… " + job.done.toLocaleString() + " of " + job.total.toLocaleString() + " events";
      return false;
    }
    out.textContent = "";
    const span = document.createElement("span");
    span.className = "status " + (job.state === "ok" ? "s-ok" : "s-error");
    span.textContent = (job.state === "ok" ? "✔ verified: " : "✖ " + job.state + ": ") + job.message;
    out.appendChild(span);
    box.dataset.state = job.state;
    return true;
  }
  function poll() {
    fetch("/integrity/verify/" + encodeURIComponent(box.dataset.job), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (job) { if (!show(job)) setTimeout(poll, 300); })
      .catch(function () { out.textContent = "✖ lost contact with the server"; });
  }
  poll();
})();
