"""The judge stage: rules (data) applied to detector measurements -> findings -> verdict."""
