"""What every settings slice is made of: a strict, frozen TOML table and the shared value types.

Each domain declares its own table (`bridge/<domain>/settings.py`) as a `Section`: an
unknown key is an error, the values are frozen once validated. `bridge.settings` composes
the slices into the whole configuration and reads the file.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Port = Annotated[int, Field(ge=0, le=65535)]
Seconds = Annotated[float, Field(gt=0)]


class Section(BaseModel):
    """One table of the settings file: unknown keys are refused, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)
