/*
 * Flask-Admin glue under the Content-Security-Policy (loaded by
 * templates/admin/backoffice_base.html after Flask-Admin's own scripts). Flask-Admin's
 * templates call their scripts from onclick="…" attributes, which the policy refuses; our
 * copies of those templates carry data attributes instead, handled here:
 *
 * - data-action="name" (the « Avec la sélection » menu): runs the bulk action;
 * - data-inline-ajout="field id" (« Ajouter » under an inline list): adds a sub-form;
 * - the « Ajouter un filtre » items are links to "#": the click adds the filter only;
 * - data-rafraichir="seconds" (« Tâches planifiées » while a run waits or runs): the page
 *   reloads itself after that many seconds.
 *
 * (The rules editor's try-outs and activations are polled by static/rules.js.)
 */
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var target = event.target.closest ? event.target.closest("a") : null;
    if (!target) {
      return;
    }
    if (target.hasAttribute("data-action") && window.modelActions) {
      event.preventDefault();
      window.modelActions.execute(target.getAttribute("data-action"));
    } else if (target.hasAttribute("data-inline-ajout") && window.faForm) {
      event.preventDefault();
      window.faForm.addInlineField(target, target.getAttribute("data-inline-ajout"));
    } else if (target.classList.contains("filter") && target.getAttribute("href") === "#") {
      event.preventDefault();
    }
  });

  var refresh = document.querySelector("[data-rafraichir]");
  if (refresh) {
    setTimeout(function () { window.location.reload(); },
               1000 * parseFloat(refresh.getAttribute("data-rafraichir")));
  }
})();
