"""is-json's `schema:`: checked and resolved when the experiment file is read, so that a schema
that cannot be used is one line before any call is paid, never a dead trace writer after.

Refused: a schema its meta-schema refuses; a `$ref` that does not resolve within the schema (a
typo in `#/$defs/...`) or that would be fetched (a remote or relative URI: nothing is fetched
while a run scores; the official meta-schemas, bundled with jsonschema, are found offline); a
loop of references that never descends into the answer (`{"$ref": "#"}`, two `$defs` naming
each other), on which validation would recurse forever. A schema that refers to itself under
`items` or `properties` (a tree) is fine: each step goes one level down the answer, whose depth
is bounded (bounded_json.MAX_JSON_DEPTH).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

_REFS = ("$ref", "$dynamicRef", "$recursiveRef")


class _Map:
    """The shape of a keyword whose value maps names to schemas."""


# keywords whose subschemas apply to the same instance: a cycle through them never ends
_IN_PLACE: tuple[tuple[type, tuple[str, ...]], ...] = (
    (dict, ("not", "if", "then", "else")),
    (list, ("allOf", "anyOf", "oneOf")),
    (_Map, ("dependentSchemas", "dependencies")),  # dependencies: lists are property names
)
# keywords whose subschemas apply one level down the instance (or not at all: $defs)
_DESCENDING: tuple[tuple[type, tuple[str, ...]], ...] = (
    (
        dict,
        (
            "items",
            "additionalItems",
            "additionalProperties",
            "contains",
            "propertyNames",
            "unevaluatedItems",
            "unevaluatedProperties",
        ),
    ),
    (list, ("items", "prefixItems")),
    (_Map, ("properties", "patternProperties", "$defs", "definitions")),
)
# a schema's in-place edges: (the target's id, where the edge is, the reference if one)
Edges = dict[int, list[tuple[int, str, str | None]]]


class SchemaProblem(ValueError):
    """What is wrong with a schema, in one line (without the field's name)."""


def check(schema: dict[str, Any]) -> None:
    """SchemaProblem when the schema cannot be used to check answers (see the module)."""
    import jsonschema

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as e:
        raise SchemaProblem(f"not a valid JSON Schema: {e.message}") from None
    except RecursionError:  # a YAML alias inside itself
        raise SchemaProblem("contains itself (a YAML alias within its own anchor)") from None
    _find_loop(_in_place_edges(schema))


def validator(schema: dict[str, Any]) -> Any:
    """A jsonschema validator of `schema` that never fetches a reference."""
    import jsonschema

    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, registry=_offline_registry())


@functools.cache
def _offline_registry() -> Any:
    """No retrieval; the official meta-schemas, as jsonschema bundles them (jsonschema adds
    them itself when it validates)."""
    from jsonschema_specifications import REGISTRY
    from referencing import Registry

    return REGISTRY.combine(Registry(retrieve=_refuse))  # type: ignore[call-arg]


def _refuse(uri: str) -> Any:
    raise LookupError(f"{uri} is not fetched")


def _in_place_edges(schema: dict[str, Any]) -> Edges:
    """Every subschema reachable from `schema` (its references resolved), each with the
    subschemas it applies to the same instance."""
    from referencing import Resource
    from referencing.jsonschema import specification_with

    specification = specification_with(schema.get("$schema", ""), default=_latest())
    root = Resource.from_contents(schema, default_specification=specification)
    registry = _offline_registry().with_resource("", root)
    edges: Edges = {}
    kept = []  # the subschemas seen, alive so that no id is reused meanwhile
    pending = [(schema, registry.resolver_with_root(root), "#")]
    while pending:
        contents, resolver, where = pending.pop()
        if not isinstance(contents, dict) or id(contents) in edges:
            continue
        kept.append(contents)
        here = Resource.from_contents(contents, default_specification=specification)
        resolver = resolver.in_subresource(here)
        targets = edges[id(contents)] = []
        for keyword in _REFS:
            if isinstance(ref := contents.get(keyword), str):
                resolved = _lookup(resolver, ref, f"{where}/{keyword}")
                targets.append((id(resolved.contents), f"{where}/{keyword}", ref))
                pending.append((resolved.contents, resolved.resolver, f"{where}/{keyword}"))
        for step, child, in_place in _subschemas(contents):
            if in_place:
                targets.append((id(child), f"{where}/{step}", None))
            pending.append((child, resolver, f"{where}/{step}"))
    return edges


def _latest() -> Any:
    from referencing.jsonschema import DRAFT202012

    return DRAFT202012


def _lookup(resolver: Any, ref: str, where: str) -> Any:
    from referencing.exceptions import Unresolvable, Unretrievable

    try:
        return resolver.lookup(ref)
    except Unresolvable as e:
        if isinstance(e, Unretrievable) or isinstance(e.__cause__, Unretrievable):
            raise SchemaProblem(
                f"$ref {ref!r} at {where} is not within the schema: llmflow fetches no schema "
                "(put it under $defs)"
            ) from None
        raise SchemaProblem(f"$ref {ref!r} at {where} does not resolve") from None


def _subschemas(contents: dict[str, Any]) -> Iterator[tuple[str, Any, bool]]:
    """(the step from `contents`, a subschema, whether it applies to the same instance)."""
    for groups, in_place in ((_IN_PLACE, True), (_DESCENDING, False)):
        for shape, keywords in groups:
            for keyword in keywords:
                for step, child in _children(contents.get(keyword), shape):
                    yield f"{keyword}{step}", child, in_place


def _children(value: Any, shape: type) -> Iterator[tuple[str, dict[str, Any]]]:
    """The schemas in a keyword's value of this shape (dict: one; list or map: several)."""
    pairs: list[tuple[Any, Any]] = []
    if shape is dict and isinstance(value, dict):
        pairs = [("", value)]
    elif shape is list and isinstance(value, list):
        pairs = [(f"/{index}", child) for index, child in enumerate(value)]
    elif shape is _Map and isinstance(value, dict):
        pairs = [(f"/{name}", child) for name, child in value.items()]
    for step, child in pairs:
        if isinstance(child, dict):
            yield step, child


def _find_loop(edges: Edges) -> None:
    """SchemaProblem naming a reference that closes a cycle of in-place edges."""
    done: set[int] = set()
    for start in edges:
        if start in done:
            continue
        path = {start}
        stack = [(start, iter(edges[start]))]
        while stack:
            node, following = stack[-1]
            step = next(following, None)
            if step is None:
                stack.pop()
                path.discard(node)
                done.add(node)
                continue
            target, where, ref = step
            if target in path:
                shown = f"$ref {ref!r} at {where}" if ref is not None else where
                raise SchemaProblem(
                    f"{shown} loops back to itself without descending into the answer "
                    "(validation would never end)"
                )
            if target not in done and target in edges:
                path.add(target)
                stack.append((target, iter(edges[target])))
