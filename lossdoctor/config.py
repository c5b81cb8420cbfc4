"""Configuration: ``[tool.lossdoctor]`` in the nearest ``pyproject.toml``, a
``lossdoctor.toml``, or ``--config FILE``; checked strictly.

Precedence: command line > ``--config`` > project file > the rule pack's defaults.
Unknown keys, unknown rules and wrong types are :class:`ConfigError` naming the
file, the key and, where one is close, what was probably meant.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from lossdoctor.engine.schema import SEVERITIES, Level, Rule
from lossdoctor.errors import ConfigError
from lossdoctor.safeio import is_regular_file, os_reason

FAIL_ON = ("error", "warning", "info", "never")
TOP_KEYS = (
    "select",
    "extend-select",
    "ignore",
    "fail-on",
    "exit-zero",
    "rules",
    "rule-paths",
    "columns",
    "vocab-size",
    "classes",
    "profile",
    "objective",
)
#: Training objectives ``objective`` / ``--objective`` accepts ("auto": read from the log).
OBJECTIVES = ("auto", "sft", "pretrain", "dpo", "ipo", "reward-model", "grpo", "ppo", "rloo")
RULE_KEYS = ("params", "thresholds", "severity")
COLUMN_KEYS = ("train", "val", "step", "group")


@dataclass(frozen=True)
class RuleOverride:
    """Per-rule settings: detector parameters, thresholds, a fixed severity."""

    params: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    severity: str | None = None


@dataclass(frozen=True)
class Settings:
    """Everything configuration can set; ``None`` means "not set here"."""

    select: tuple[str, ...] | None = None
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    fail_on: str | None = None
    exit_zero: bool | None = None
    rules: dict[str, RuleOverride] = field(default_factory=dict)
    rule_paths: tuple[Path, ...] = ()
    columns: dict[str, str] = field(default_factory=dict)
    vocab_size: int | None = None
    profile: str | None = None
    objective: str | None = None
    path: str | None = None

    def merged(self, other: Settings) -> Settings:
        """Return these settings with every value ``other`` sets taking precedence."""
        return Settings(
            select=other.select if other.select is not None else self.select,
            extend_select=self.extend_select + other.extend_select,
            ignore=self.ignore + other.ignore,
            fail_on=other.fail_on or self.fail_on,
            exit_zero=other.exit_zero if other.exit_zero is not None else self.exit_zero,
            rules={**self.rules, **other.rules},
            rule_paths=self.rule_paths + other.rule_paths,
            columns={**self.columns, **other.columns},
            vocab_size=other.vocab_size or self.vocab_size,
            profile=other.profile or self.profile,
            objective=other.objective or self.objective,
            path=other.path or self.path,
        )


def _hint(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = get_close_matches(word.replace("_", "-"), list(choices), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _strings(value: Any, key: str, path: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"key '{key}': expected a list of strings", path=path)
    return tuple(value)


def parse_settings(table: dict[str, Any], *, path: str, base: Path) -> Settings:
    """Return the settings in a ``[tool.lossdoctor]`` table read from ``path``."""
    for key in table:
        if key not in TOP_KEYS:
            raise ConfigError(f"unknown key '{key}'{_hint(key, TOP_KEYS)}", path=path)
    fail_on = table.get("fail-on")
    if fail_on is not None and fail_on not in FAIL_ON:
        raise ConfigError(f"key 'fail-on': expected one of {', '.join(FAIL_ON)}", path=path)
    exit_zero = table.get("exit-zero")
    if exit_zero is not None and not isinstance(exit_zero, bool):
        raise ConfigError("key 'exit-zero': expected true or false", path=path)
    rules: dict[str, RuleOverride] = {}
    raw_rules = table.get("rules", {})
    if not isinstance(raw_rules, dict):
        raise ConfigError("key 'rules': expected a table of rule names", path=path)
    for name, body in raw_rules.items():
        if not isinstance(body, dict):
            raise ConfigError(f"key 'rules.{name}': expected a table", path=path)
        for key in body:
            if key not in RULE_KEYS:
                raise ConfigError(
                    f"unknown key 'rules.{name}.{key}'{_hint(key, RULE_KEYS)}", path=path
                )
        severity = body.get("severity")
        if severity is not None and severity not in SEVERITIES:
            raise ConfigError(
                f"key 'rules.{name}.severity': expected one of {', '.join(SEVERITIES)}", path=path
            )
        for key in ("params", "thresholds"):
            if not isinstance(body.get(key, {}), dict):
                raise ConfigError(f"key 'rules.{name}.{key}': expected a table", path=path)
        thresholds = body.get("thresholds", {})
        for key, value in thresholds.items():
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ConfigError(
                    f"key 'rules.{name}.thresholds.{key}': expected a number", path=path
                )
        rules[name] = RuleOverride(dict(body.get("params", {})), dict(thresholds), severity)
    columns = table.get("columns", {})
    if not isinstance(columns, dict):
        raise ConfigError("key 'columns': expected a table", path=path)
    for key, value in columns.items():
        if key not in COLUMN_KEYS:
            raise ConfigError(f"unknown key 'columns.{key}'{_hint(key, COLUMN_KEYS)}", path=path)
        if not isinstance(value, str):
            raise ConfigError(f"key 'columns.{key}': expected a string", path=path)
    vocab = table.get("vocab-size", table.get("classes"))
    if vocab is not None and (not isinstance(vocab, int) or isinstance(vocab, bool) or vocab < 2):
        raise ConfigError("key 'vocab-size': expected a whole number of at least 2", path=path)
    profile = table.get("profile")
    if profile is not None:
        from lossdoctor.detectors.initial import PROFILES

        if not isinstance(profile, str) or profile not in PROFILES:
            raise ConfigError(
                f"key 'profile': expected one of {', '.join(PROFILES)}"
                + (_hint(profile, list(PROFILES)) if isinstance(profile, str) else ""),
                path=path,
            )
    objective = table.get("objective")
    if objective is not None and objective not in OBJECTIVES:
        raise ConfigError(
            f"key 'objective': expected one of {', '.join(OBJECTIVES)}"
            + (_hint(objective, OBJECTIVES) if isinstance(objective, str) else ""),
            path=path,
        )
    paths = tuple(base / p for p in _strings(table.get("rule-paths", []), "rule-paths", path))
    select = table.get("select")
    return Settings(
        select=_strings(select, "select", path) if select is not None else None,
        extend_select=_strings(table.get("extend-select", []), "extend-select", path),
        ignore=_strings(table.get("ignore", []), "ignore", path),
        fail_on=fail_on,
        exit_zero=exit_zero,
        rules=rules,
        rule_paths=paths,
        columns=dict(columns),
        vocab_size=vocab,
        profile=profile,
        objective=objective,
        path=path,
    )


def read_config_file(path: Path) -> Settings:
    """Return the settings in ``path``: a ``lossdoctor.toml`` (top-level keys) or a
    ``pyproject.toml`` (``[tool.lossdoctor]``).  Raises :class:`ConfigError`."""
    data = _load_toml(path)
    tool = data.get("tool", {})
    if path.name == "pyproject.toml" or (isinstance(tool, dict) and "lossdoctor" in tool):
        data = tool.get("lossdoctor", {}) if isinstance(tool, dict) else {}
    if not isinstance(data, dict):
        raise ConfigError("key 'tool.lossdoctor': expected a table", path=str(path))
    return parse_settings(data, path=str(path), base=path.parent)


def _load_toml(path: Path) -> dict[str, Any]:
    """Return the TOML document at ``path``; raise :class:`ConfigError` naming it (and the
    line of a syntax error) when it cannot be read or is not valid TOML."""
    import tomllib  # here: a check with no configuration file reads no TOML

    try:
        text = path.read_bytes()[: 16 << 20].decode("utf-8")
        return tomllib.loads(text)
    except FileNotFoundError:
        raise ConfigError("no such file", path=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot be read ({os_reason(exc)})", path=str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError("cannot be read (not UTF-8 text)", path=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML ({exc})", path=str(path)) from None
    except RecursionError:
        raise ConfigError("invalid TOML (nested too deeply)", path=str(path)) from None


def find_project_config(start: Path) -> Path | None:
    """Return the nearest ``lossdoctor.toml``, or ``pyproject.toml`` with a
    ``[tool.lossdoctor]`` table, in ``start`` or its parents."""
    for folder in (start, *start.parents):
        candidate = folder / "lossdoctor.toml"
        if is_regular_file(candidate):
            return candidate
        pyproject = folder / "pyproject.toml"
        if is_regular_file(pyproject):
            data = _load_toml(pyproject)
            tool = data.get("tool", {})
            if isinstance(tool, dict) and "lossdoctor" in tool:
                return pyproject
    return None


def _matches(rule: Rule, selector: str) -> bool:
    token = selector.strip()
    return (
        token.upper() == "ALL"
        or token == rule.name
        or token == rule.group
        or rule.code.startswith(token.upper())
    )


def _check_selectors(
    selectors: tuple[str, ...], rules: list[Rule], key: str, path: str | None
) -> None:
    idents = [r.name for r in rules] + [r.code for r in rules] + sorted({r.group for r in rules})
    for token in selectors:
        if not any(_matches(r, token) for r in rules):
            raise ConfigError(
                f"key '{key}': no rule matches '{token}'{_hint(token, idents)}", path=path
            )


def apply_settings(rules: list[Rule], settings: Settings, detectors: dict[str, Any]) -> list[Rule]:
    """Return the rules selected by ``settings``, with their overrides applied.

    Raises :class:`ConfigError` for selectors or overrides that name no rule, parameter
    or threshold.
    """
    path = settings.path
    for key, selectors in (
        ("select", settings.select or ()),
        ("extend-select", settings.extend_select),
        ("ignore", settings.ignore),
    ):
        _check_selectors(tuple(selectors), rules, key, path)
    chosen = [
        r
        for r in rules
        if (settings.select is None or any(_matches(r, s) for s in settings.select))
        or any(_matches(r, s) for s in settings.extend_select)
    ]
    chosen = [r for r in chosen if not any(_matches(r, s) for s in settings.ignore)]
    by_name = {r.name: r for r in rules}
    by_code = {r.code: r for r in rules}
    out = []
    for name in settings.rules:
        if name not in by_name and name not in by_code:
            raise ConfigError(
                f"key 'rules.{name}': no such rule{_hint(name, list(by_name))}", path=path
            )
    for rule in chosen:
        found = settings.rules.get(rule.name) or settings.rules.get(rule.code)
        if found is None:
            out.append(rule)
            continue
        override = found
        spec = detectors[rule.detector]
        for key, value in override.params.items():
            if key not in spec.params:
                hint = _hint(key, list(spec.params))
                raise ConfigError(
                    f"key 'rules.{rule.name}.params.{key}': not a parameter{hint}", path=path
                )
            problem = spec.param_problem(key, value)
            if problem is not None:
                raise ConfigError(f"key 'rules.{rule.name}.params.{key}': {problem}", path=path)
        for key in override.thresholds:
            if key not in rule.thresholds:
                hint = _hint(key, list(rule.thresholds))
                raise ConfigError(
                    f"key 'rules.{rule.name}.thresholds.{key}': not a threshold{hint}", path=path
                )
        levels = rule.levels
        severity = override.severity
        if severity in SEVERITIES:
            levels = tuple(
                Level(severity, lv.when, lv.message) if lv.severity != "info" else lv
                for lv in rule.levels
            )
        out.append(
            replace(
                rule,
                params={**rule.params, **override.params},
                thresholds={**rule.thresholds, **override.thresholds},
                levels=tuple(Level(lv.severity, lv.when, lv.message) for lv in levels),
            )
        )
    return out


def resolve_settings(cli: Settings, config_file: str | None, cwd: Path) -> Settings:
    """Return the effective settings: project file, then ``--config``, then the command line."""
    settings = Settings()
    project = find_project_config(cwd)
    if project is not None:
        settings = settings.merged(read_config_file(project))
    if config_file is not None:
        settings = settings.merged(read_config_file(Path(config_file)))
    return settings.merged(cli)
