/*
 * Behaviours of every page (front and admin), in a static file because the
 * Content-Security-Policy refuses inline scripts, style="…" and on…="…" attributes:
 *
 * - an element with data-largeur="42" (a Bootstrap progress bar) gets width: 42 %;
 *   backofficePages.largeurs(element) applies them again inside HTML inserted later;
 * - a form with data-confirmer="question" asks for a confirmation before posting;
 * - a button data-bo-menu="id" (« Menu » of the header under 992 px) shows or hides the
 *   element of that id and says so in aria-expanded (no Bootstrap JavaScript needed);
 * - a region that scrolls sideways (a table on a phone) with nothing focusable inside gets
 *   tabindex="0", so that it can be scrolled from the keyboard too.
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

  function defilements(root) {
    Array.prototype.forEach.call(root.querySelectorAll(".bo-contenu table, .bo-defilement, .table-responsive"), function (element) {
      var scrolls = element.scrollWidth > element.clientWidth + 1 &&
        window.getComputedStyle(element).overflowX !== "visible";
      if (scrolls && !element.hasAttribute("tabindex") &&
          !element.querySelector("a[href], button, input, select, textarea, [tabindex]")) {
        element.setAttribute("tabindex", "0");
      }
    });
  }

  window.backofficePages = {largeurs: largeurs, defilements: defilements};

  function init() {
    largeurs(document);
    defilements(document);
    window.addEventListener("resize", function () { defilements(document); });
    document.addEventListener("click", function (event) {
      var button = event.target.closest ? event.target.closest("[data-bo-menu]") : null;
      if (!button) {
        return;
      }
      var menu = document.getElementById(button.getAttribute("data-bo-menu"));
      if (menu) {
        var open = !menu.classList.contains("show");
        menu.classList.toggle("show", open);
        button.setAttribute("aria-expanded", open ? "true" : "false");
      }
    });
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
