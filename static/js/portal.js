/* The lender portal's small behaviours. No inline scripts anywhere (the CSP forbids them).
 *
 * Timers: every <time data-timer datetime="..."> shows how long ago the lead was delivered and ticks each
 * second; a row whose <time> carries data-urgent-after="300" (still waiting for first contact) turns
 * urgent once that many seconds have passed. Without JavaScript the server-rendered age stays.
 */
(function () {
  "use strict";

  function format(seconds) {
    if (seconds < 60) return seconds + "s";
    if (seconds < 3600) {
      var s = seconds % 60;
      return Math.floor(seconds / 60) + "m " + (s < 10 ? "0" : "") + s + "s";
    }
    if (seconds < 86400) return Math.floor(seconds / 3600) + "h " + Math.floor((seconds % 3600) / 60) + "m";
    return Math.floor(seconds / 86400) + "d";
  }

  function tick() {
    var now = Date.now();
    var timers = document.querySelectorAll("time[data-timer]");
    for (var i = 0; i < timers.length; i++) {
      var el = timers[i];
      var since = Date.parse(el.getAttribute("datetime"));
      if (isNaN(since)) continue;
      var seconds = Math.max(0, Math.floor((now - since) / 1000));
      var text = format(seconds);
      if (el.textContent !== text) el.textContent = text;
      var limit = el.getAttribute("data-urgent-after");
      var row = el.closest("tr");
      if (limit !== null && row) {
        var urgent = seconds >= parseInt(limit, 10);
        if (urgent !== row.classList.contains("is-urgent")) {
          row.classList.toggle("is-urgent", urgent);
          var cell = el.parentNode;
          var flag = cell.querySelector(".urgent-flag");
          if (urgent && !flag) {
            flag = document.createElement("span");
            flag.className = "urgent-flag";
            flag.textContent = "Call now";
            cell.appendChild(document.createTextNode(" "));
            cell.appendChild(flag);
          }
        }
      }
    }
  }

  /* A "Lost" move asks for its reason and "Funded" for its amount before the form is sent, so the page
   * does not round-trip just to say so (the server checks again). It says in words what is missing (the
   * field's data-missing text), beside the field, read out by screen readers, and clears it once typed. */
  function requireFields(event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("move")) return;
    var input = form.querySelector("input[name=lost_reason], input[name=funded_amount]");
    if (input && !input.value.trim()) {
      event.preventDefault();
      input.setAttribute("aria-invalid", "true");
      var id = input.id + "-missing";
      var note = document.getElementById(id);
      if (!note) {
        note = document.createElement("p");
        note.id = id;
        note.className = "field-error";
        note.setAttribute("role", "alert");
        input.insertAdjacentElement("afterend", note);
        input.setAttribute("aria-describedby", id);
      }
      note.textContent = input.getAttribute("data-missing") || "This field is required.";
      input.focus();
    }
  }

  function clearMissing(event) {
    var input = event.target;
    if (!input.getAttribute || input.getAttribute("aria-invalid") !== "true" || !input.value.trim()) return;
    var note = document.getElementById(input.id + "-missing");
    if (!note) return;
    note.remove();
    input.removeAttribute("aria-invalid");
    input.removeAttribute("aria-describedby");
  }

  function start() {
    tick();
    window.setInterval(tick, 1000);
    document.addEventListener("submit", requireFields, true);
    document.addEventListener("input", clearMissing, true);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
