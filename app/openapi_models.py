"""Request bodies that routes parse themselves but the OpenAPI document should still describe."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

_MODELS: list[type[BaseModel]] = []


def body_schema(model: type[BaseModel], *, array_too: bool = False) -> dict[str, Any]:
    """``openapi_extra`` declaring ``model`` as the JSON request body (and remember the model)."""
    if model not in _MODELS:
        _MODELS.append(model)
    ref: dict[str, Any] = {"$ref": f"#/components/schemas/{model.__name__}"}
    schema = {"oneOf": [ref, {"type": "array", "items": ref}]} if array_too else ref
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def add_component_schemas(schema: dict[str, Any]) -> dict[str, Any]:
    """Put the remembered models (and the models they use) into ``components.schemas``."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in _MODELS:
        generated = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in generated.pop("$defs", {}).items():
            components.setdefault(name, sub)
        components.setdefault(model.__name__, generated)
    schema["components"]["schemas"] = dict(sorted(components.items()))
    return schema
