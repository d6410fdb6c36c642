// The error summary of a failed submit takes the focus (for browsers that ignore autofocus
// on it), and each of its links moves the focus to its field, not only the scroll position.
(function () {
  "use strict";
  var summary = document.getElementById("errors");
  if (!summary) return;
  if (document.activeElement !== summary) summary.focus();
  summary.addEventListener("click", function (event) {
    var link = event.target.closest("a[href^='#']");
    var field = link && document.getElementById(link.getAttribute("href").slice(1));
    if (!field) return;
    event.preventDefault();
    var box = field.closest(".question") || field;
    box.scrollIntoView({ block: "start" });
    field.focus({ preventScroll: true });
  });
})();

// Saves the score tapped in the email as a partial answer, but only once the page has
// been visible for a few seconds: mail scanners open links, people look at them.
(function () {
  "use strict";
  var form = document.getElementById("survey");
  if (!form || !form.dataset.partialUrl) return;
  var field = form.dataset.partialField;
  var needed = Number(form.dataset.partialSeconds || 4) * 1000;
  var seen = 0, last = null, done = false, timer = null;

  function chosen() {
    var input = form.querySelector('input[name="' + field + '"]:checked');
    return input ? input.value : null;
  }
  function save() {
    if (done || chosen() === null) return;
    done = true;
    var body = new URLSearchParams();
    body.set("csrf_token", form.querySelector('input[name="csrf_token"]').value);
    body.set(field, chosen());
    fetch(form.dataset.partialUrl, { method: "POST", body: body, credentials: "same-origin" })
      .catch(function () { done = false; });
  }
  function tick() {
    if (document.visibilityState === "visible") {
      var now = Date.now();
      if (last !== null) seen += now - last;
      last = now;
      if (seen >= needed) { clearInterval(timer); save(); }
    } else {
      last = null;
    }
  }
  form.addEventListener("submit", function () { done = true; clearInterval(timer); });
  timer = setInterval(tick, 250);
  tick();
})();
