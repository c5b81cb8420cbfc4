"""The library entry point: from a source to a report, with no printing and no exiting."""

from __future__ import annotations

from collections.abc import Sequence

from lossdoctor.engine.evaluate import evaluate
from lossdoctor.engine.loader import load_rules
from lossdoctor.engine.schema import Rule
from lossdoctor.errors import InputError
from lossdoctor.ingest import ColumnHints, read_run
from lossdoctor.report import Report, RunReport


def diagnose(
    source: str,
    *,
    data: bytes | None = None,
    hints: ColumnHints | None = None,
    rules: Sequence[Rule] | None = None,
) -> RunReport:
    """Return the diagnosis of the log at ``source`` (or of ``data`` read from it).

    An unreadable source gives a report whose ``error`` holds the one-line reason.
    """
    try:
        run = read_run(source, data=data, hints=hints)
    except InputError as exc:
        return RunReport(source=source, error=exc.one_line())
    return evaluate(run, rules if rules is not None else load_rules())


def diagnose_many(
    sources: Sequence[str],
    *,
    stdin: bytes | None = None,
    hints: ColumnHints | None = None,
    rules: Sequence[Rule] | None = None,
) -> Report:
    """Return the report of every source in order (``-`` reads ``stdin``)."""
    pack = list(rules) if rules is not None else load_rules()
    runs = [diagnose(s, data=stdin if s == "-" else None, hints=hints, rules=pack) for s in sources]
    return Report(runs=runs)
