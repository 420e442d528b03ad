"""botbuilder's models to and from JSON at the edge's speed: msrest's deserializer made once (not per activity), and
a serializer that writes a model in one pass with the JSON msrest would write, a reply's cards put in as they are."""

from __future__ import annotations

import copy
import functools
from typing import Any

from azure.core.exceptions import DeserializationError, SerializationError
from botbuilder.core import CardFactory, MessageFactory
from botbuilder.schema import Activity, Attachment
from msrest.serialization import Deserializer, Model, Serializer

_JSON_SCALARS: dict[str, type] = {"str": str, "bool": bool, "int": int, "float": float}


class _Reply(Activity):  # type: ignore[misc]
    """An activity Gradebot sends: botbuilder deep-copies each one (a card's every node) before it sets the
    conversation's addresses on the copy; a shallow copy does, since a card is not changed once built."""

    def __deepcopy__(self, memo: dict[int, object]) -> _Reply:
        return copy.copy(self)


def card_message(card: dict[str, Any], activity_id: str | None = None) -> Activity:
    """A message holding one Adaptive Card, as MessageFactory.attachment(CardFactory.adaptive_card(card)) makes it;
    with an `activity_id`, the update that replaces the card posted as that activity."""
    reply = _Reply()
    reply.__dict__.update(MessageFactory.attachment(CardFactory.adaptive_card(card)).__dict__)
    reply.id = activity_id
    return reply


class ModelsAsJson(Serializer):
    """msrest's serializer for botbuilder's models in one pass: msrest's own raises and catches an exception for every
    unset attribute (most of an activity's fifty), re-deserializes a request body before serializing it, and walks
    every node of a card twice. Anything not plain JSON or a model goes through msrest itself, so the JSON is
    msrest's (tests/bot/test_read_path.py compares them)."""

    def body(self, data: Any, data_type: str, **kwargs: Any) -> Any:
        declared = self.dependencies.get(data_type)
        if isinstance(data, Model) and getattr(declared, "_attribute_map", None) is data._attribute_map and not kwargs:
            return self._model(data)  # msrest would first deserialize it again (as `declared`), in case it were a dict
        return super().body(data, data_type, **kwargs)  # type: ignore[no-untyped-call]

    def _serialize(self, target_obj: Any, data_type: str | None = None, **kwargs: Any) -> Any:
        plain = not (kwargs.get("keep_readonly") or kwargs.get("is_xml") or "key_transformer" in kwargs)
        if data_type is None and plain and isinstance(target_obj, Model) and not target_obj.is_xml_model():  # type: ignore[no-untyped-call]
            return self._model(target_obj)
        return super()._serialize(target_obj, data_type, **kwargs)  # type: ignore[no-untyped-call]

    def _model(self, model: Model) -> dict[str, Any]:
        serialized: dict[str, Any] = {}
        card_content = isinstance(model, Attachment) and isinstance(model.content, dict)
        for attribute, description in model._attribute_map.items():
            value = getattr(model, attribute)
            if value is None:
                continue
            if card_content and attribute == "content":
                serialized.setdefault(description["key"], value)
                continue
            try:
                serialized.setdefault(description["key"], self._value(value, description["type"]))
            except SerializationError:
                raise
            except ValueError:  # as msrest: an attribute it cannot serialize is left out
                continue
        return serialized

    def _value(self, value: Any, data_type: Any) -> Any:
        if _JSON_SCALARS.get(data_type) is type(value):
            return value
        if not isinstance(data_type, str):
            return self.serialize_data(value, data_type)  # type: ignore[no-untyped-call]
        if isinstance(value, Model) and data_type not in self.basic_types.values() and data_type[:1] not in "[{":
            return self._model(value)  # as msrest: a model by its own attributes, whatever type was declared
        if data_type[:1] == "[" and type(value) is list:
            return [self._item(item, data_type[1:-1]) for item in value]
        return self.serialize_data(value, data_type)  # type: ignore[no-untyped-call]

    def _item(self, item: Any, data_type: str) -> Any:
        try:
            return None if item is None else self._value(item, data_type)
        except SerializationError:
            raise
        except ValueError:  # as msrest: an item it cannot serialize is null
            return None


class ModelsFromJson(Deserializer):
    """msrest's deserializer, but a model's attributes are looked up once per key instead of through msrest's key
    extractors for every one of them (an activity has fifty, a message sets a dozen); each value present is still
    msrest's to read, and a model whose JSON is not an object, whose type has subtypes or whose keys are not plain
    names is msrest's altogether."""

    def _deserialize(self, target_obj: Any, data: Any) -> Any:
        model: Any = self.dependencies.get(target_obj) if isinstance(target_obj, str) else target_obj
        known = _plain_keys(model) if type(data) is dict else None
        if known is None:
            return super()._deserialize(target_obj, data)  # type: ignore[no-untyped-call]
        try:
            values = {
                attribute: self._read(data.get(described["key"]), described["type"])
                for attribute, described in model._attribute_map.items()
            }
        except (AttributeError, TypeError, KeyError) as exc:
            raise DeserializationError(f"Unable to deserialize to object: {model.__name__}") from exc
        extra = {key: data[key] for key in data.keys() - known}
        return self._instantiate_model(model, values, extra)  # type: ignore[no-untyped-call]

    def _read(self, raw: Any, data_type: str) -> Any:
        if raw is None or (data_type == "str" and type(raw) is str):  # what msrest returns for these, as they are
            return raw
        return self.deserialize_data(raw, data_type)  # type: ignore[no-untyped-call]


@functools.cache
def _plain_keys(model: Any) -> frozenset[str] | None:
    """The JSON keys of a model msrest reads as plain names (no subtypes, no flattened or escaped keys)."""
    if not (isinstance(model, type) and issubclass(model, Model) and "_subtype_map" not in vars(model)):
        return None
    keys = [described["key"] for described in model._attribute_map.values()]
    return frozenset(keys) if all(key and "." not in key and "\\" not in key for key in keys) else None


_MODELS = ModelsAsJson(Activity._infer_class_models())  # type: ignore[no-untyped-call]
_ACTIVITIES = ModelsFromJson(Activity._infer_class_models())  # type: ignore[no-untyped-call]


def to_json(model: Model) -> Any:
    """`model.serialize()`, in one pass."""
    return _MODELS.body(model, type(model).__name__)


def read_activity(body: dict[str, Any]) -> Activity:
    """`Activity().deserialize(body)` without building a deserializer for every activity; raises msrest's
    DeserializationError (a ValueError) for a body that is not an activity."""
    activity = _ACTIVITIES("Activity", body)
    assert isinstance(activity, Activity)
    return activity
