"""Where each field sits in the YAML text: line and column of every key, for compiler-style findings.

The documents are composed once into PyYAML nodes (which carry their start marks) and constructed from the
same nodes, so positions and values always come from one parse. A field path is the one
:func:`tasks.manifests.paths.join_path` renders (``spec.workerGroupSpecs[0].rayStartParams.num-cpus``).
"""

from __future__ import annotations

from typing import Any

import yaml

from tasks.manifests.paths import child

Position = tuple[int, int]  # (line, column), both 1-based
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_with_positions(text: str) -> list[tuple[Any, dict[str, Position]]]:
    """Parse a YAML stream into ``(document, {field path: (line, column)})`` pairs, in file order.

    Args:
        text: the YAML text (several ``---`` documents allowed).

    Returns:
        one pair per document; an empty document is ``(None, {})``. For a mapping entry the position is
        its key's; for a list item, the item's first character; ``""`` is the document's first node.

    Raises:
        yaml.YAMLError: the text is not valid YAML (with ``problem_mark`` when PyYAML knows the place).
    """
    loader = _LOADER(text)
    out: list[tuple[Any, dict[str, Position]]] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            index: dict[str, Position] = {}
            if node is not None:
                _walk(node, "", index)
                index[""] = _mark(node)
            out.append((loader.construct_document(node) if node is not None else None, index))
    finally:
        loader.dispose()
    return out


def _mark(node: yaml.Node) -> Position:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _walk(node: yaml.Node, path: str, index: dict[str, Position]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                continue
            here = child(path, str(key.value))
            index[here] = _mark(key)
            _walk(value, here, index)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            here = child(path, i)
            index[here] = _mark(item)
            _walk(item, here, index)


def locate(index: dict[str, Position], field: str) -> Position | None:
    """Return the position of ``field``, or of its nearest present parent (a missing required field points at
    the mapping that lacks it); None when the index is empty."""
    candidate = field
    while True:
        if candidate in index:
            return index[candidate]
        if not candidate:
            return None
        cut = max(candidate.rfind("."), candidate.rfind("["))
        candidate = candidate[:cut] if cut > 0 else ""
