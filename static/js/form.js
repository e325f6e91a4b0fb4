// Progressive enhancement for the lead form. Without JavaScript every purpose's section shows, each headed
// for whom it is; with it, only the sections for the chosen purpose show, and hidden inputs are disabled so
// a stray value in another purpose's box is not even sent.
(function () {
  "use strict";
  var form = document.getElementById("lead-form");
  if (!form) return;

  function purpose() {
    var checked = form.querySelector('input[name="purpose"]:checked');
    return checked ? checked.value : "";
  }

  function update() {
    var p = purpose();
    form.querySelectorAll("[data-for]").forEach(function (el) {
      // Before a purpose is chosen nothing purpose-specific shows: the next step is to choose one.
      var show = p !== "" && el.getAttribute("data-for").split(" ").indexOf(p) !== -1;
      el.hidden = !show;
      el.querySelectorAll("input, select, textarea").forEach(function (input) {
        input.disabled = !show;
      });
    });
  }

  form.addEventListener("change", function (event) {
    if (event.target && event.target.name === "purpose") update();
  });
  update();

  // After a failed submit, take keyboard and screen-reader users straight to the list of problems.
  var summary = document.getElementById("error-summary");
  if (summary) summary.focus();
})();
