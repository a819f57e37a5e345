/*
 * « Mon catalogue » widgets, no dependency:
 * - search inputs: a text input with data-source="certifications|communes|
 *   organismes_formateurs_meme_siren" holds an id; typing a code, a postal code or a name
 *   asks /catalogue/api/… and lists the matches below the field; a click puts the id in
 *   the input and its label in the <small data-source-libelle="id"> beside it.
 * - session page: the dates of a started session are read-only (the server refuses
 *   a change anyway).
 * - import: shows "Envoi du fichier…" while the file is sent; on the progress page of a
 *   large import (#import-progression), polls its data-etat-url every 2 s, moves the
 *   Bootstrap progress bar and reloads the page (which shows the report) once done.
 * (Forms with data-confirmer and the bar's initial data-largeur: static/pages.js.)
 */
(function () {
  "use strict";
  var ENDPOINTS = {
    certifications: "/catalogue/api/certifications",
    communes: "/catalogue/api/communes",
    organismes_formateurs_meme_siren: "/catalogue/api/organismes-formateurs"
  };

  function setup(input) {
    var url = ENDPOINTS[input.getAttribute("data-source")];
    if (!url) { return; }
    var search = document.createElement("input");
    search.type = "search";
    search.className = "form-control form-control-sm mt-1";
    search.placeholder = "Rechercher…";
    search.setAttribute("aria-label", "Rechercher : " + (input.labels && input.labels[0] ? input.labels[0].textContent : ""));
    var list = document.createElement("div");
    list.className = "list-group";
    input.parentNode.insertBefore(search, input.nextSibling);
    search.parentNode.insertBefore(list, search.nextSibling);
    var timer = null;
    search.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        fetch(url + "?q=" + encodeURIComponent(search.value), {credentials: "same-origin"})
          .then(function (r) { return r.json(); })
          .then(function (data) {
            list.innerHTML = "";
            data.resultats.forEach(function (item) {
              var button = document.createElement("button");
              button.type = "button";
              button.className = "list-group-item list-group-item-action py-1";
              button.textContent = item.libelle;
              button.addEventListener("click", function () {
                input.value = item.id;
                var label = document.querySelector('[data-source-libelle="' + input.id + '"]');
                if (label) { label.textContent = "Sélection : " + item.libelle; }
                list.innerHTML = "";
                search.value = "";
              });
              list.appendChild(button);
            });
          });
      }, 250);
    });
  }

  function poll(box) {
    var url = box.getAttribute("data-etat-url");
    var bar = document.getElementById("import-barre");
    var done = document.getElementById("import-traites");
    function tick() {
      fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) { return r.json(); })
        .then(function (data) {
          if (data.termine) { window.location.reload(); return; }
          if (!data.tout_ou_rien) {
            bar.style.width = data.pourcentage + "%";
            bar.setAttribute("aria-valuenow", data.pourcentage);
            bar.textContent = data.pourcentage + " %";
            if (done) { done.textContent = data.traites; }
          }
          setTimeout(tick, 2000);
        })
        .catch(function () { setTimeout(tick, 5000); });
    }
    setTimeout(tick, 1000);
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("input[data-source]"), setup);
    var locked = document.querySelector("[data-dates-verrouillees]");
    if (locked) {
      locked.getAttribute("data-dates-verrouillees").split(" ").forEach(function (id) {
        var input = document.getElementById(id);
        if (input) { input.readOnly = true; }
      });
    }
    var form = document.getElementById("form-import");
    if (form) {
      form.addEventListener("submit", function () {
        document.getElementById("import-en-cours").classList.remove("d-none");
        document.getElementById("bouton-import").disabled = true;
      });
    }
    var progress = document.getElementById("import-progression");
    if (progress) { poll(progress); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
