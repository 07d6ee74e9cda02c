"""JSON merge patch (RFC 7386) and JSON patch (RFC 6902) for the API double.

Both work on plain JSON values (dicts, lists, str, int, float, bool, None) and
never change their inputs. ``PatchError`` says why a patch cannot apply; the server
answers it with 422, as the API server does for a JSON patch whose operation
fails (``test`` included). ``PatchFormatError`` is a patch that is not a patch
at all; the server answers 400.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = [
    "PatchError",
    "PatchFormatError",
    "apply_json_patch",
    "json_equal",
    "merge_patch",
]


class PatchError(ValueError):
    """A well-formed patch that cannot be applied to this document."""


class PatchFormatError(ValueError):
    """A body that is not a patch of the declared type."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: null deletes a member, objects merge, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def apply_json_patch(document: Any, operations: Any) -> Any:
    """RFC 6902: apply every operation in order, all or nothing."""
    if not isinstance(operations, list):
        raise PatchFormatError("a JSON patch must be an array of operations")
    result = copy.deepcopy(document)
    for index, operation in enumerate(operations):
        if not isinstance(operation, dict) or "op" not in operation:
            raise PatchFormatError(f"operation {index} has no 'op'")
        result = _apply_operation(result, operation)
    return result


def _apply_operation(document: Any, operation: dict[str, Any]) -> Any:
    op = operation["op"]
    path = _pointer(operation, "path")
    if op == "add":
        return _add(document, path, copy.deepcopy(_member(operation, "value")))
    if op == "remove":
        return _remove(document, path)[0]
    if op == "replace":
        if not path:
            return copy.deepcopy(_member(operation, "value"))
        document, _ = _remove(document, path)
        return _add(document, path, copy.deepcopy(_member(operation, "value")))
    if op == "move":
        source = _pointer(operation, "from")
        if path[: len(source)] == source and len(path) > len(source):
            raise PatchError(f"cannot move {source} into its own child {path}")
        document, value = _remove(document, source)
        return _add(document, path, value)
    if op == "copy":
        value = copy.deepcopy(_resolve(document, _pointer(operation, "from")))
        return _add(document, path, value)
    if op == "test":
        expected = _member(operation, "value")
        if not json_equal(_resolve(document, path), expected):
            raise PatchError(f"testing value /{'/'.join(path)} failed")
        return document
    raise PatchFormatError(f"unexpected kind of operation {op!r}")


def _member(operation: dict[str, Any], name: str) -> Any:
    if name not in operation:
        raise PatchFormatError(f"operation {operation['op']!r} lacks {name!r}")
    return operation[name]


def _pointer(operation: dict[str, Any], name: str) -> list[str]:
    """Split an RFC 6901 pointer into unescaped reference tokens."""
    pointer = _member(operation, name)
    if not isinstance(pointer, str) or (pointer and not pointer.startswith("/")):
        raise PatchFormatError(f"invalid JSON pointer {pointer!r}")
    if pointer == "":
        return []
    return [
        part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")
    ]


def _resolve(document: Any, path: list[str]) -> Any:
    node = document
    for token in path:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, allow_end=False)]
        else:
            raise PatchError(f"path /{'/'.join(path)} does not exist")
    return node


def _index(array: list[Any], token: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(array)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r}")
    index = int(token)
    if index > len(array) or (index == len(array) and not allow_end):
        raise PatchError(f"array index {index} out of bounds")
    return index


def _add(document: Any, path: list[str], value: Any) -> Any:
    if not path:
        return value
    parent = _resolve(document, path[:-1])
    token = path[-1]
    if isinstance(parent, dict):
        parent[token] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, token, allow_end=True), value)
    else:
        raise PatchError(f"cannot add at /{'/'.join(path)}: parent is not a container")
    return document


def _remove(document: Any, path: list[str]) -> tuple[Any, Any]:
    if not path:
        raise PatchError("cannot remove the whole document")
    parent = _resolve(document, path[:-1])
    token = path[-1]
    if isinstance(parent, dict) and token in parent:
        return document, parent.pop(token)
    if isinstance(parent, list):
        return document, parent.pop(_index(parent, token, allow_end=False))
    raise PatchError(f"path /{'/'.join(path)} does not exist")


def json_equal(left: Any, right: Any) -> bool:
    """Equality of JSON values: unlike ``==``, true is not 1 and 1 is not "1"."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(
            json_equal(left[key], right[key]) for key in left
        )
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(json_equal, left, right))
    numbers = (int, float)
    if isinstance(left, numbers) and isinstance(right, numbers):
        return left == right
    return type(left) is type(right) and left == right
