"""Load and check rule files (TOML) against the detector registry.

A malformed rule file is a :class:`~lossdoctor.errors.RulePackError` naming the
file and the key; nothing in a rule file is executed.
"""

from __future__ import annotations

import io
import re
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from lossdoctor.detectors import DetectorSpec, input_kinds, load_builtin_detectors
from lossdoctor.engine.conditions import Condition, parse_condition
from lossdoctor.engine.requires import REQUIRES_INTS, REQUIRES_SHARES, Requires
from lossdoctor.engine.schema import SEVERITIES, Cause, Docs, Fix, Level, Rule
from lossdoctor.errors import RulePackError

ALLOWED_KEYS = frozenset(
    {
        "code",
        "name",
        "group",
        "summary",
        "detector",
        "series",
        "inputs",
        "params",
        "thresholds",
        "levels",
        "fixes",
        "docs",
        "supersedes",
        "causes",
        "emitted_by",
        "positive",
        "rl_loss",
        "requires",
    }
)
REQUIRED_KEYS = ("code", "name", "group", "summary", "detector", "levels", "fixes", "docs")
_CODE = re.compile(r"^[A-Z]{2,6}[0-9]{3}$")
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([^{}]*))?\}")
_NUMBER_IN_SPEC = re.compile(r"\d+")
#: The widest field and the most digits a message placeholder may ask for (``{x:>12.3f}``).
MAX_FORMAT_WIDTH = 100


def builtin_rules_dir() -> Path:
    """Return the folder of the built-in rule pack (installed wheel or source checkout)."""
    package = Path(__file__).resolve().parents[1]  # lossdoctor/, installed as files
    packaged = package / "_rules"
    if packaged.is_dir():
        return packaged
    checkout = package.parent / "rules"
    if checkout.is_dir():
        return checkout
    raise RulePackError("the built-in rule pack is missing (no lossdoctor/_rules, no rules/)")


def _fail(path: Path, key: str, problem: str) -> RulePackError:
    return RulePackError(f"rule key '{key}': {problem}", path=str(path))


def _suggest(word: str, choices: list[str]) -> str:
    close = get_close_matches(word, choices, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _str(data: dict[str, Any], key: str, path: Path) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, key, "must be a non-empty string")
    return value.strip()


def _roles(data: dict[str, Any], key: str, path: Path) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(path, key, "must be a list of series roles")
    return tuple(value)


def _levels(
    data: dict[str, Any], path: Path, rule_fields: set[str], thresholds: dict[str, Any]
) -> tuple[Level, ...]:
    raw = data["levels"]
    if not isinstance(raw, list) or not raw:
        raise _fail(path, "levels", "must be a non-empty array of tables")
    levels = []
    for i, item in enumerate(raw):
        key = f"levels[{i}]"
        if not isinstance(item, dict):
            raise _fail(path, key, "must be a table")
        unknown = set(item) - {"severity", "when", "message", "explains", "advice"}
        if unknown:
            raise _fail(path, f"{key}.{sorted(unknown)[0]}", "unknown key")
        severity = item.get("severity")
        if severity not in SEVERITIES:
            raise _fail(path, f"{key}.severity", f"must be one of {', '.join(SEVERITIES)}")
        when_raw = item.get("when", [])
        if isinstance(when_raw, str):
            when_raw = [when_raw]
        if not isinstance(when_raw, list) or not all(isinstance(w, str) for w in when_raw):
            raise _fail(path, f"{key}.when", "must be a list of conditions")
        conditions = []
        for text in when_raw:
            try:
                cond = parse_condition(text)
            except ValueError as exc:
                raise _fail(path, f"{key}.when", str(exc)) from None
            if cond.field not in rule_fields:
                raise _fail(
                    path,
                    f"{key}.when",
                    f"unknown field '{cond.field}'{_suggest(cond.field, sorted(rule_fields))}",
                )
            if isinstance(cond.operand, str) and cond.operand not in thresholds:
                raise _fail(
                    path,
                    f"{key}.when",
                    f"unknown threshold '{cond.operand}'"
                    + _suggest(cond.operand, sorted(thresholds)),
                )
            conditions.append(cond)
        message = item.get("message")
        if not isinstance(message, str) or not message.strip():
            raise _fail(path, f"{key}.message", "must be a non-empty string")
        explains = item.get("explains", True)
        advice = item.get("advice", True)
        for name, flag in (("explains", explains), ("advice", advice)):
            if not isinstance(flag, bool):
                raise _fail(path, f"{key}.{name}", "must be true or false")
        levels.append(
            Level(
                severity=severity,
                when=tuple(conditions),
                message=message.strip(),
                explains=explains,
                advice=advice,
            )
        )
    return tuple(levels)


def _causes(
    data: dict[str, Any],
    path: Path,
    fields: set[str],
    thresholds: dict[str, Any],
    signals: set[str],
) -> tuple[Cause, ...]:
    """Return the rule's causes; ``signals`` are the names a cause's ``signal`` may take."""
    raw = data.get("causes", [])
    if not isinstance(raw, list):
        raise _fail(path, "causes", "must be an array of tables")
    causes = []
    for i, item in enumerate(raw):
        key = f"causes[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("title"), str):
            raise _fail(path, key, "must be a table with 'title' and 'why'")
        unknown = set(item) - {"title", "why", "when", "unless", "evidence", "fixes", "signal"}
        if unknown:
            raise _fail(path, f"{key}.{sorted(unknown)[0]}", "unknown key")
        conditions = _cause_conditions(item, "when", path, key, fields, thresholds)
        unless = _cause_conditions(item, "unless", path, key, fields, thresholds)
        signal = item.get("signal", "")
        if signal and (not isinstance(signal, str) or signal not in signals):
            known = ", ".join(sorted(signals))
            raise _fail(path, f"{key}.signal", f"must be one of the rule's inputs or log ({known})")
        if signal and not conditions:
            raise _fail(path, f"{key}.signal", "a cause without conditions rests on no signal")
        causes.append(
            Cause(
                title=item["title"].strip(),
                why=str(item.get("why", "")).strip(),
                when=conditions,
                evidence=str(item.get("evidence", "")).strip(),
                fixes=_texts(item.get("fixes", []), path, f"{key}.fixes", "a list of fix titles"),
                signal=str(signal),
                unless=unless,
            )
        )
    return tuple(causes)


def _cause_conditions(
    item: dict[str, Any],
    name: str,
    path: Path,
    key: str,
    fields: set[str],
    thresholds: dict[str, Any],
) -> tuple[Condition, ...]:
    """Return a cause's ``when`` or ``unless`` conditions, each checked against the
    detector's fields and the rule's thresholds; raise the loader's error otherwise."""
    conditions = []
    for text in _texts(item.get(name, []), path, f"{key}.{name}", "a list of conditions"):
        try:
            cond = parse_condition(str(text))
        except ValueError as exc:
            raise _fail(path, f"{key}.{name}", str(exc)) from None
        if cond.field not in fields:
            hint = _suggest(cond.field, sorted(fields))
            raise _fail(path, f"{key}.{name}", f"unknown field '{cond.field}'{hint}")
        if isinstance(cond.operand, str) and cond.operand not in thresholds:
            raise _fail(path, f"{key}.{name}", f"unknown threshold '{cond.operand}'")
        conditions.append(cond)
    return tuple(conditions)


def _texts(value: object, path: Path, key: str, what: str) -> tuple[str, ...]:
    """Return ``value`` (a string or a list of strings) as a tuple of strings."""
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(path, key, f"must be {what}")
    return tuple(value)


def _check_placeholders(rule: Rule, spec: DetectorSpec, path: Path) -> None:
    known = set(spec.fields) | set(rule.thresholds) | {"series", "column", "start_step", "end_step"}
    texts = [(f"levels[{i}].message", lv.message) for i, lv in enumerate(rule.levels)]
    texts += [(f"causes[{i}].evidence", c.evidence) for i, c in enumerate(rule.causes)]
    for key, text in texts:
        for name, fmt in _PLACEHOLDER.findall(text):
            if name not in known:
                raise _fail(
                    path, key, f"unknown placeholder '{{{name}}}'{_suggest(name, sorted(known))}"
                )
            if any(int(n) > MAX_FORMAT_WIDTH for n in _NUMBER_IN_SPEC.findall(fmt[:20])):
                raise _fail(
                    path,
                    key,
                    f"placeholder '{{{name}:{fmt[:20]}}}' asks for more than "
                    f"{MAX_FORMAT_WIDTH} characters",
                )


#: A cause's ``signal`` besides the rule's inputs: facts the log states beside its numbers
#: (fp16, overflow lines), and the epoch boundaries its epoch column gives.
FACT_SIGNALS = ("log", "epoch")

#: What may make the findings of a rule whose detector does not judge a run alone.
EMITTERS = ("compare", "watch")


def _emitted_by(data: dict[str, Any], path: Path) -> str:
    value = data.get("emitted_by", "")
    if value and (not isinstance(value, str) or value not in EMITTERS):
        raise _fail(path, "emitted_by", f"must be one of {', '.join(EMITTERS)}")
    return str(value)


def _positive(data: dict[str, Any], path: Path) -> bool:
    value = data.get("positive", False)
    if not isinstance(value, bool):
        raise _fail(path, "positive", "must be true or false")
    return value


def parse_requires(data: Any, path: Path) -> Requires:
    """Return the ``[requires]`` table of a rule file (absent: no requirement)."""
    if data is None:
        return Requires()
    if not isinstance(data, dict):
        raise _fail(path, "requires", "must be a table")
    for key, value in data.items():
        if key == "finished":
            if not isinstance(value, bool):
                raise _fail(path, "requires.finished", "must be true or false")
        elif key in REQUIRES_INTS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise _fail(path, f"requires.{key}", "must be a whole number >= 0")
        elif key in REQUIRES_SHARES:
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise _fail(path, f"requires.{key}", "must be a number from 0 to 1")
        else:
            known = ", ".join(("finished", *REQUIRES_INTS, *REQUIRES_SHARES))
            raise _fail(path, f"requires.{key}", f"unknown key (known: {known})")
    return Requires(**data)


def parse_rule(data: dict[str, Any], path: Path, detectors: dict[str, DetectorSpec]) -> Rule:
    """Return the rule described by ``data`` (a parsed TOML table) read from ``path``."""
    unknown = sorted(set(data) - ALLOWED_KEYS)
    if unknown:
        raise _fail(path, unknown[0], f"unknown key{_suggest(unknown[0], sorted(ALLOWED_KEYS))}")
    for key in REQUIRED_KEYS:
        if key not in data:
            raise _fail(path, key, "is required")
    code, name = _str(data, "code", path), _str(data, "name", path)
    if not _CODE.match(code):
        raise _fail(path, "code", "must be letters then three digits, e.g. LD201")
    if not _NAME.match(name):
        raise _fail(path, "name", "must be kebab-case, e.g. high-flatline")
    detector = _str(data, "detector", path)
    if detector not in detectors:
        raise _fail(
            path,
            "detector",
            f"unknown detector '{detector}'{_suggest(detector, sorted(detectors))}",
        )
    spec = detectors[detector]
    series, inputs = _roles(data, "series", path), _roles(data, "inputs", path)
    if bool(series) == bool(inputs):
        raise _fail(
            path, "series", "give exactly one of 'series' (one finding per role) or 'inputs'"
        )
    if series and len(spec.inputs) != 1:
        raise _fail(
            path, "series", f"detector '{detector}' reads {len(spec.inputs)} series: use 'inputs'"
        )
    # trailing optional inputs may be left out (a rule written before the detector read them)
    required = len(spec.inputs) - len(spec.optional)
    if inputs and not required <= len(inputs) <= len(spec.inputs):
        reads = f"{required} to {len(spec.inputs)}" if required < len(spec.inputs) else required
        raise _fail(path, "inputs", f"detector '{detector}' reads {reads} series")
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise _fail(path, "params", "must be a table")
    for key, value in params.items():
        if key not in spec.params:
            raise _fail(
                path,
                f"params.{key}",
                f"not a parameter of '{detector}'{_suggest(key, sorted(spec.params))}",
            )
        problem = spec.param_problem(key, value)
        if problem is not None:
            raise _fail(path, f"params.{key}", problem)
    thresholds = data.get("thresholds", {})
    if not isinstance(thresholds, dict) or not all(
        isinstance(v, int | float | bool) for v in thresholds.values()
    ):
        raise _fail(path, "thresholds", "must be a table of numbers")
    levels = _levels(data, path, set(spec.fields), thresholds)
    fixes_raw = data["fixes"]
    if not isinstance(fixes_raw, list) or not all(
        isinstance(f, dict) and isinstance(f.get("title"), str) and isinstance(f.get("why"), str)
        for f in fixes_raw
    ):
        raise _fail(path, "fixes", "must be an array of tables with 'title' and 'why'")
    docs_raw = data["docs"]
    if not isinstance(docs_raw, dict) or not all(
        isinstance(docs_raw.get(k), str) and docs_raw.get(k) for k in ("what", "why")
    ):
        raise _fail(path, "docs", "must be a table with 'what' and 'why'")
    supersedes = data.get("supersedes", [])
    if not isinstance(supersedes, list) or not all(isinstance(s, str) for s in supersedes):
        raise _fail(path, "supersedes", "must be a list of rule names")
    rl_loss = data.get("rl_loss", False)
    if not isinstance(rl_loss, bool):
        raise _fail(path, "rl_loss", "must be true or false")
    rule = Rule(
        code=code,
        name=name,
        group=_str(data, "group", path),
        summary=_str(data, "summary", path),
        detector=detector,
        series=series,
        inputs=inputs,
        params=dict(params),
        thresholds=dict(thresholds),
        levels=levels,
        fixes=tuple(Fix(title=f["title"].strip(), why=f["why"].strip()) for f in fixes_raw),
        docs=Docs(
            what=docs_raw["what"].strip(),
            why=docs_raw["why"].strip(),
            problems=str(docs_raw.get("problems", "")).strip(),
            references=_texts(
                docs_raw.get("references", []), path, "docs.references", "a list of strings"
            ),
        ),
        supersedes=tuple(supersedes),
        causes=_causes(data, path, set(spec.fields), thresholds, {*series, *inputs, *FACT_SIGNALS}),
        requires=parse_requires(data.get("requires"), path),
        path=str(path),
        emitted_by=_emitted_by(data, path),
        positive=_positive(data, path),
        rl_loss=rl_loss,
        input_kinds=input_kinds(spec),
    )
    _check_placeholders(rule, spec, path)
    titles = {f.title for f in rule.fixes}
    for i, cause in enumerate(rule.causes):
        for title in cause.fixes:
            if title not in titles:
                hint = _suggest(title, sorted(titles))
                raise _fail(path, f"causes[{i}].fixes", f"no fix titled '{title}'{hint}")
    return rule


def load_rule_file(path: Path, detectors: dict[str, DetectorSpec] | None = None) -> Rule:
    """Return the rule in the TOML file at ``path``."""
    return _rule_from_bytes(path, _read_rule_file(path), detectors)


def _read_rule_file(path: Path) -> bytes:
    """Return the bytes of the rule file at ``path``; raise :class:`RulePackError` naming
    it when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise RulePackError(f"cannot be read ({exc})", path=str(path)) from None


def _rule_from_bytes(
    path: Path, data: bytes, detectors: dict[str, DetectorSpec] | None = None
) -> Rule:
    """Return the rule in ``data``, the bytes of the TOML file at ``path`` (read as text
    the way ``Path.read_text`` reads it: UTF-8, any line end made ``\\n``)."""
    import tomllib  # here: the checked pack is usually read back from the cache

    detectors = detectors if detectors is not None else load_builtin_detectors()
    try:
        table = tomllib.loads(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8").read())
    except tomllib.TOMLDecodeError as exc:
        raise RulePackError(f"invalid TOML ({exc})", path=str(path)) from None
    except UnicodeDecodeError as exc:
        raise RulePackError(f"cannot be read ({exc})", path=str(path)) from None
    return parse_rule(table, path, detectors)


def load_rules(folders: list[Path] | None = None) -> list[Rule]:
    """Return the rules in ``folders`` (default: the built-in pack), sorted by code; the
    checked pack is kept in the user's cache folder (see :mod:`lossdoctor.engine.pack_cache`).

    Raises :class:`RulePackError` on a malformed file or a duplicate code or name.
    """
    from lossdoctor.engine.pack_cache import cached_rules

    files: list[tuple[Path, bytes]] = []
    for folder in folders or [builtin_rules_dir()]:
        files.extend((path, _read_rule_file(path)) for path in sorted(folder.rglob("*.toml")))
    return cached_rules(files, _build_rules)


def _build_rules(files: list[tuple[Path, bytes]]) -> list[Rule]:
    """Return the rules in the rule ``files`` (path, bytes), checked and sorted by code.

    Raises :class:`RulePackError` on a malformed file or a duplicate code or name.
    """
    detectors = load_builtin_detectors()
    rules = [_rule_from_bytes(path, data, detectors) for path, data in files]
    seen: dict[str, str] = {}
    for rule in rules:
        for ident in (rule.code, rule.name):
            if ident in seen:
                raise RulePackError(f"'{ident}' is also defined in {seen[ident]}", path=rule.path)
            seen[ident] = rule.path
    return sorted(rules, key=lambda r: r.code)
