/*
 * Forms defined in forms/*.yaml (templates/forms/macros.html), two small behaviours:
 *
 * - conditional display: a field wrapper carrying data-visible-si-champ="other" and
 *   data-visible-si-valeurs="oui|…" is shown only while the field "other" has one of those
 *   values (and is itself shown). The server applies the same rule: a hidden field is not
 *   required and its value is dropped.
 * - character counter: <small data-compteur-pour="id" data-max="300"> shows "n / 300" for
 *   the input of that id, in red beyond the limit.
 *
 * No dependency, no build step.
 */
(function () {
  "use strict";
  if (window.backofficeForms) {
    return;
  }
  window.backofficeForms = true;

  function each(list, callback) {
    Array.prototype.forEach.call(list, callback);
  }

  function valuesOf(form, name) {
    var values = [];
    each(form.querySelectorAll("[name]"), function (element) {
      if (element.name !== name) {
        return;
      }
      if (element.type === "radio" || element.type === "checkbox") {
        if (element.checked) {
          values.push(element.value);
        }
      } else if (element.tagName === "SELECT") {
        each(element.options, function (option) {
          if (option.selected) {
            values.push(option.value);
          }
        });
      } else {
        values.push(element.value);
      }
    });
    return values.length ? values : [""];
  }

  function wrapperOf(form, name) {
    var found = null;
    each(form.querySelectorAll("[data-champ]"), function (element) {
      if (element.getAttribute("data-champ") === name) {
        found = element;
      }
    });
    return found;
  }

  function isVisible(form, wrapper, depth) {
    var name = wrapper.getAttribute("data-visible-si-champ");
    if (!name || depth > 20) {
      return true;
    }
    var controller = wrapperOf(form, name);
    if (controller && !isVisible(form, controller, depth + 1)) {
      return false;
    }
    var expected = wrapper.getAttribute("data-visible-si-valeurs").split("|");
    return valuesOf(form, name).some(function (value) {
      return expected.indexOf(value) !== -1;
    });
  }

  function refreshConditions(form) {
    each(form.querySelectorAll("[data-visible-si-champ]"), function (wrapper) {
      wrapper.classList.toggle("d-none", !isVisible(form, wrapper, 0));
    });
  }

  function refreshCounter(counter) {
    var input = document.getElementById(counter.getAttribute("data-compteur-pour"));
    if (!input) {
      return;
    }
    var max = parseInt(counter.getAttribute("data-max"), 10);
    var length = input.value.length;
    counter.textContent = length + " / " + max;
    counter.classList.toggle("text-danger", length > max);
    counter.classList.toggle("text-muted", length <= max);
  }

  function init() {
    each(document.querySelectorAll("form[data-formulaire]"), function (form) {
      var counters = form.querySelectorAll("[data-compteur-pour]");
      function refresh() {
        refreshConditions(form);
        each(counters, refreshCounter);
      }
      form.addEventListener("change", refresh);
      form.addEventListener("input", refresh);
      refresh();
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
