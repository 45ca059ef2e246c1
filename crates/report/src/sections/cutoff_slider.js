// The churn cutoff slider: shows the cutoff table's figures at the cutoff it points to.
// The rows come from the JSON block beside it; nothing is fetched, so the page works from file://.
(function () {
  "use strict";
  var box = document.getElementById("churn-slider");
  var input = document.getElementById("churn-cutoff");
  var rows = JSON.parse(document.getElementById("churn-cutoff-rows").textContent);

  // Same format as the page's tables (one decimal, a dash for a missing rate).
  function pct(v) {
    return typeof v === "number" && isFinite(v) ? (v * 100).toFixed(1) + "%" : "\u2013";
  }

  function set(name, value) {
    box.querySelectorAll('[data-figure="' + name + '"]').forEach(function (el) {
      el.textContent = value;
    });
  }

  function show(i) {
    var r = rows[i];
    var cutoff = r.cutoff.toFixed(2);
    set("cutoff", cutoff);
    set("precision", pct(r.precision));
    set("recall", pct(r.recall));
    set("false_positive_rate", pct(r.false_positive_rate));
    set("accuracy", pct(r.accuracy));
    set("flagged", String(r.tp + r.fp));
    input.setAttribute("aria-valuetext", cutoff);
    // Outline the table row the slider points to, so the two read together.
    document.querySelectorAll("tr[data-cutoff-row]").forEach(function (tr) {
      tr.classList.toggle("slid", tr.getAttribute("data-cutoff-row") === String(i));
    });
  }

  input.addEventListener("input", function () {
    show(Number(input.value));
  });
  // The page already shows the starting row's figures; this outlines its table row too, once the
  // table (further down the page than this script) is parsed.
  document.addEventListener("DOMContentLoaded", function () {
    show(Number(input.value));
  });
})();
