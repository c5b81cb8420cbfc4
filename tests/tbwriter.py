"""Write TensorBoard event files for tests with TensorBoard's own protos and writer."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

tb = pytest.importorskip("tensorboard")
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2  # noqa: E402
from tensorboard.summary.writer.event_file_writer import EventFileWriter  # noqa: E402


def simple_value(tag: str, value: float) -> summary_pb2.Summary.Value:
    """Return an old-style scalar (PyTorch, tensorboardX)."""
    return summary_pb2.Summary.Value(tag=tag, simple_value=value)


def tensor_value(tag: str, value: float, *, content: bool = True) -> summary_pb2.Summary.Value:
    """Return a new-style scalar (TF2/Keras), as tensor_content bytes or float_val."""
    if content:
        tensor = tensor_pb2.TensorProto(dtype=1, tensor_content=struct.pack("<f", value))
    else:
        tensor = tensor_pb2.TensorProto(dtype=2, double_val=[value])
    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
    )
    return summary_pb2.Summary.Value(tag=tag, tensor=tensor, metadata=metadata)


def write_events(
    logdir: Path, points: dict[str, tuple[np.ndarray, np.ndarray]], *, style: str = "simple"
) -> Path:
    """Write ``points`` (tag -> steps, values) to a new event file in ``logdir``; return it."""
    logdir.mkdir(parents=True, exist_ok=True)
    writer = EventFileWriter(str(logdir))
    for tag, (steps, values) in points.items():
        for step, value in zip(steps, values, strict=True):
            if style == "simple":
                item = simple_value(tag, float(value))
            else:
                item = tensor_value(tag, float(value), content=style == "tensor")
            writer.add_event(
                event_pb2.Event(
                    step=int(step), wall_time=1.0, summary=summary_pb2.Summary(value=[item])
                )
            )
    writer.close()
    (path,) = [p for p in logdir.iterdir() if "tfevents" in p.name and p.stat().st_mtime]
    return path
