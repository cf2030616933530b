"""The base of every config section: strict, frozen, one-line text values. Its own module so that each
regularizer module declares its section of the schema without importing config.py (which derives the
`regularizer:` section from them). Torch-free, like config.py.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

MAX_TEXT_LENGTH = 4096  # any text value (a path is at most 4096 bytes on Linux)
NEW_IN = "new_in"  # json_schema_extra key: the release a key was added in (fingerprints leave it out at its default)

Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]
NonNegative = Annotated[float, Field(ge=0.0)]


class Section(BaseModel):
    # extra="forbid": a typo is an error naming the key, not a silently ignored setting.
    # allow_inf_nan=False: lr=.inf or l2=.nan cannot train; refused here rather than diverging at epoch 1.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, str_max_length=MAX_TEXT_LENGTH)

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        # a NUL breaks every path; a newline would become a shell line in an sbatch script; escapes reach terminals
        texts = [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)] \
            if isinstance(value, list) else []
        if any(ord(char) < 32 or ord(char) == 127 for text in texts for char in text):
            raise ValueError("must be one line: no newlines or other control characters")
        return value

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_as_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        # YAML's `true` would otherwise pass as 1 (epochs: true → one epoch; hidden_sizes: [yes] → [1])
        if isinstance(value, bool) and cls.model_fields[str(info.field_name)].annotation is not bool:
            raise ValueError("expected a number or text, not true/false")
        if isinstance(value, list) and any(isinstance(item, bool) for item in value):
            raise ValueError("expected numbers or text in the list, not true/false")
        return value


def without_new_defaults(model: type[BaseModel], values: dict[str, Any]) -> dict[str, Any]:
    """`values` (a section dumped as JSON) less every key added after sweep and tune folders were first
    fingerprinted (its field says `new_in`) where it has its default, section by section: a folder made before
    the key existed keeps its fingerprint, and so resumes, while a run that sets the key is a new sweep."""
    kept = {}
    for key, value in values.items():
        field = model.model_fields.get(key)
        extra = field.json_schema_extra if field is not None and isinstance(field.json_schema_extra, dict) else {}
        if field is not None and NEW_IN in extra and value == field.default:
            continue
        sections = [t for t in getattr(field.annotation, "__args__", (field.annotation,))
                    if isinstance(t, type) and issubclass(t, BaseModel)] if field is not None else []
        kept[key] = without_new_defaults(sections[0], value) if sections and isinstance(value, dict) else value
    return kept
