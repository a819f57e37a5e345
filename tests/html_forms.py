"""Read a rendered HTML form back as a browser would submit it (standard library only).

``form_data(html)`` returns (as a ``MultiDict``) the name/value pairs of the first ``<form>`` whose opening
tag contains ``marker`` (e.g. ``'admin-form'``): text-like inputs with their value,
checked checkboxes and radios, the selected options of each select (the first option when
none is selected), textareas. Disabled controls, buttons and submits are left out, as are
controls inside Flask-Admin's hidden inline template (``inline-field-template``), which its
JavaScript clones instead of submitting.
"""
from __future__ import annotations

from html.parser import HTMLParser

from werkzeug.datastructures import MultiDict

_SKIPPED_INPUTS = {"submit", "button", "image", "reset", "file"}


class _FormParser(HTMLParser):
    def __init__(self, marker: str):
        super().__init__(convert_charrefs=True)
        self.marker = marker
        self.in_form = False
        self.done = False
        self.template_depth = 0  # > 0 inside an inline-field template
        self.div_depth = 0
        self.pairs: list[tuple[str, str]] = []
        self._select: dict | None = None
        self._option: dict | None = None
        self._textarea: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if self.done:
            return
        if tag == "form" and not self.in_form:
            opening = " ".join(f"{k}={v}" for k, v in attrs.items())
            self.in_form = self.marker in opening
            return
        if not self.in_form:
            return
        if tag == "div":
            if self.template_depth:
                self.template_depth += 1
            elif "inline-field-template" in (attrs.get("class") or ""):
                self.template_depth = 1
        if self.template_depth or "disabled" in attrs:
            return
        name = attrs.get("name")
        if tag == "input" and name:
            kind = (attrs.get("type") or "text").lower()
            if kind in _SKIPPED_INPUTS:
                return
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    self.pairs.append((name, attrs.get("value") or "on"))
                return
            self.pairs.append((name, attrs.get("value") or ""))
        elif tag == "select" and name:
            self._select = {"name": name, "multiple": "multiple" in attrs, "first": None,
                            "selected": []}
        elif tag == "option" and self._select is not None:
            self._option = {"value": attrs.get("value"), "text": "",
                            "selected": "selected" in attrs}
        elif tag == "textarea" and name:
            self._textarea = {"name": name, "text": ""}

    def handle_data(self, data):
        if self._option is not None:
            self._option["text"] += data
        if self._textarea is not None:
            self._textarea["text"] += data

    def handle_endtag(self, tag):
        if not self.in_form or self.done:
            return
        if tag == "div" and self.template_depth:
            self.template_depth -= 1
        elif tag == "option" and self._option is not None:
            self._close_option()
        elif tag == "select" and self._select is not None:
            self._close_option()
            select = self._select
            values = select["selected"] or ([] if select["multiple"] or select["first"] is None
                                            else [select["first"]])
            self.pairs.extend((select["name"], value) for value in values)
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            text = self._textarea["text"]
            # Browsers drop the one line break that follows <textarea>.
            for newline in ("\r\n", "\n"):
                if text.startswith(newline):
                    text = text[len(newline):]
                    break
            self.pairs.append((self._textarea["name"], text))
            self._textarea = None
        elif tag == "form":
            self.done = True

    def _close_option(self):
        option, self._option = self._option, None
        if option is None or self._select is None:
            return
        value = option["value"] if option["value"] is not None else option["text"].strip()
        if self._select["first"] is None:
            self._select["first"] = value
        if option["selected"]:
            self._select["selected"].append(value)


def form_data(html: str, marker: str = "") -> MultiDict:
    parser = _FormParser(marker)
    parser.feed(html)
    assert parser.in_form, f"no <form> containing {marker!r} in the page"
    return MultiDict(parser.pairs)
