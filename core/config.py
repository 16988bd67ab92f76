"""The parsed options, read by attribute: ``config.data_dir``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .options import Option


class Config:
    def __init__(self, values: Mapping[str, Any], options: Iterable[Option] = ()) -> None:
        self._values = dict(values)
        self.options = {o.dest: o for o in options}

    @classmethod
    def from_options(cls, options: Iterable[Option], **overrides: Any) -> Config:
        """Defaults of `options`, with `overrides` (keyword names use underscores)."""
        options = list(options)
        values = {o.dest: o.default for o in options}
        for key, value in overrides.items():
            option = next((o for o in options if o.dest == key), None)
            values[key] = option.convert(value) if option and isinstance(value, str) else value
        return cls(values, options)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(f"no option {name!r}") from None

    def get(self, name: str, default: Any = None) -> Any:
        return self._values.get(name.replace("-", "_"), default)

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def replace(self, **changes: Any) -> Config:
        return Config({**self._values, **changes}, self.options.values())
