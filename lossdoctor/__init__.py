"""lossdoctor: diagnose machine-learning training runs from their loss logs.

The Python API (imported on first use, so ``import lossdoctor`` stays light)::

    report = lossdoctor.diagnose("run.csv")        # or a DataFrame, or {"loss": [...]}
    monitor = lossdoctor.Monitor()                 # streaming, inside a training loop
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Finding", "Monitor", "Report", "diagnose"]

if TYPE_CHECKING:
    from lossdoctor.diagnosis import Report, diagnose
    from lossdoctor.monitor import Monitor
    from lossdoctor.report import Finding

_LAZY = {
    "diagnose": "lossdoctor.diagnosis",
    "Report": "lossdoctor.diagnosis",
    "Monitor": "lossdoctor.monitor",
    "Finding": "lossdoctor.report",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lossdoctor' has no attribute '{name}'")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
