"""A minimal protobuf schema for TensorBoard event files, built at run time.

Only the fields lossdoctor reads are declared (field numbers from TensorBoard's
``event.proto``, ``summary.proto`` and ``tensor.proto``); everything else in a
record is skipped as unknown fields.  No generated code, no ``protoc``, no
TensorFlow: the schema is a ``FileDescriptorProto`` handed to the protobuf runtime.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "lossdoctor.tfevents"


def add_field(
    message: Any,
    name: str,
    number: int,
    kind: int,
    *,
    repeated: bool = False,
    type_name: str | None = None,
    oneof: int | None = None,
    package: str = _PACKAGE,
) -> None:
    """Declare field ``name`` = ``number`` of type ``kind`` on a ``DescriptorProto``
    (``type_name``: a message of ``package``)."""
    field = message.field.add(name=name, number=number, type=kind)
    field.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
    if type_name:
        field.type_name = f".{package}.{type_name}"
    if oneof is not None:
        field.oneof_index = oneof


_field = add_field

#: One field of :func:`message_class`: name, number, type name (``string``, ``int64``,
#: ``sint64``, ``double``, or a message declared before), and whether it repeats.
FieldSpec = tuple[str, int, str, bool]
_SCALAR_TYPES = {"string": _F.TYPE_STRING, "int64": _F.TYPE_INT64, "sint64": _F.TYPE_SINT64,
                 "double": _F.TYPE_DOUBLE}  # fmt: skip


def message_class(package: str, messages: dict[str, list[FieldSpec]]) -> Any:
    """Return the class of the last message of ``messages`` (name -> fields, in
    declaration order), built at run time in ``package``."""
    fdp = descriptor_pb2.FileDescriptorProto(
        name=f"{package.replace('.', '_')}.proto", package=package, syntax="proto3"
    )
    for name, fields in messages.items():
        message = fdp.message_type.add(name=name)
        for field_name, number, kind, repeated in fields:
            scalar = _SCALAR_TYPES.get(kind)
            add_field(message, field_name, number, scalar or _F.TYPE_MESSAGE, repeated=repeated,
                      type_name=None if scalar else kind, package=package)  # fmt: skip
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.{name}"))


@cache
def event_class() -> Any:
    """Return the generated ``Event`` message class (built once per process)."""
    fdp = descriptor_pb2.FileDescriptorProto(
        name="lossdoctor_tfevents.proto", package=_PACKAGE, syntax="proto3"
    )
    tensor = fdp.message_type.add(name="TensorProto")
    _field(tensor, "dtype", 1, _F.TYPE_INT32)
    _field(tensor, "tensor_content", 4, _F.TYPE_BYTES)
    _field(tensor, "float_val", 5, _F.TYPE_FLOAT, repeated=True)
    _field(tensor, "double_val", 6, _F.TYPE_DOUBLE, repeated=True)
    _field(tensor, "int_val", 7, _F.TYPE_INT32, repeated=True)
    _field(tensor, "int64_val", 10, _F.TYPE_INT64, repeated=True)
    _field(tensor, "half_val", 13, _F.TYPE_INT32, repeated=True)

    plugin = fdp.message_type.add(name="PluginData")
    _field(plugin, "plugin_name", 1, _F.TYPE_STRING)
    _field(plugin, "content", 2, _F.TYPE_BYTES)

    metadata = fdp.message_type.add(name="SummaryMetadata")
    _field(metadata, "plugin_data", 1, _F.TYPE_MESSAGE, type_name="PluginData")
    _field(metadata, "data_class", 4, _F.TYPE_INT32)

    value = fdp.message_type.add(name="Value")
    value.oneof_decl.add(name="value")
    _field(value, "tag", 1, _F.TYPE_STRING)
    _field(value, "simple_value", 2, _F.TYPE_FLOAT, oneof=0)
    _field(value, "tensor", 8, _F.TYPE_MESSAGE, type_name="TensorProto", oneof=0)
    _field(value, "metadata", 9, _F.TYPE_MESSAGE, type_name="SummaryMetadata")

    summary = fdp.message_type.add(name="Summary")
    _field(summary, "value", 1, _F.TYPE_MESSAGE, repeated=True, type_name="Value")

    session_log = fdp.message_type.add(name="SessionLog")
    _field(session_log, "status", 1, _F.TYPE_INT32)

    event = fdp.message_type.add(name="Event")
    event.oneof_decl.add(name="what")
    _field(event, "wall_time", 1, _F.TYPE_DOUBLE)
    _field(event, "step", 2, _F.TYPE_INT64)
    _field(event, "file_version", 3, _F.TYPE_STRING, oneof=0)
    _field(event, "summary", 5, _F.TYPE_MESSAGE, type_name="Summary", oneof=0)
    _field(event, "session_log", 7, _F.TYPE_MESSAGE, type_name="SessionLog", oneof=0)

    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.Event"))
