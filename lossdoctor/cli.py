"""The command line: a thin typer layer; every command delegates at once.

Only this module prints or exits.  Heavy modules (pandas, numpy, scipy) are
imported inside the commands so that ``lossdoctor --help`` stays instant.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from lossdoctor import __version__
from lossdoctor.errors import ExitCode, LossdoctorError

FAIL_ON = ("error", "warning", "info", "never")
FORMATS = ("text", "json")

app = typer.Typer(
    name="lossdoctor",
    help="Diagnose training runs from their loss logs: a verdict, the evidence, the fixes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
rules_app = typer.Typer(help="List and explain the rules.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lossdoctor {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Diagnose training runs from their loss logs."""


def _error(message: str) -> None:
    typer.echo(f"lossdoctor: {message}", err=True)


def _parse_formats(values: list[str]) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for value in values or ["text"]:
        name, _, path = value.partition(":")
        if name not in FORMATS:
            raise typer.BadParameter(
                f"unknown format '{name}' (choose from {', '.join(FORMATS)})",
                param_hint="'--format'",
            )
        out.append((name, path or None))
    if sum(1 for _, p in out if p is None) > 1:
        raise typer.BadParameter(
            "only one format can go to standard output; give the others a path (NAME:PATH)",
            param_hint="'--format'",
        )
    return out


@app.command()
def check(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Loss logs or run folders to diagnose (see 'lossdoctor formats'); '-' is stdin."
        ),
    ],
    fmt: Annotated[
        list[str],
        typer.Option(
            "--format",
            "-f",
            help="Output format NAME or NAME:PATH (text, json); repeatable.",
        ),
    ] = [],  # noqa: B006 - typer needs a list default
    fail_on: Annotated[
        str,
        typer.Option(
            help="Exit 1 when a finding reaches this severity: error, warning, info, never."
        ),
    ] = "error",
    train_col: Annotated[
        str | None, typer.Option(help="Column (or key) holding the training loss.")
    ] = None,
    val_col: Annotated[
        str | None, typer.Option(help="Column (or key) holding the validation loss.")
    ] = None,
    step_col: Annotated[str | None, typer.Option(help="Column (or key) holding the step.")] = None,
    vocab_size: Annotated[
        int | None,
        typer.Option(
            min=2, help="Vocabulary size N: ln(N) is the loss of a uniform guess (chance level)."
        ),
    ] = None,
    classes: Annotated[
        int | None,
        typer.Option(min=2, help="Number of classes N (classification): chance level ln(N)."),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(help="Typical-values profile to place the final loss in: slm-finetune."),
    ] = None,
    run_filter: Annotated[
        str | None,
        typer.Option(
            "--run", help="In a folder of runs or an MLflow store, only the runs matching this."
        ),
    ] = None,
) -> None:
    """Diagnose loss logs: verdict, evidence and fixes for each path, in order.

    Exit codes: 0 no run reaches --fail-on, 1 one does, 2 usage error or unreadable input.
    """
    if fail_on not in FAIL_ON:
        raise typer.BadParameter(
            f"'{fail_on}' is not one of {', '.join(FAIL_ON)}", param_hint="'--fail-on'"
        )
    outputs = _parse_formats(fmt)
    if vocab_size is not None and classes is not None:
        raise typer.BadParameter("give --vocab-size or --classes, not both")
    from lossdoctor.detectors.initial import PROFILES

    if profile is not None and profile not in PROFILES:
        raise typer.BadParameter(
            f"unknown profile '{profile}' (choose from {', '.join(PROFILES)})",
            param_hint="'--profile'",
        )
    from lossdoctor.api import diagnose_many, make_context
    from lossdoctor.ingest.columns import ColumnHints

    stdin = sys.stdin.buffer.read() if "-" in paths else None
    hints = None
    if train_col or val_col or step_col:
        hints = ColumnHints(train=train_col, val=val_col, step=step_col)
    context = make_context(vocab_size=vocab_size or classes, profile=profile)
    report = diagnose_many(paths, stdin=stdin, hints=hints, run=run_filter, context=context)
    doc = report.to_dict()
    for name, path in outputs:
        _write(name, path, doc)
    for run in report.runs:
        if run.error is not None:
            _error(run.error)
    if any(run.error is not None for run in report.runs):
        raise typer.Exit(ExitCode.USAGE)
    if any(run.reaches(fail_on) for run in report.runs):
        raise typer.Exit(ExitCode.FINDINGS)


def _write(name: str, path: str | None, doc: dict[str, object]) -> None:
    """Render ``doc`` in format ``name`` to ``path`` (stdout when None)."""
    if name == "json":
        from lossdoctor.reporters import json_report

        text = json_report.render(doc)
        if path is None:
            sys.stdout.write(text)
        else:
            _save(path, text)
        return
    from lossdoctor.reporters import terminal

    if path is None:
        terminal.render(doc)
        return
    import io

    buffer = io.StringIO()
    terminal.render(doc, buffer, width=100)
    _save(path, buffer.getvalue())


def _save(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise LossdoctorError(f"cannot write report ({exc.strerror})", path=path) from None


@app.command()
def formats() -> None:
    """List every log format lossdoctor reads, with an example of each."""
    from lossdoctor.ingest.catalog import READERS
    from lossdoctor.reporters import rule_docs

    rule_docs.print_rows(
        ("reader", "reads", "example"), [(r.name, r.reads, r.example) for r in READERS]
    )


@rules_app.command("list")
def rules_list() -> None:
    """List every rule: code, name, group, severities, summary."""
    from lossdoctor.engine.loader import load_rules
    from lossdoctor.reporters import rule_docs

    rule_docs.print_list(load_rules())


@rules_app.command("explain")
def rules_explain(
    rule: Annotated[str, typer.Argument(help="A rule name (spikes) or code (LD201).")],
) -> None:
    """Explain a rule: what it finds, why it matters, when it fires, what to do."""
    from lossdoctor.engine.loader import load_rules
    from lossdoctor.reporters import rule_docs

    pack = load_rules()
    found = [r for r in pack if rule in (r.name, r.code)]
    if not found:
        from difflib import get_close_matches

        close = get_close_matches(rule, [r.name for r in pack] + [r.code for r in pack], n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        _error(f"no rule '{rule}'{hint} (see 'lossdoctor rules list')")
        raise typer.Exit(ExitCode.USAGE)
    rule_docs.print_explain(found[0])


@rules_app.command("test")
def rules_test(
    folder: Annotated[Path, typer.Argument(help="A folder of rule case files (*.toml).")],
    rule_path: Annotated[
        list[Path],
        typer.Option("--rules", help="Rule folders to test instead of the built-in pack."),
    ] = [],  # noqa: B006 - typer needs a list default
) -> None:
    """Run rule case files: each case's curve must make the rules do what it expects.

    Exit codes: 0 every expectation met, 1 one failed, 2 a malformed file.
    """
    from lossdoctor.casefile import run_case_dir
    from lossdoctor.engine.loader import load_rules

    if not folder.is_dir():
        _error(f"{folder}: not a folder")
        raise typer.Exit(ExitCode.USAGE)
    pack = load_rules(list(rule_path) or None)
    results = run_case_dir(folder, pack)
    failed = [r for r in results if not r.ok]
    for r in results:
        mark = "ok  " if r.ok else "FAIL"
        typer.echo(
            f"{mark} {Path(r.file).name} [{r.case}] {r.rule}: expected {r.expected}, got {r.got}"
        )
    typer.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        raise typer.Exit(ExitCode.FINDINGS)


def main() -> None:
    """Run the CLI; turn lossdoctor errors into one line on stderr and exit code 2."""
    try:
        app()
    except LossdoctorError as exc:
        _error(exc.one_line())
        sys.exit(ExitCode.USAGE)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("LOSSDOCTOR_DEBUG"):
            raise
        _error(f"internal error: {type(exc).__name__}: {exc} (set LOSSDOCTOR_DEBUG=1 for details)")
        sys.exit(ExitCode.USAGE)
