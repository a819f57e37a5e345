/*
 * Behaviours of every page (front and admin), in a static file because the
 * Content-Security-Policy refuses inline scripts, style="…" and on…="…" attributes:
 *
 * - an element with data-largeur="42" (a Bootstrap progress bar) gets width: 42 %;
 *   backofficePages.largeurs(element) applies them again inside HTML inserted later;
 * - a form with data-confirmer="question" asks for a confirmation before posting.
 *
 * No dependency, no build step.
 */
(function () {
  "use strict";
  if (window.backofficePages) {
    return;
  }

  function largeurs(root) {
    Array.prototype.forEach.call(root.querySelectorAll("[data-largeur]"), function (element) {
      var value = parseFloat(element.getAttribute("data-largeur"));
      if (!isNaN(value)) {
        element.style.width = Math.max(0, Math.min(100, value)) + "%";
      }
    });
  }

  window.backofficePages = {largeurs: largeurs};

  function init() {
    largeurs(document);
    document.addEventListener("submit", function (event) {
      var form = event.target;
      var question = form.getAttribute && form.getAttribute("data-confirmer");
      if (question && !window.confirm(question)) {
        event.preventDefault();
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
