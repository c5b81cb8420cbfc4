"""Conditions of rule levels: ``field op value``, parsed once when the pack loads.

The grammar is deliberately tiny: a measured field, one comparison operator,
and a number, ``true``/``false`` or the name of one of the rule's thresholds.
There is no arithmetic and nothing is evaluated as code.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_CONDITION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Condition:
    """One parsed comparison: ``field op operand`` (operand a number, bool or threshold)."""

    field: str
    op: str
    operand: float | bool | str
    text: str
    #: ``OPERATORS[op]``, looked up once (a condition is tested for every rule on every run).
    compare: Callable[[Any, Any], bool] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "compare", OPERATORS[self.op])

    def value(self, thresholds: Mapping[str, float | bool]) -> float | bool:
        """Return the operand, looking threshold names up in ``thresholds``."""
        if isinstance(self.operand, str):
            return thresholds[self.operand]
        return self.operand

    def holds(self, measured: Any, thresholds: Mapping[str, float | bool]) -> bool:
        """Return True when the measured value satisfies the condition (NaN never does)."""
        if isinstance(measured, float) and math.isnan(measured):
            return False
        operand = self.operand
        return bool(
            self.compare(measured, thresholds[operand] if type(operand) is str else operand)
        )


def parse_condition(text: str) -> Condition:
    """Return the condition written in ``text``; raise ValueError when it is malformed."""
    match = _CONDITION.match(text)
    if not match:
        raise ValueError(f"'{text}' is not of the form 'field op value' (ops: < <= > >= == !=)")
    field, op, raw = match.groups()
    operand: float | bool | str
    if raw in ("true", "false"):
        operand = raw == "true"
    else:
        try:
            operand = float(raw)
        except ValueError:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", raw):
                raise ValueError(f"'{raw}' in '{text}' is neither a number nor a name") from None
            operand = raw
    return Condition(field=field, op=op, operand=operand, text=text.strip())
