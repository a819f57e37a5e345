/*
 * « Règles » screen, no dependency: the box #essai holds a try-out or an activation that
 * runs in the background; unless data-termine is set, it polls its data-url (JSON: status
 * and the HTML fragment of the run) every second and shows the fragment, while the run
 * waits for a runner or runs.
 */
(function () {
  "use strict";
  var box = document.getElementById("essai");
  if (!box || box.hasAttribute("data-termine")) { return; }
  function poll() {
    fetch(box.getAttribute("data-url"), {credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (data) {
        box.innerHTML = data.html;
        if (window.backofficePages) { window.backofficePages.largeurs(box); }
        if (data.status === "en_attente" || data.status === "en_cours") {
          setTimeout(poll, 1000);
        }
      }).catch(function () { setTimeout(poll, 3000); });
  }
  poll();
})();
