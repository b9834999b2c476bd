// imagebadger: small progressive enhancements. Every page works without this
// script; it only adds copy buttons, feedback on the refresh button, the
// contents page's live progress and its layer selector's instant choice.
(function () {
  "use strict";

  function copyText(el) {
    var text = el.value !== undefined ? el.value : el.textContent;
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).then(function () { return true; }, function () { return fallback(el); });
    }
    return Promise.resolve(fallback(el));
  }

  // fallback selects the text and asks the browser to copy the selection.
  function fallback(el) {
    el.focus();
    if (el.select) { el.select(); }
    try { return document.execCommand("copy"); } catch (e) { return false; }
  }

  document.querySelectorAll("button[data-copy]").forEach(function (btn) {
    var target = document.getElementById(btn.getAttribute("data-copy"));
    if (!target) { return; }
    btn.hidden = false;
    btn.addEventListener("click", function () {
      copyText(target).then(function (ok) {
        btn.textContent = ok ? "Copied" : "Press Ctrl+C";
        btn.classList.toggle("copied", ok);
        btn.setAttribute("aria-live", "polite");
        clearTimeout(btn._reset);
        btn._reset = setTimeout(function () {
          btn.textContent = "Copy";
          btn.classList.remove("copied");
        }, 2000);
      });
    });
  });

  // A click in a read-only value selects all of it, ready for Ctrl+C.
  document.querySelectorAll("input.copy-value").forEach(function (el) {
    el.addEventListener("focus", function () { el.select(); });
  });

  document.querySelectorAll("form.refresh-form").forEach(function (form) {
    form.addEventListener("submit", function () {
      var btn = form.querySelector("button");
      if (btn) {
        btn.disabled = true;
        btn.lastChild.textContent = " Checking…";
      }
    });
  });

  // The contents page while an analysis runs: poll the API each second,
  // move the progress bar, and show the result once it is done.
  document.querySelectorAll("[data-contents-poll]").forEach(function (box) {
    var url = box.getAttribute("data-contents-poll");
    var bar = box.querySelector("progress");
    var text = box.querySelector("[data-testid=contents-progress-text]");
    var polls = 0;
    function poll() {
      if (++polls > 3600) { return; }
      fetch(url, { headers: { Accept: "application/json" } }).then(function (resp) {
        if (resp.status !== 202) { window.location.reload(); return null; }
        return resp.json();
      }).then(function (p) {
        if (!p) { return; }
        bar.max = Math.max(p.bytesTotal, 1);
        bar.value = p.bytesRead;
        text.textContent = "layer " + Math.min(p.layersDone + 1, p.layersTotal) + " of " + p.layersTotal + ", " +
          p.bytesRead + " of " + p.bytesTotal + " bytes read";
        setTimeout(poll, 1000);
      }, function () { setTimeout(poll, 2000); });
    }
    setTimeout(poll, 1000);
  });

  // The layer selector shows its choice at once.
  document.querySelectorAll("[data-autosubmit]").forEach(function (el) {
    el.addEventListener("change", function () { el.form.submit(); });
  });
})();
