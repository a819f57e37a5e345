"""The rules engine: business rules are data (``rules/*.yaml``), durable-rules decides.

One file per rule set (``publication``, ``cursus_eligibility``, ``candidature_limits``,
``duplicates``, ``deadlines``). A file is a small French envelope around durable-rules'
own JSON ruleset structure (see ``rules/README.md``)::

    jeu: publication
    titre: Publication d'une formation
    parametres: {longueur_max_intitule: 300}
    regles:
      intitule_trop_long:
        message: "L'intitulé compte {longueur_intitule} caractères, {longueur_max_intitule}
                  au plus."
        champ: intitule
        gravite: bloquant                       # or avertissement
        all:                                    # durable-rules, unchanged
          - f:
              $and:
                - type: formation
                - $gt: {longueur_intitule: {$param: longueur_max_intitule}}
    exemples:
      - {nom: "312 caractères", faits: [{type: formation, longueur_intitule: 312}],
         attendu: [intitule_trop_long]}

What this module guarantees, each point answering a verified trap of durable-rules 2.0.28
(``DURABLE_RULES.md`` of the team folder):

* **Validation before the C engine sees anything** (``parse``): known operators only (an
  unknown one would be the cryptic "error code 202", and ``$nmt`` would even register
  and never match), known fields per fact type (``facts.SCHEMAS``), parameters that exist,
  no list or ``null`` values, typed comparisons, no ``$not``/``count``/``cap``/nested
  algebra, no rule on the state (``$s``, ``sid``, ``id``), and no *ordering comparison
  between two facts* (segfault #381): copy the value into one fact instead. Errors are
  French and name the file, the line, the rule and the path inside the file.
* **Rewrites at load time** (``_compile``): ``{$param: x}`` placeholders get the number
  written once in ``parametres``; arithmetic on two constants is folded (the engine
  silently gets it wrong); a same-fact reference ``{$m: champ}`` gets an ``$ex`` guard
  (the engine treats a comparison with a *missing* referenced field as true); every
  pattern gets ``{$nex: {$s: 1}}`` (the state re-assertion loop); a sentinel rule is added.
* **One host per process, no threads** (``_Host``): ``Host._run`` is overridden (no
  dispatcher timers: they run actions on other threads and crash), one lock around every
  call into the engine, actions run synchronously in the caller's thread.
* **One fresh session id per evaluation**, the sentinel fact asserted first (so an action
  always ran and ``delete_state`` cannot segfault), facts asserted *one by one* (a batch
  runs no action at all if one fact matches nothing), the session deleted afterwards (the
  1,024 live sessions cap, flat memory).
* **A watchdog**: every firing counts against a budget and a deadline; when exceeded,
  the action does not complete, which stops durable-rules' dispatch loop, and
  ``RulesWatchdogError`` is raised — a looping rule cannot hang a request.
* **Every violation, once, in a stable order**: ``$or`` may fire a rule twice for one
  fact, and ``any`` fires for each fact then for their combination; results are
  deduplicated by (rule, facts) — one per matching fact for ``any`` — and sorted by the
  rule's position in the file, then by fact.
* **Hot reload without restart**: the active version lives in ``RuleSetVersion``; each
  evaluation checks it (cached ``RULES_VERSION_CHECK_SECONDS``, 5 s by default, 0 in
  tests) on a separate connection, and a changed version is registered under a new name
  (``publication__v7__1a2b3c4d``: a name can be registered only once per host). A stored
  version that no longer validates is logged and the last good version is kept.

The files of ``rules/`` are version 1 of each rule set while the database holds none;
``init_app`` loads and validates all of them at start-up (a bad file fails start-up).
"""
from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import hashlib
import itertools
import json
import logging
import math
import re
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from backoffice import clock

log = logging.getLogger(__name__)

DEFAULT_DIRECTORY = Path(__file__).resolve().parent.parent / "rules"
RULESETS = ("publication", "cursus_eligibility", "candidature_limits", "duplicates",
            "deadlines")
RULESET_TITLES = {
    "publication": "Publication d'une formation",
    "cursus_eligibility": "Année de cursus en apprentissage",
    "candidature_limits": "Limites des candidatures",
    "duplicates": "Doublons",
    "deadlines": "Délais et échéances",
}
SEVERITIES = {"bloquant": "Bloquant", "avertissement": "Avertissement"}
DURATION_UNITS = {"jours": "jours", "jours_ouvres": "jours ouvrés", "ans": "ans"}

SENTINEL = "__sentinelle"
STATE_GUARD = {"$nex": {"$s": 1}}
COMPARISONS = ("$lt", "$lte", "$gt", "$gte", "$eq", "$neq")
ORDERINGS = ("$lt", "$lte", "$gt", "$gte")
LOGICAL = ("$and", "$or")
PRESENCE = ("$ex", "$nex")
REGEX = ("$mt", "$imt")
ARRAYS = ("$iany", "$iall")
ARITHMETIC = ("$add", "$sub", "$mul", "$div")
OPERATORS = LOGICAL + COMPARISONS + PRESENCE + REGEX + ARRAYS
RESERVED_FIELDS = ("sid", "id", "$s")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
FIELD_REF_RE = re.compile(r"^[a-z_][a-z0-9_.\[\]]*$")
PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
LOOSE_TIME_RE = re.compile(r"^\d{1,2}[:hH]\d{2}$")
TIME_RE = re.compile(r"^\d{2}:\d{2}$")
NUMERIC_KINDS = ("nombre", "jour")
TEXT_KINDS = ("texte", "date")
WEEKDAYS = {1: "lundi", 2: "mardi", 3: "mercredi", 4: "jeudi", 5: "vendredi", 6: "samedi",
            7: "dimanche"}


# -- errors -----------------------------------------------------------------------------------
class RulesError(Exception):
    """A rules problem with a French ``message`` meant for a person."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclasses.dataclass(frozen=True)
class Problem:
    source: str
    message: str
    rule: str | None = None
    path: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = [self.source]
        if self.line:
            where.append(f"ligne {self.line}")
        if self.rule:
            where.append(f"règle « {self.rule} »")
        if self.path:
            where.append(f"chemin {self.path}")
        return f"{', '.join(where)} : {self.message}"


class RuleFileError(RulesError):
    """A rule file that does not validate: every problem found, each located."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class RulesWatchdogError(RulesError):
    """An evaluation exceeded its firing budget or its deadline (a looping rule)."""


# -- what a rule file becomes ----------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Rule:
    id: str
    message: str
    field: str
    severity: str
    description: str
    position: int
    aliases: tuple[str, ...]
    types: tuple[str, ...]
    parameters: tuple[str, ...]  # parameters the rule uses (conditions and message)
    pri: int | None = None
    operator: str = "all"  # all: every pattern matches together; any: one of them

    @property
    def severity_label(self) -> str:
        return SEVERITIES[self.severity]


@dataclasses.dataclass(frozen=True)
class Example:
    name: str
    facts: tuple[dict, ...]
    expected: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Duration:
    """A duration of the ``deadlines`` rule set, for scheduled jobs."""

    name: str
    amount: int
    unit: str  # jours, jours_ouvres, ans

    @property
    def timedelta(self) -> dt.timedelta:
        if self.unit != "jours":
            raise RulesError(f"Le délai « {self.name} » est en {DURATION_UNITS[self.unit]}, "
                             "pas en jours.")
        return dt.timedelta(days=self.amount)

    def before(self, instant: dt.datetime) -> dt.datetime:
        """``instant`` minus the duration (working days and years on Paris dates)."""
        return self._shift(instant, -1)

    def after(self, instant: dt.datetime) -> dt.datetime:
        return self._shift(instant, 1)

    def _shift(self, instant: dt.datetime, sign: int) -> dt.datetime:
        if self.unit == "jours":
            return instant + sign * dt.timedelta(days=self.amount)
        local = clock.to_local(instant)
        if self.unit == "ans":
            year = local.year + sign * self.amount
            day = min(local.day, 28) if (local.month, local.day) == (2, 29) else local.day
            return local.replace(year=year, day=day).astimezone(clock.UTC)
        moved, left = local, self.amount
        while left:
            moved += dt.timedelta(days=sign)
            if moved.isoweekday() <= 5:
                left -= 1
        return moved.astimezone(clock.UTC)

    def __str__(self) -> str:
        return f"{self.amount} {DURATION_UNITS[self.unit]}"


@dataclasses.dataclass(eq=False)
class RuleSet:
    name: str
    title: str
    description: str
    parameters: dict[str, Any]
    rules: dict[str, Rule]
    examples: tuple[Example, ...]
    deadlines: dict[str, tuple[str, str]]  # name → (parameter, unit)
    content: str
    source: str
    digest: str
    definition: dict  # durable-rules ruleset, ready to register (deep-copied on use)
    version: int = 1
    version_id: int | None = None  # RuleSetVersion.id; None for the file

    @property
    def registered_name(self) -> str:
        return f"{self.name}__v{self.version}__{self.digest[:8]}"

    @property
    def version_label(self) -> str:
        return f"version {self.version}" + (" (fichier)" if self.version_id is None else "")


@dataclasses.dataclass(frozen=True)
class Violation:
    """One failed rule for one combination of facts (``fact_index`` is the first one)."""

    ruleset: str
    rule_id: str
    message: str
    field: str
    severity: str
    fact_index: int | None
    fact_indexes: tuple[int | None, ...] = ()

    @property
    def blocking(self) -> bool:
        return self.severity == "bloquant"

    @property
    def severity_label(self) -> str:
        return SEVERITIES[self.severity]


@dataclasses.dataclass(frozen=True)
class ExampleResult:
    example: Example
    got: tuple[str, ...]
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and sorted(self.got) == sorted(self.example.expected)

    def __str__(self) -> str:
        if self.error:
            return f"exemple « {self.example.name} » : {self.error}"
        expected = ", ".join(sorted(self.example.expected)) or "aucune règle"
        got = ", ".join(sorted(self.got)) or "aucune règle"
        return f"exemple « {self.example.name} » : attendu {expected}, obtenu {got}"


# -- parsing and validation ---------------------------------------------------------------------
def parse(text: str, *, source: str, expected_name: str | None = None,
          version: int = 1, version_id: int | None = None) -> RuleSet:
    """Read and validate a rule file; ``RuleFileError`` lists every problem found."""
    data, nodes = _load_text(text, source, json_syntax=source.endswith(".json"))
    checker = _Checker(source, nodes)
    ruleset = checker.check(data, expected_name)
    if checker.problems:
        raise RuleFileError(checker.problems)
    ruleset.content = text
    ruleset.digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    ruleset.version, ruleset.version_id = version, version_id
    return ruleset


def load_file(path: Path) -> RuleSet:
    source = f"{path.parent.name}/{path.name}"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleFileError([Problem(source, f"fichier illisible ({exc})")]) from None
    return parse(text, source=source, expected_name=path.stem)


def load_directory(directory: Path) -> dict[str, RuleSet]:
    """Every rule file of ``directory``; all problems of all files in one error."""
    problems: list[Problem] = []
    rulesets: dict[str, RuleSet] = {}
    paths = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
    for path in paths:
        try:
            ruleset = load_file(path)
        except RuleFileError as exc:
            problems.extend(exc.problems)
            continue
        if ruleset.name in rulesets:
            problems.append(Problem(f"{directory.name}/{path.name}",
                                    f"le jeu « {ruleset.name} » est défini deux fois"))
        rulesets[ruleset.name] = ruleset
    for name in RULESETS:
        if name not in rulesets and not any(p.source.split("/")[-1].split(".")[0] == name
                                            for p in problems):
            problems.append(Problem(f"{directory.name}/", f"fichier manquant pour le jeu "
                                                          f"« {name} » ({name}.yaml)"))
    if problems:
        raise RuleFileError(problems)
    return rulesets


# Limits on an untrusted rule text, checked before any parser builds it: a rule file is a
# few tens of kilobytes, a few levels deep, and needs no YAML alias (an alias bomb — a few
# lines that expand to a billion nodes — is the classic attack on a YAML parser).
MAX_TEXT_BYTES = 200_000
MAX_DEPTH = 40
MAX_ALIASES = 0
MAX_COMMENT_LENGTH = 2_000


class _Loader(yaml.SafeLoader):
    """YAML's safe loader, with a located French error for an impossible date."""

    def construct_yaml_timestamp(self, node):
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError):
            raise yaml.constructor.ConstructorError(
                None, None, f"date impossible « {node.value} »", node.start_mark) from None


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def _check_text(text: str, source: str, json_syntax: bool) -> None:
    """Refuse, before parsing: a text too large, control characters, nesting too deep,
    aliases. Errors name the line."""
    from backoffice.input_guard import CONTROL_CHARACTERS

    if len(text.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
        raise RuleFileError([Problem(source, f"le fichier dépasse {MAX_TEXT_BYTES // 1000} ko : "
                                             "il n'a pas été lu")])
    control = CONTROL_CHARACTERS.search(text)
    if control is not None:
        raise RuleFileError([Problem(
            source, f"caractère de contrôle invisible (U+{ord(control.group()):04X}) : "
                    "retirez-le", line=text.count("\n", 0, control.start()) + 1)])
    depth = aliases = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):  # events: no recursion
            line = event.start_mark.line + 1
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                aliases += 1
                if aliases > MAX_ALIASES:
                    raise RuleFileError([Problem(
                        source, "les ancres et alias YAML (& et *) ne sont pas acceptés : "
                                "écrivez la valeur en entier", line=line)])
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise RuleFileError([Problem(
                        source, f"imbrication trop profonde (plus de {MAX_DEPTH} niveaux)",
                        line=line)])
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        if not json_syntax:
            raise  # reported, located, by _load_text
        # valid JSON that YAML cannot read: json.loads decides (its nesting is bounded)


def _load_text(text: str, source: str, json_syntax: bool) -> tuple[Any, Any]:
    """The data and the YAML node tree (for line numbers) of a rule file."""
    try:
        _check_text(text, source, json_syntax)
        if json_syntax:
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise RuleFileError([Problem(source, f"JSON invalide : {exc.msg}",
                                             line=exc.lineno)]) from None
            except RecursionError:
                raise RuleFileError([Problem(source, "imbrication trop profonde")]) from None
            try:
                nodes = yaml.compose(text, Loader=_Loader)
            except (yaml.YAMLError, RecursionError):
                nodes = None  # valid JSON that YAML cannot read: no line numbers
            return data, nodes
        loader = _Loader(text)
        try:
            nodes = loader.get_single_node()
            data = loader.construct_document(nodes) if nodes is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise RuleFileError([Problem(
            source, f"syntaxe YAML invalide : {exc.problem or exc.context}",
            line=mark.line + 1 if mark else None)]) from None
    except yaml.YAMLError as exc:
        raise RuleFileError([Problem(source, f"syntaxe YAML invalide : {exc}")]) from None
    return data, nodes


def _path_text(path: tuple) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "un booléen"
    if isinstance(value, (int, float)):
        return "un nombre"
    if isinstance(value, str):
        return "un texte"
    if isinstance(value, list):
        return "une liste"
    if isinstance(value, dict):
        return "un dictionnaire"
    if value is None:
        return "vide (null)"
    return type(value).__name__


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) and not (
        isinstance(value, float) and not math.isfinite(value))


def _kind_of_value(value: Any) -> str:
    if isinstance(value, bool):
        return "booleen"
    if isinstance(value, (int, float)):
        return "nombre"
    return "texte"


def _compatible(kind: str, value_kind: str) -> bool:
    if kind in NUMERIC_KINDS:
        return value_kind == "nombre"
    if kind in TEXT_KINDS:
        return value_kind == "texte"
    return kind == value_kind


class _Context:
    """What a condition may refer to, inside one pattern of one rule."""

    def __init__(self, rule: str, schema: dict, aliases: dict[str, str], alias: str,
                 fact_type: str | None, parameters: dict):
        self.rule, self.schema, self.aliases = rule, schema, aliases
        self.alias, self.fact_type, self.parameters = alias, fact_type, parameters
        self.used_parameters: set[str] = set()

    @property
    def fields(self) -> dict:
        return self.schema.get(self.fact_type, {}) if self.fact_type else {}


class _Checker:
    TOP_KEYS = ("jeu", "titre", "description", "parametres", "modeles", "regles", "exemples",
                "delais")
    RULE_KEYS = ("message", "champ", "gravite", "description", "all", "any", "pri")
    REFUSED_RULE_KEYS = {
        "count": "« count » (regroupement d'événements) n'est pas permis : les règles "
                 "portent sur des faits",
        "cap": "« cap » (regroupement d'événements) n'est pas permis : les règles portent "
               "sur des faits",
        "dist": "« dist » n'est pas permis",
        "run": "« run » est ajouté par le moteur : ne l'écrivez pas",
    }

    def __init__(self, source: str, nodes):
        self.source = source
        self.nodes = nodes
        self.problems: list[Problem] = []
        if nodes is not None:
            self._check_duplicate_keys(nodes, ())

    # -- reporting ---------------------------------------------------------------------------
    def fail(self, path: tuple, message: str, rule: str | None = None) -> None:
        self.problems.append(Problem(self.source, message, rule=rule,
                                     path=_path_text(path) or None, line=self._line(path)))

    def _line(self, path: tuple) -> int | None:
        node = self.nodes
        best = node.start_mark.line + 1 if node is not None else None
        for part in path:
            if isinstance(node, yaml.MappingNode):
                node = next((v for k, v in node.value if k.value == part), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) \
                    and part < len(node.value):
                node = node.value[part]
            else:
                node = None
            if node is None:
                break
            best = node.start_mark.line + 1
        return best

    def _check_duplicate_keys(self, node, path: tuple) -> None:
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key, value in node.value:
                if key.value in seen:
                    self.problems.append(Problem(
                        self.source, f"la clé « {key.value} » est écrite deux fois (la "
                                     "seconde effacerait la première)",
                        path=_path_text(path) or None, line=key.start_mark.line + 1))
                seen.add(key.value)
                self._check_duplicate_keys(value, path + (key.value,))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._check_duplicate_keys(item, path + (index,))

    # -- the envelope --------------------------------------------------------------------------
    def check(self, data: Any, expected_name: str | None) -> RuleSet:
        from backoffice.facts import SCHEMAS

        empty = RuleSet(name=expected_name or "?", title="", description="", parameters={},
                        rules={}, examples=(), deadlines={}, content="", source=self.source,
                        digest="", definition={})
        if not isinstance(data, dict):
            self.fail((), "le fichier doit être un dictionnaire (jeu, titre, parametres, "
                          f"regles, exemples), pas {_describe(data)}")
            return empty
        for key in data:
            if key not in self.TOP_KEYS:
                self.fail((key,), f"clé inconnue « {key} » (clés permises : "
                                  f"{', '.join(self.TOP_KEYS)})")
        name = data.get("jeu")
        if not isinstance(name, str) or not name:
            self.fail(("jeu",), "« jeu » (le nom du jeu de règles) est obligatoire")
            return empty
        if expected_name and name != expected_name:
            self.fail(("jeu",), f"le jeu s'appelle « {name} » mais le fichier est celui de "
                                f"« {expected_name} »")
        if name not in SCHEMAS:
            self.fail(("jeu",), f"jeu de règles inconnu « {name} » (jeux connus : "
                                f"{', '.join(SCHEMAS)})")
            return empty
        schema = SCHEMAS[name]
        title = data.get("titre")
        if not isinstance(title, str) or not title.strip():
            self.fail(("titre",), "« titre » est obligatoire (un texte)")
            title = name
        description = data.get("description") or ""
        if not isinstance(description, str):
            self.fail(("description",), "« description » doit être un texte")
            description = ""

        parameters = self._parameters(data.get("parametres", {}), schema)
        templates = self._templates(data.get("modeles", {}), schema)
        rules, definition = self._rules(data.get("regles"), schema, parameters)
        declared = set(data["regles"]) if isinstance(data.get("regles"), dict) else set()
        examples = self._examples(data.get("exemples"), schema, templates, declared)
        deadlines = self._deadlines(data.get("delais", {}), parameters)
        return RuleSet(name=name, title=title.strip(), description=description.strip(),
                       parameters=parameters, rules=rules, examples=examples,
                       deadlines=deadlines, content="", source=self.source, digest="",
                       definition=definition)

    def _parameters(self, raw: Any, schema: dict) -> dict:
        if not isinstance(raw, dict):
            self.fail(("parametres",), "« parametres » doit être un dictionnaire nom: valeur")
            return {}
        fields = {f for fields in schema.values() for f in fields}
        parameters = {}
        for name, value in raw.items():
            path = ("parametres", name)
            if not isinstance(name, str) or not NAME_RE.match(name):
                self.fail(path, f"nom de paramètre invalide « {name} » (lettres minuscules, "
                                "chiffres et _)")
                continue
            if name in fields:
                self.fail(path, f"le paramètre « {name} » porte le nom d'un champ des faits : "
                                "choisissez un autre nom (les messages seraient ambigus)")
            if isinstance(value, (dt.date, dt.datetime)):
                self.fail(path, f"« {name} » : écrivez la date entre guillemets")
                continue
            if not _is_scalar(value):
                self.fail(path, f"« {name} » doit être un nombre, un texte ou un booléen, pas "
                                f"{_describe(value)}")
                continue
            if isinstance(value, str) and LOOSE_TIME_RE.match(value) and \
                    not TIME_RE.match(value):
                self.fail(path, f"« {name} » : écrivez l'heure sur cinq caractères, par "
                                f"exemple « 08:00 » (et non « {value} »)")
            parameters[name] = value
        return parameters

    def _fact_values(self, raw: Any, path: tuple, schema: dict, fact_type: str | None,
                     allow_type: bool) -> dict:
        if not isinstance(raw, dict):
            self.fail(path, f"un fait est un dictionnaire champ: valeur, pas {_describe(raw)}")
            return {}
        fields = schema.get(fact_type, {})
        values = {}
        for field, value in raw.items():
            if field == "type" and allow_type:
                continue
            if field not in fields:
                self.fail(path + (field,), f"champ inconnu « {field} » pour un fait "
                                           f"« {fact_type} » (champs : "
                                           f"{', '.join(sorted(fields))})")
                continue
            if isinstance(value, (dt.date, dt.datetime)):
                self.fail(path + (field,), f"« {field} » : écrivez la date entre guillemets "
                                           "(« 2026-09-01 »)")
                continue
            if value is not None and not _is_scalar(value) and not (
                    isinstance(value, list) and all(_is_scalar(v) for v in value)):
                self.fail(path + (field,), f"« {field} » doit être un texte, un nombre, un "
                                           f"booléen ou une liste, pas {_describe(value)}")
                continue
            values[field] = value
        return values

    def _templates(self, raw: Any, schema: dict) -> dict:
        if not isinstance(raw, dict):
            self.fail(("modeles",), "« modeles » doit être un dictionnaire type: fait")
            return {}
        templates = {}
        for fact_type, values in raw.items():
            if fact_type not in schema:
                self.fail(("modeles", fact_type), f"type de fait inconnu « {fact_type} » "
                                                  f"(types : {', '.join(schema)})")
                continue
            templates[fact_type] = self._fact_values(values, ("modeles", fact_type), schema,
                                                     fact_type, allow_type=True)
        return templates

    def _deadlines(self, raw: Any, parameters: dict) -> dict:
        if not isinstance(raw, dict):
            self.fail(("delais",), "« delais » doit être un dictionnaire nom: {parametre, unite}")
            return {}
        deadlines = {}
        for name, spec in raw.items():
            path = ("delais", name)
            if not isinstance(spec, dict) or set(spec) != {"parametre", "unite"}:
                self.fail(path, "un délai s'écrit {parametre: nom_du_parametre, unite: jours}")
                continue
            parameter, unit = spec["parametre"], spec["unite"]
            if parameter not in parameters:
                self.fail(path + ("parametre",), f"paramètre inconnu « {parameter} »")
                continue
            value = parameters[parameter]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                self.fail(path + ("parametre",), f"« {parameter} » doit être un nombre entier "
                                                 "positif ou nul")
            if unit not in DURATION_UNITS:
                self.fail(path + ("unite",), f"unité inconnue « {unit} » (unités : "
                                             f"{', '.join(DURATION_UNITS)})")
                continue
            deadlines[name] = (parameter, unit)
        return deadlines

    # -- rules ---------------------------------------------------------------------------------
    def _rules(self, raw: Any, schema: dict, parameters: dict) -> tuple[dict, dict]:
        if not isinstance(raw, dict) or not raw:
            self.fail(("regles",), "« regles » est obligatoire : un dictionnaire identifiant: "
                                   "règle")
            return {}, {}
        rules, definition = {}, {}
        for position, (rule_id, raw_rule) in enumerate(raw.items()):
            path = ("regles", rule_id)
            if not isinstance(rule_id, str) or not NAME_RE.match(rule_id):
                self.fail(path, f"identifiant de règle invalide « {rule_id} » (lettres "
                                "minuscules, chiffres et _, en commençant par une lettre)")
                continue
            if not isinstance(raw_rule, dict):
                self.fail(path, "une règle est un dictionnaire (message, champ, gravite, all)",
                          rule_id)
                continue
            compiled = self._rule(rule_id, raw_rule, path, schema, parameters, position)
            if compiled is not None:
                rule, rule_definition = compiled
                rules[rule_id] = rule
                definition[rule_id] = rule_definition
        return rules, definition

    def _rule(self, rule_id: str, raw: dict, path: tuple, schema: dict, parameters: dict,
              position: int):
        before = len(self.problems)
        for key in raw:
            if key in self.REFUSED_RULE_KEYS:
                self.fail(path + (key,), self.REFUSED_RULE_KEYS[key], rule_id)
            elif key not in self.RULE_KEYS:
                self.fail(path + (key,), f"clé inconnue « {key} » (clés d'une règle : "
                                         f"{', '.join(self.RULE_KEYS)})", rule_id)
        message = raw.get("message")
        if not isinstance(message, str) or not message.strip():
            self.fail(path + ("message",), "« message » est obligatoire (le texte montré à "
                                           "l'utilisateur)", rule_id)
            message = ""
        field = raw.get("champ")
        if not isinstance(field, str) or not FIELD_REF_RE.match(field):
            self.fail(path + ("champ",), "« champ » est obligatoire : le nom du champ du "
                                         "formulaire concerné (ex. intitule)", rule_id)
            field = ""
        severity = raw.get("gravite")
        if severity not in SEVERITIES:
            self.fail(path + ("gravite",), f"« gravite » vaut bloquant ou avertissement, pas "
                                           f"« {severity} »", rule_id)
        description = raw.get("description") or ""
        if not isinstance(description, str):
            self.fail(path + ("description",), "« description » doit être un texte", rule_id)
            description = ""
        pri = raw.get("pri")
        if pri is not None and (isinstance(pri, bool) or not isinstance(pri, int)):
            self.fail(path + ("pri",), "« pri » (priorité) doit être un nombre entier", rule_id)
            pri = None
        operators = [k for k in ("all", "any") if k in raw]
        if len(operators) != 1:
            self.fail(path, "une règle a exactement une condition « all » (tous les motifs) "
                            "ou « any » (l'un des motifs)", rule_id)
            return None
        operator = operators[0]
        patterns = raw[operator]
        if not isinstance(patterns, list) or not patterns:
            self.fail(path + (operator,), f"« {operator} » est une liste de motifs "
                                          "« - alias: condition »", rule_id)
            return None

        aliases: dict[str, str] = {}
        used_parameters: set[str] = set()
        compiled_patterns = []
        for index, pattern in enumerate(patterns):
            ppath = path + (operator, index)
            if not isinstance(pattern, dict) or len(pattern) != 1:
                self.fail(ppath, "un motif s'écrit « alias: condition » (un seul alias par "
                                 "motif)", rule_id)
                continue
            alias, expr = next(iter(pattern.items()))
            if not isinstance(alias, str) or not NAME_RE.match(alias):
                if isinstance(alias, str) and "$" in alias:
                    suffix = alias[alias.index("$"):]
                    reason = ("la négation dépend de l'ordre des faits"
                              if suffix == "$not" else "les motifs imbriqués ne sont pas "
                                                       "permis")
                    self.fail(ppath, f"construction refusée « {alias} » : {reason}", rule_id)
                else:
                    self.fail(ppath, f"alias invalide « {alias} » (lettres minuscules, "
                                     "chiffres et _)", rule_id)
                continue
            if alias in aliases:
                self.fail(ppath, f"l'alias « {alias} » est déjà utilisé dans cette règle",
                          rule_id)
                continue
            fact_type = _pattern_type(expr)
            if fact_type is None:
                self.fail(ppath + (alias,), "chaque motif commence par le type du fait, par "
                                            "exemple « $and: [{type: formation}, …] »",
                          rule_id)
            elif fact_type not in schema:
                self.fail(ppath + (alias,), f"type de fait inconnu « {fact_type} » (types : "
                                            f"{', '.join(schema)})", rule_id)
                fact_type = None
            context = _Context(rule_id, schema, dict(aliases), alias, fact_type, parameters)
            self._expr(expr, ppath + (alias,), context)
            used_parameters |= context.used_parameters
            aliases[alias] = fact_type or ""
            compiled_patterns.append((alias, expr))

        placeholders = self._message(message, path + ("message",), rule_id, aliases, schema,
                                     parameters)
        used_parameters |= placeholders
        if len(self.problems) > before:
            return None
        rule = Rule(id=rule_id, message=message.strip(), field=field, severity=severity,
                    description=description.strip(), position=position,
                    aliases=tuple(aliases), types=tuple(aliases.values()),
                    parameters=tuple(sorted(used_parameters)), pri=pri, operator=operator)
        definition = {operator: [
            {alias: _compile_pattern(expr, parameters)} for alias, expr in compiled_patterns],
            "run": rule_id}
        if pri is not None:
            definition["pri"] = pri
        return rule, definition

    def _message(self, message: str, path: tuple, rule: str, aliases: dict, schema: dict,
                 parameters: dict) -> set[str]:
        used = set()
        text = message.replace("{{", "\x00").replace("}}", "\x00")
        first = next(iter(aliases.values()), None)
        for placeholder in PLACEHOLDER_RE.findall(text):
            name, _, filter_name = placeholder.strip().partition("|")
            name, filter_name = name.strip(), filter_name.strip()
            if filter_name and filter_name not in FILTERS:
                self.fail(path, f"filtre inconnu « {filter_name} » dans « {{{placeholder}}} » "
                                f"(filtres : {', '.join(FILTERS)})", rule)
            alias, _, field = name.rpartition(".")
            if alias:
                if alias not in aliases:
                    self.fail(path, f"« {{{placeholder}}} » : alias inconnu « {alias} » "
                                    f"(alias de la règle : {', '.join(aliases)})", rule)
                elif aliases[alias] and field not in schema.get(aliases[alias], {}):
                    self.fail(path, f"« {{{placeholder}}} » : champ inconnu « {field} » pour "
                                    f"un fait « {aliases[alias]} »", rule)
            elif name in parameters:
                used.add(name)
            elif first and name not in schema.get(first, {}):
                self.fail(path, f"« {{{placeholder}}} » n'est ni un paramètre ni un champ d'un "
                                f"fait « {first} »", rule)
        rest = PLACEHOLDER_RE.sub("", text)
        if "{" in rest or "}" in rest:
            self.fail(path, "accolade isolée dans le message (écrivez {{ ou }} pour afficher "
                            "une accolade)", rule)
        return used

    # -- conditions ------------------------------------------------------------------------------
    def _expr(self, expr: Any, path: tuple, ctx: _Context) -> None:
        if not isinstance(expr, dict) or len(expr) != 1:
            count = len(expr) if isinstance(expr, dict) else 0
            self.fail(path, "une condition s'écrit entre accolades avec une seule clé"
                            + (f" ({count} ici : combinez-les avec $and)" if count > 1 else
                               f", pas {_describe(expr)}"), ctx.rule)
            return
        key, value = next(iter(expr.items()))
        path = path + (key,)
        if not isinstance(key, str):
            self.fail(path, f"clé invalide « {key} »", ctx.rule)
        elif key in LOGICAL:
            if not isinstance(value, list) or not value:
                self.fail(path, f"« {key} » attend une liste de conditions", ctx.rule)
                return
            for index, item in enumerate(value):
                self._expr(item, path + (index,), ctx)
        elif key in PRESENCE:
            field = self._single(value, path, ctx)
            if field is not None:
                self._field(field, path + (field,), ctx)
                if not _is_scalar(value[field]):
                    self.fail(path + (field,), f"écrivez « {key}: {{{field}: 1}} »", ctx.rule)
        elif key in COMPARISONS:
            field = self._single(value, path, ctx)
            if field is not None:
                kind = self._field(field, path + (field,), ctx)
                if kind == "liste":
                    self.fail(path + (field,), f"« {field} » est une liste : utilisez $iany "
                                               "ou $iall", ctx.rule)
                self._operand(value[field], path + (field,), ctx, kind, key)
        elif key in REGEX:
            field = self._single(value, path, ctx)
            if field is not None:
                kind = self._field(field, path + (field,), ctx)
                pattern = value[field]
                if isinstance(pattern, dict) and set(pattern) == {"$param"}:
                    pattern = self._param(pattern["$param"], path + (field,), ctx)
                if kind not in (None, "texte") or not isinstance(pattern, str):
                    self.fail(path + (field,), f"« {key} » compare un champ texte à une "
                                               "expression régulière (un texte)", ctx.rule)
                else:
                    try:
                        re.compile(pattern)
                    except re.error as exc:
                        self.fail(path + (field,), f"expression régulière invalide : {exc}",
                                  ctx.rule)
        elif key in ARRAYS:
            field = self._single(value, path, ctx)
            if field is not None:
                kind = self._field(field, path + (field,), ctx)
                if kind not in (None, "liste"):
                    self.fail(path + (field,), f"« {key} » ne s'applique qu'à un champ liste, "
                                               f"pas à « {field} »", ctx.rule)
                self._item_expr(value[field], path + (field,), ctx)
        elif key.startswith("$"):
            if key == "$not":
                self.fail(path, "« $not » n'existe pas dans le moteur : utilisez l'opérateur "
                                "contraire ($neq, $nex, $lte…)", ctx.rule)
            elif key in RESERVED_FIELDS:
                self.fail(path, "une règle ne peut pas porter sur l'état du moteur (« $s ») : "
                                "elle bouclerait", ctx.rule)
            else:
                self.fail(path, f"opérateur inconnu « {key} » (opérateurs permis : "
                                f"{', '.join(OPERATORS)})", ctx.rule)
        else:
            kind = self._field(key, path, ctx)
            if kind == "liste":
                self.fail(path, f"« {key} » est une liste : utilisez $iany ou $iall", ctx.rule)
            self._operand(value, path, ctx, kind, "$eq")

    def _single(self, value: Any, path: tuple, ctx: _Context) -> str | None:
        if not isinstance(value, dict) or len(value) != 1:
            self.fail(path, "l'opérateur attend un seul champ : « {champ: valeur} »", ctx.rule)
            return None
        field = next(iter(value))
        if not isinstance(field, str):
            self.fail(path, f"nom de champ invalide « {field} »", ctx.rule)
            return None
        if field.startswith("$") and field not in RESERVED_FIELDS:
            self.fail(path, f"« {field} » est à la place d'un nom de champ : écrivez "
                            "« opérateur: {champ: valeur} »", ctx.rule)
            return None
        return field

    def _field(self, field: str, path: tuple, ctx: _Context) -> str | None:
        if field in RESERVED_FIELDS:
            self.fail(path, f"« {field} » est réservé au moteur : une règle sur ce champ "
                            "bouclerait ou ne voudrait rien dire", ctx.rule)
            return None
        if ctx.fact_type is None:
            return None
        fields = ctx.fields
        if field not in fields:
            self.fail(path, f"champ inconnu « {field} » pour un fait « {ctx.fact_type} » "
                            f"(champs : {', '.join(sorted(fields))})", ctx.rule)
            return None
        return fields[field].kind

    def _param(self, name: Any, path: tuple, ctx: _Context) -> Any:
        if not isinstance(name, str) or name not in ctx.parameters:
            self.fail(path, f"paramètre inconnu « {name} » (paramètres : "
                            f"{', '.join(ctx.parameters) or 'aucun'})", ctx.rule)
            return None
        ctx.used_parameters.add(name)
        return ctx.parameters[name]

    def _operand(self, value: Any, path: tuple, ctx: _Context, kind: str | None, op: str,
                 arithmetic: bool = False) -> str | None:
        """Check a right-hand side; returns its kind (nombre, texte, booleen) when known."""
        if value is None:
            self.fail(path, "valeur vide (null) : pour tester qu'un champ n'est pas renseigné, "
                            "utilisez « $nex: {champ: 1} »", ctx.rule)
            return None
        if isinstance(value, list):
            self.fail(path, "une liste n'est pas permise ici (le moteur la refuse : erreur "
                            "102) ; combinez les cas avec $or", ctx.rule)
            return None
        if isinstance(value, (dt.date, dt.datetime)):
            self.fail(path, "écrivez la date entre guillemets", ctx.rule)
            return None
        if _is_scalar(value):
            value_kind = _kind_of_value(value)
            self._check_kind(kind, value_kind, value, path, ctx)
            return value_kind
        if not isinstance(value, dict) or len(value) != 1:
            self.fail(path, f"valeur invalide : {_describe(value)}", ctx.rule)
            return None
        key, inner = next(iter(value.items()))
        if key == "$param":
            parameter = self._param(inner, path + ("$param",), ctx)
            if parameter is None:
                return None
            value_kind = _kind_of_value(parameter)
            self._check_kind(kind, value_kind, parameter, path, ctx, parameter=inner)
            return value_kind
        if key == "$m":
            other = self._field(inner, path + ("$m",), ctx) if isinstance(inner, str) else None
            if not isinstance(inner, str):
                self.fail(path, "« $m » attend un nom de champ du même fait", ctx.rule)
            if other == "liste":
                self.fail(path, f"« {inner} » est une liste", ctx.rule)
            if other and kind and other != kind and not (
                    other in NUMERIC_KINDS and kind in NUMERIC_KINDS) and not (
                    other in TEXT_KINDS and kind in TEXT_KINDS):
                self.fail(path, f"comparaison d'un champ {kind} avec un champ {other}", ctx.rule)
            return {"jour": "nombre", "date": "texte"}.get(other, other)
        if key in ARITHMETIC:
            if not isinstance(inner, dict) or set(inner) != {"$l", "$r"}:
                self.fail(path + (key,), f"« {key} » s'écrit {{$l: gauche, $r: droite}}",
                          ctx.rule)
                return None
            for side in ("$l", "$r"):
                side_kind = self._operand(inner[side], path + (key, side), ctx, "nombre", op,
                                          arithmetic=True)
                if side_kind not in (None, "nombre"):
                    self.fail(path + (key, side), "un calcul porte sur des nombres", ctx.rule)
            if key == "$div" and _is_scalar(inner["$r"]) and inner["$r"] == 0:
                self.fail(path + (key, "$r"), "division par zéro", ctx.rule)
            if kind and kind not in NUMERIC_KINDS:
                self.fail(path, f"un calcul donne un nombre ; le champ est {kind}", ctx.rule)
            return "nombre"
        if key in ctx.aliases:
            if arithmetic:
                self.fail(path, "un calcul ne peut pas utiliser un autre fait : copiez la "
                                "valeur dans ce fait", ctx.rule)
                return None
            if op in ORDERINGS:
                self.fail(path, f"comparaison d'ordre ({op}) entre deux faits : le moteur C "
                                "plante sur cette construction (durable-rules #381) ; "
                                "copiez la valeur dans le même fait (facts.py) et comparez "
                                "avec $m", ctx.rule)
                return None
            if op == "$neq":
                self.fail(path, "entre deux faits, seule l'égalité est permise", ctx.rule)
                return None
            other_type = ctx.aliases[key]
            fields = ctx.schema.get(other_type, {})
            if not isinstance(inner, str) or (other_type and inner not in fields):
                self.fail(path, f"champ inconnu « {inner} » pour l'alias « {key} » (un fait "
                                f"« {other_type} »)", ctx.rule)
                return None
            return {"jour": "nombre", "date": "texte"}.get(fields[inner].kind, fields[inner].kind) \
                if other_type else None
        if key == ctx.alias:
            self.fail(path, f"pour un champ du même fait, écrivez « $m: {inner} »", ctx.rule)
        elif key == "$i":
            self.fail(path, "« $i » (l'élément d'une liste) ne s'utilise que dans $iany ou "
                            "$iall", ctx.rule)
        elif isinstance(key, str) and key.startswith("$"):
            self.fail(path, f"opérateur inconnu « {key} » dans une valeur (permis : $param, $m, "
                            f"{', '.join(ARITHMETIC)})", ctx.rule)
        else:
            self.fail(path, f"alias inconnu « {key} » (les motifs précédents de la règle : "
                            f"{', '.join(ctx.aliases) or 'aucun'})", ctx.rule)
        return None

    def _check_kind(self, kind: str | None, value_kind: str, value: Any, path: tuple,
                    ctx: _Context, parameter: str | None = None) -> None:
        if kind is None or kind == "liste" or _compatible(kind, value_kind):
            return
        label = f"le paramètre « {parameter} » ({value!r})" if parameter else repr(value)
        hint = ""
        if kind in TEXT_KINDS and value_kind == "nombre":
            hint = " ; écrivez la valeur entre guillemets (YAML lit 20:00 comme le nombre 1200)"
        self.fail(path, f"{label} est {_describe(value)}, le champ est de type {kind}{hint}",
                  ctx.rule)

    def _item_expr(self, expr: Any, path: tuple, ctx: _Context) -> None:
        """The condition on each element ``$i`` of a list, inside $iany/$iall."""
        if not isinstance(expr, dict) or len(expr) != 1:
            self.fail(path, "dans $iany/$iall, écrivez une condition sur $i, par exemple "
                            "« {$gt: {$i: 5}} »", ctx.rule)
            return
        key, value = next(iter(expr.items()))
        if key in LOGICAL:
            if not isinstance(value, list) or not value:
                self.fail(path + (key,), f"« {key} » attend une liste de conditions", ctx.rule)
                return
            for index, item in enumerate(value):
                self._item_expr(item, path + (key, index), ctx)
        elif key in COMPARISONS:
            if not isinstance(value, dict) or set(value) != {"$i"}:
                self.fail(path + (key,), f"écrivez « {key}: {{$i: valeur}} »", ctx.rule)
                return
            self._operand(value["$i"], path + (key, "$i"), ctx, "nombre", key)
        elif key == "$i":
            self._operand(value, path + ("$i",), ctx, "nombre", "$eq")
        else:
            self.fail(path + (key,), f"« {key} » n'est pas permis dans $iany/$iall (permis : "
                                     f"$i, $and, $or, {', '.join(COMPARISONS)})", ctx.rule)

    # -- examples ------------------------------------------------------------------------------
    def _examples(self, raw: Any, schema: dict, templates: dict, rules: set) -> tuple:
        if not isinstance(raw, list) or not raw:
            self.fail(("exemples",), "« exemples » est obligatoire : une liste de cas "
                                     "{nom, faits, attendu} que les tests rejouent")
            return ()
        examples = []
        for index, item in enumerate(raw):
            path = ("exemples", index)
            if not isinstance(item, dict) or set(item) - {"nom", "faits", "attendu"} or \
                    not {"nom", "faits", "attendu"} <= set(item):
                self.fail(path, "un exemple s'écrit {nom: …, faits: [...], attendu: [...]}")
                continue
            facts = []
            raw_facts = item["faits"]
            if not isinstance(raw_facts, list):
                self.fail(path + ("faits",), "« faits » est une liste de faits")
                continue
            for fact_index, fact in enumerate(raw_facts):
                fpath = path + ("faits", fact_index)
                fact_type = fact.get("type") if isinstance(fact, dict) else None
                if fact_type not in schema:
                    self.fail(fpath, f"chaque fait a un type connu ({', '.join(schema)})")
                    continue
                values = {**templates.get(fact_type, {}),
                          **self._fact_values(fact, fpath, schema, fact_type, allow_type=True)}
                facts.append({"type": fact_type, **values})
            expected = item["attendu"]
            if not isinstance(expected, list) or not all(isinstance(e, str) for e in expected):
                self.fail(path + ("attendu",), "« attendu » est la liste des identifiants de "
                                               "règles attendus ([] si aucune)")
                continue
            for rule_id in expected:
                if rule_id not in rules:
                    self.fail(path + ("attendu",), f"règle inconnue « {rule_id} »")
            examples.append(Example(name=str(item["nom"]), facts=tuple(facts),
                                    expected=tuple(expected)))
        return tuple(examples)


def _pattern_type(expr: Any) -> str | None:
    if not isinstance(expr, dict) or len(expr) != 1:
        return None
    key, value = next(iter(expr.items()))
    if key == "type" and isinstance(value, str):
        return value
    if key == "$and" and isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and len(item) == 1 and isinstance(item.get("type"), str):
                return item["type"]
    return None


# -- compiling (only after validation) ---------------------------------------------------------
def _compile_pattern(expr: dict, parameters: dict) -> dict:
    compiled = _compile_expr(expr, parameters)
    items = compiled["$and"] if set(compiled) == {"$and"} else [compiled]
    return {"$and": [copy.deepcopy(STATE_GUARD), *items]}


def _compile_expr(expr: dict, parameters: dict) -> dict:
    key, value = next(iter(expr.items()))
    if key in LOGICAL:
        return {key: [_compile_expr(item, parameters) for item in value]}
    if key in PRESENCE:
        field = next(iter(value))
        return {key: {field: 1}}
    refs: set[str] = set()
    if key in COMPARISONS or key in REGEX:
        field, operand = next(iter(value.items()))
        operand = _compile_operand(operand, parameters, refs)
        compiled = {field: operand} if key == "$eq" else {key: {field: operand}}
    elif key in ARRAYS:
        field, inner = next(iter(value.items()))
        compiled = {key: {field: _compile_item(inner, parameters, refs)}}
    else:
        compiled = {key: _compile_operand(value, parameters, refs)}
    if refs:
        # durable-rules 2.0.28 treats a comparison with a missing referenced field as true.
        return {"$and": [*({"$ex": {ref: 1}} for ref in sorted(refs)), compiled]}
    return compiled


def _compile_item(expr: dict, parameters: dict, refs: set) -> dict:
    key, value = next(iter(expr.items()))
    if key in LOGICAL:
        return {key: [_compile_item(item, parameters, refs) for item in value]}
    if key == "$i":
        return {"$i": _compile_operand(value, parameters, refs)}
    operand = _compile_operand(value["$i"], parameters, refs)
    return {"$i": operand} if key == "$eq" else {key: {"$i": operand}}


def _compile_operand(value: Any, parameters: dict, refs: set) -> Any:
    if not isinstance(value, dict):
        return value
    key, inner = next(iter(value.items()))
    if key == "$param":
        return parameters[inner]
    if key == "$m":
        refs.add(inner)
        return {"$m": inner}
    if key in ARITHMETIC:
        left = _compile_operand(inner["$l"], parameters, refs)
        right = _compile_operand(inner["$r"], parameters, refs)
        if not isinstance(left, dict) and not isinstance(right, dict):
            # The engine silently mis-evaluates arithmetic on two constants: fold it here.
            result = {"$add": left + right, "$sub": left - right, "$mul": left * right,
                      "$div": left / right if right else 0}[key]
            return int(result) if float(result).is_integer() else result
        return {key: {"$l": left, "$r": right}}
    return {key: inner}  # a reference to another fact: {alias: field}


def _sentinel_rule() -> dict:
    return {"all": [{"m": {"$and": [copy.deepcopy(STATE_GUARD), {"type": SENTINEL}]}}],
            "run": SENTINEL}


# -- messages ----------------------------------------------------------------------------------
def _format_date(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        return (dt.date(1970, 1, 1) + dt.timedelta(days=int(value))).strftime("%d/%m/%Y")
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value[:10]).strftime("%d/%m/%Y")
        except ValueError:
            return value
    return _format(value)


def _format_weekday(value: Any) -> str:
    return WEEKDAYS.get(value, _format(value)) if isinstance(value, int) else _format(value)


def _format(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ", ".join(_format(v) for v in value) or "aucune"
    return str(value)


FILTERS = {"date": _format_date, "jour": _format_weekday, "liste": _format}


def render_message(rule: Rule, facts: Mapping[str, Mapping], parameters: Mapping) -> str:
    """Fill ``{champ}``, ``{alias.champ}``, ``{parametre}`` and ``{x|date}`` placeholders."""
    first = next(iter(facts.values()), {}) if facts else {}

    def value_of(name: str) -> Any:
        alias, _, field = name.rpartition(".")
        if alias:
            return facts.get(alias, {}).get(field)
        if name in parameters:
            return parameters[name]
        return first.get(name)

    def replace(match: re.Match) -> str:
        name, _, filter_name = match.group(1).strip().partition("|")
        formatter = FILTERS.get(filter_name.strip(), _format)
        return formatter(value_of(name.strip()))

    text = rule.message.replace("{{", "\x00").replace("}}", "\x01")
    return PLACEHOLDER_RE.sub(replace, text).replace("\x00", "{").replace("\x01", "}")


# -- the host: one per process, no threads -----------------------------------------------------
class _Run:
    """The state of one evaluation, seen by the actions."""

    __slots__ = ("ruleset", "budget", "deadline", "firings", "matches", "stopped", "error")

    def __init__(self, ruleset: RuleSet, budget: int, deadline: float):
        self.ruleset, self.budget, self.deadline = ruleset, budget, deadline
        self.firings = 0
        self.matches: list[tuple[str, dict]] = []
        self.stopped: str | None = None
        self.error: BaseException | None = None


_LOCK = threading.RLock()
_SIDS = itertools.count(1)
_host_instance = None


def _host():
    global _host_instance
    if _host_instance is None:
        from durable import engine as durable_engine

        # durable-rules reads the wall clock through a function deprecated in Python 3.12
        # (datetime.utcfromtimestamp), only to time out actions after 10 s: a monotonic
        # clock does the same job without the warning.
        durable_engine._unix_now = time.monotonic

        class _Host(durable_engine.Host):
            def __init__(self):
                self.run: _Run | None = None
                self.registered: set[str] = set()
                super().__init__()

            def _run(self):
                """No dispatcher threads (they run actions on other threads and crash)."""

            def get_action(self, action_name):
                return _make_action(self, action_name)

        _host_instance = _Host()
    return _host_instance


def _make_action(host, rule_id: str):
    def action(c, complete):
        run = host.run
        try:
            if run is None:
                complete(None)
                return
            run.firings += 1
            if run.firings > run.budget:
                run.stopped = f"plus de {run.budget} déclenchements"
                return  # not completing the action ends durable-rules' dispatch loop
            if time.monotonic() > run.deadline:
                run.stopped = "délai dépassé"
                return
            if rule_id != SENTINEL:
                run.matches.append((rule_id, {alias: fact.get("id")
                                              for alias, fact in (c._m or {}).items()
                                              if isinstance(fact, dict)}))
        except BaseException as exc:  # noqa: BLE001 (durable-rules would swallow it)
            if run is not None:
                run.error, run.stopped = exc, "erreur dans une action"
            return
        complete(None)
    return action


def _ensure_registered(host, ruleset: RuleSet) -> str:
    name = ruleset.registered_name
    if name not in host.registered:
        definition = copy.deepcopy(ruleset.definition)  # registration mutates it
        definition[SENTINEL] = _sentinel_rule()
        try:
            host.register_rulesets({name: definition})
        except Exception as exc:  # noqa: BLE001 (the C engine raises bare errors)
            raise RulesError(f"Le moteur de règles refuse « {ruleset.name} » "
                             f"({ruleset.version_label}) : {exc}") from exc
        host.registered.add(name)
    return name


def _prepare(fact: Mapping, index: int) -> dict:
    if not isinstance(fact, Mapping) or not isinstance(fact.get("type"), str):
        raise RulesError(f"Le fait n° {index + 1} n'a pas de type.")
    prepared = {}
    for key, value in fact.items():
        if key in RESERVED_FIELDS or not isinstance(key, str) or key.startswith("$"):
            raise RulesError(f"Le fait n° {index + 1} porte le champ réservé « {key} ».")
        if value is None:
            continue
        if not (_is_scalar(value) or (isinstance(value, list)
                                      and all(_is_scalar(v) for v in value))):
            raise RulesError(f"Le fait n° {index + 1} : « {key} » doit être un texte, un "
                             f"nombre, un booléen ou une liste, pas {_describe(value)}.")
        prepared[key] = value
    prepared["id"] = f"f{index}"
    return prepared


def _limits() -> tuple[int, float]:
    config = _config()
    return (int(config.get("RULES_FIRING_BUDGET", 10_000)),
            float(config.get("RULES_DEADLINE_SECONDS", 2.0)))


def _config() -> Mapping:
    from flask import current_app, has_app_context

    return current_app.config if has_app_context() else {}


def evaluate(ruleset: str | RuleSet, facts: Iterable[Mapping]) -> list[Violation]:
    """Every violation of ``ruleset`` (its active version, or the given ``RuleSet``) for
    ``facts``, deduplicated, sorted by rule position in the file then by fact."""
    rs = ruleset if isinstance(ruleset, RuleSet) else current(ruleset)
    prepared = [_prepare(fact, index) for index, fact in enumerate(facts)]
    budget, seconds = _limits()
    with _LOCK:
        host = _host()
        name = _ensure_registered(host, rs)
        sid = str(next(_SIDS))
        run = _Run(rs, budget, time.monotonic() + seconds)
        host.run = run
        try:
            _assert(host, name, {"type": SENTINEL, "sid": sid, "id": "s"})
            for fact in prepared:
                if run.stopped:
                    break
                if time.monotonic() > run.deadline:
                    run.stopped = "délai dépassé"
                    break
                _assert(host, name, {**fact, "sid": sid})
        finally:
            host.run = None
            try:
                host.delete_state(name, sid)
            except Exception:  # noqa: BLE001
                log.exception("delete_state a échoué pour %s/%s", name, sid)
    if run.error is not None:
        raise RulesError(f"Erreur pendant l'évaluation de « {rs.name} » : {run.error}") \
            from run.error
    if run.stopped:
        raise RulesWatchdogError(
            f"L'évaluation de « {rs.name} » ({rs.version_label}) a été interrompue : "
            f"{run.stopped} (une règle boucle-t-elle ?).")
    return _violations(rs, run.matches, prepared)


def _assert(host, name: str, fact: dict) -> None:
    from durable import engine as durable_engine

    try:
        host.assert_fact(name, fact)
    except durable_engine.MessageNotHandledException:
        pass  # no rule matches this fact: nothing to say
    except durable_engine.MessageObservedException:
        raise RulesError("Le même fait a été transmis deux fois au moteur de règles.") from None
    except Exception as exc:
        raise RulesError(f"Le moteur de règles a refusé un fait : {exc}") from exc


def _violations(rs: RuleSet, matches: list[tuple[str, dict]], facts: list[dict]
                ) -> list[Violation]:
    seen, violations = set(), []

    def add(rule: Rule, indexes: tuple) -> None:
        key = (rule.id, indexes)
        if key in seen:
            return
        seen.add(key)
        context = {alias: facts[index] for alias, index in zip(rule.aliases, indexes)
                   if index is not None}
        first = next((index for index in indexes if index is not None), None)
        violations.append(Violation(
            ruleset=rs.name, rule_id=rule.id,
            message=render_message(rule, context, rs.parameters), field=rule.field,
            severity=rule.severity, fact_index=first, fact_indexes=indexes))

    for rule_id, ids in matches:
        rule = rs.rules.get(rule_id)
        if rule is None:
            continue
        indexes = tuple(_fact_index(ids.get(alias)) for alias in rule.aliases)
        if rule.operator == "any":
            # "any" fires for each matching fact and again for their combinations: one
            # violation per matching fact.
            for position, index in enumerate(indexes):
                if index is not None:
                    add(rule, tuple(index if i == position else None
                                    for i in range(len(indexes))))
        else:
            add(rule, indexes)
    violations.sort(key=lambda v: (rs.rules[v.rule_id].position,
                                   -1 if v.fact_index is None else v.fact_index,
                                   tuple(-1 if i is None else i for i in v.fact_indexes)))
    return violations


def _fact_index(fact_id: Any) -> int | None:
    if isinstance(fact_id, str) and fact_id.startswith("f") and fact_id[1:].isdigit():
        return int(fact_id[1:])
    return None


def run_examples(ruleset: RuleSet) -> list[ExampleResult]:
    """Replay the file's example cases (facts → expected rule ids)."""
    results = []
    for example in ruleset.examples:
        try:
            got = tuple(v.rule_id for v in evaluate(ruleset, example.facts))
            results.append(ExampleResult(example, got))
        except RulesError as exc:
            results.append(ExampleResult(example, (), error=exc.message))
    return results


# -- the current version of each rule set ------------------------------------------------------
class _Registry:
    def __init__(self):
        self.directory: Path | None = None
        self.files: dict[str, RuleSet] = {}
        self.active: dict[str, RuleSet] = {}       # valid active version from the database
        self.checked_at: dict[str, float] = {}
        self.invalid: dict[str, str] = {}          # rule set → why its stored version is ignored
        self.invalid_digest: dict[str, tuple] = {}  # rule set → (row id, digest) found invalid


_registry = _Registry()


def init_app(app) -> None:
    """Load and validate every file of ``RULES_DIR`` (``rules/``); a bad file fails
    start-up with a French message naming file, line, rule and path. Also registers the
    workflow guards of the rule sets that have a fact builder."""
    directory = Path(app.config.get("RULES_DIR") or DEFAULT_DIRECTORY)
    files = load_directory(directory)
    with _LOCK:
        for ruleset in files.values():
            _ensure_registered(_host(), ruleset)
        _registry.directory = directory
        _registry.files = files
        _registry.active.clear()
        _registry.checked_at.clear()
        _registry.invalid.clear()
        _registry.invalid_digest.clear()
    app.extensions["rules_engine"] = _registry
    _register_workflow_guards()


def reload_files() -> list[Problem]:
    """Re-read ``rules/``; a file that no longer validates keeps its last good version
    (its problems are returned and logged)."""
    problems = []
    directory = _registry.directory or DEFAULT_DIRECTORY
    for name in RULESETS:
        path = next((p for p in (directory / f"{name}.yaml", directory / f"{name}.yml",
                                 directory / f"{name}.json") if p.exists()), None)
        if path is None:
            continue
        try:
            ruleset = load_file(path)
        except RuleFileError as exc:
            problems.extend(exc.problems)
            log.error("Règles : %s (la dernière version valide est conservée)", exc.message)
            continue
        with _LOCK:
            _ensure_registered(_host(), ruleset)
            _registry.files[name] = ruleset
    return problems


def file_version(name: str) -> RuleSet:
    if not _registry.files:
        init_app_without_flask()
    try:
        return _registry.files[name]
    except KeyError:
        raise RulesError(f"Jeu de règles inconnu « {name} ».") from None


def init_app_without_flask(directory: Path | None = None) -> None:
    """Load the files outside an application (benchmarks, scripts)."""
    files = load_directory(directory or DEFAULT_DIRECTORY)
    with _LOCK:
        _registry.directory = directory or DEFAULT_DIRECTORY
        _registry.files = files


def current(name: str) -> RuleSet:
    """The version of ``name`` in force: the active database version, else the file."""
    base = file_version(name)
    from flask import has_app_context

    if has_app_context():
        _refresh(name)
    return _registry.active.get(name) or base


def invalidate(name: str | None = None) -> None:
    """Forget when the active versions were checked (the next evaluation re-reads them)."""
    if name is None:
        _registry.checked_at.clear()
    else:
        _registry.checked_at.pop(name, None)


def _refresh(name: str) -> None:
    from flask import current_app
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from backoffice.extensions import db
    from backoffice.models import RuleSetVersion

    ttl = float(current_app.config.get("RULES_VERSION_CHECK_SECONDS",
                                       0 if current_app.testing else 5))
    now = time.monotonic()
    if ttl and now - _registry.checked_at.get(name, -math.inf) < ttl:
        return
    query = (select(RuleSetVersion.id, RuleSetVersion.version, RuleSetVersion.content)
             .where(RuleSetVersion.ruleset == name, RuleSetVersion.active.is_(True))
             .order_by(RuleSetVersion.version.desc()).limit(1))
    try:
        if db.engine.url.get_backend_name() == "sqlite" and \
                db.engine.url.database in (None, "", ":memory:"):
            # One shared in-memory connection: read through the session (no autoflush).
            with db.session.no_autoflush:
                row = db.session.execute(query).first()
        else:
            # A connection of its own: never flushes nor breaks the caller's transaction.
            with db.engine.connect() as connection:
                row = connection.execute(query).first()
    except SQLAlchemyError as exc:
        log.warning("Règles : version active de %s illisible (%s)", name, exc)
        return
    _registry.checked_at[name] = now
    if row is None:
        _registry.active.pop(name, None)
        _registry.invalid.pop(name, None)
        _registry.invalid_digest.pop(name, None)
        return
    digest = hashlib.sha256(row.content.encode("utf-8")).hexdigest()
    known = _registry.active.get(name)
    if known is not None and known.digest == digest and known.version_id == row.id:
        return
    if _registry.invalid_digest.get(name) == (row.id, digest):
        return  # already found invalid: keep the last good version without re-parsing
    try:
        ruleset = parse(row.content, source=f"{name} version {row.version}",
                        expected_name=name, version=row.version, version_id=row.id)
        with _LOCK:
            _ensure_registered(_host(), ruleset)
    except RulesError as exc:
        message = (f"La version {row.version} active de « {name} » est ignorée : "
                   f"{exc.message}")
        log.error("Règles : %s ; la dernière version valide est conservée.", message)
        _registry.invalid[name] = message
        _registry.invalid_digest[name] = (row.id, digest)
        return
    _registry.invalid.pop(name, None)
    _registry.invalid_digest.pop(name, None)
    _registry.active[name] = ruleset


def invalid_active_version(name: str) -> str | None:
    """Why the stored active version of ``name`` is ignored, if it is."""
    return _registry.invalid.get(name)


def parameter(ruleset: str, name: str) -> Any:
    return current(ruleset).parameters[name]


def duration(name: str) -> Duration:
    """A duration of the ``deadlines`` rule set with its unit: ``.before(at)`` and
    ``.after(at)`` count working days and calendar years exactly."""
    rs = current("deadlines")
    try:
        parameter_name, unit = rs.deadlines[name]
    except KeyError:
        raise RulesError(f"Délai inconnu « {name} » (délais : {', '.join(rs.deadlines)}).") \
            from None
    return Duration(name, int(rs.parameters[parameter_name]), unit)


def deadline(name: str) -> dt.timedelta:
    """A duration of the ``deadlines`` rule set for the scheduled jobs, e.g.
    ``deadline("expiration_brouillon")`` → 15 days. Working days come back as their count
    in ``.days`` (``rappel_moderation_jours_ouvres``), years as 365 days each; use
    ``duration(name)`` for calendar-exact arithmetic."""
    value = duration(name)
    return dt.timedelta(days=value.amount * (365 if value.unit == "ans" else 1))


# -- checking model objects --------------------------------------------------------------------
def facts_for(name: str, obj, *, at: dt.datetime | None = None) -> list[dict]:
    """The facts of ``obj`` for rule set ``name`` (see ``backoffice.facts``)."""
    from backoffice import facts
    from backoffice.models import Candidate, Candidature, Formation

    if name == "publication":
        return facts.publication_facts(obj, at=at)
    if name == "cursus_eligibility":
        return facts.cursus_facts(obj)
    if name == "candidature_limits":
        return facts.candidature_limits_facts(obj, at=at)
    if name == "duplicates":
        if isinstance(obj, Candidate):
            return facts.candidate_self_duplicate_facts(obj)
        if isinstance(obj, Formation):
            return facts.formation_duplicate_facts(obj)
    if name == "deadlines" and isinstance(obj, (Candidature, Formation, Candidate)):
        return facts.deadline_facts(obj, at=at)
    raise RulesError(f"Le jeu « {name} » ne s'applique pas à {type(obj).__name__}.")


def check(name: str, obj, *, at: dt.datetime | None = None,
          ruleset: RuleSet | None = None) -> list[Violation]:
    """Evaluate rule set ``name`` (or the given version) on a model object."""
    return evaluate(ruleset or name, facts_for(name, obj, at=at))


def _register_workflow_guards() -> None:
    from backoffice import workflow

    for name in ("publication", "candidature_limits", "cursus_eligibility"):
        def guard(obj, *, actor=None, transition=None, _name=name):
            return check(_name, obj)
        workflow.guard(name)(guard)


# -- stored versions -----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class VersionInfo:
    version: int
    content: str
    active: bool
    author: str
    created_at: dt.datetime | None
    comment: str
    row_id: int | None


def history(name: str) -> list[VersionInfo]:
    """Every version of ``name``, newest first; version 1 is the file while the database
    holds none."""
    from sqlalchemy import select

    from backoffice.extensions import db
    from backoffice.models import RuleSetVersion

    rows = db.session.scalars(select(RuleSetVersion).where(RuleSetVersion.ruleset == name)
                              .order_by(RuleSetVersion.version.desc())).all()
    if not rows:
        base = file_version(name)
        return [VersionInfo(1, base.content, True, "fichier rules/", None,
                            "Version initiale (fichier)", None)]
    return [VersionInfo(row.version, row.content, bool(row.active),
                        row.author.full_name if row.author else "fichier rules/",
                        row.created_at, row.comment or "", row.id) for row in rows]


def activate(name: str, content: str, *, author, comment: str) -> Any:
    """Store ``content`` as the new active version of ``name`` (validated first; the
    caller has tried it in a child process) and return the ``RuleSetVersion``. The
    caller commits, then calls ``invalidate(name)``; other processes see it within
    ``RULES_VERSION_CHECK_SECONDS``."""
    from sqlalchemy import func, select, update

    from backoffice.extensions import db
    from backoffice.models import RuleSetVersion

    from backoffice.input_guard import CONTROL_CHARACTERS

    comment = (comment or "").strip()
    if not comment:
        raise RulesError("Indiquez un commentaire : il explique la version dans l'historique.")
    if CONTROL_CHARACTERS.search(comment) or len(comment) > MAX_COMMENT_LENGTH:
        raise RulesError(f"Le commentaire doit compter {MAX_COMMENT_LENGTH} caractères au plus, "
                         "sans caractère de contrôle invisible.")
    parse(content, source=f"{name} (nouvelle version)", expected_name=name)
    active = history(name)
    current_content = next((v.content for v in active if v.active), None)
    if current_content is not None and current_content == content:
        raise RulesError("Cette version est identique à la version active : rien à activer.")
    last = db.session.scalar(select(func.max(RuleSetVersion.version))
                             .where(RuleSetVersion.ruleset == name))
    now = clock.now()
    if last is None:
        db.session.add(RuleSetVersion(ruleset=name, version=1, content=file_version(name).content,
                                      active=False, author=None, created_at=now,
                                      comment="Version initiale (fichier rules/)"))
        last = 1
    db.session.execute(update(RuleSetVersion).where(RuleSetVersion.ruleset == name)
                       .values(active=False))
    row = RuleSetVersion(ruleset=name, version=last + 1, content=content, active=True,
                         author=author, created_at=now, comment=comment)
    db.session.add(row)
    db.session.flush()
    return row


def revert(name: str, version: int, *, author, comment: str = "") -> Any:
    """Make an earlier version active again, as a new version (the history keeps who
    went back, when and why)."""
    target = next((v for v in history(name) if v.version == version), None)
    if target is None:
        raise RulesError(f"La version {version} de « {name} » n'existe pas.")
    if target.active:
        raise RulesError(f"La version {version} est déjà la version active.")
    text = f"Retour à la version {version}" + (f" : {comment.strip()}" if comment.strip()
                                               else "")
    return activate(name, target.content, author=author, comment=text)
