"""Any sync API that answers JSON, mapped onto the canonical status by configuration alone.

Teams run more sync services than we write adapters for, and each has a status API of its
own shape. A `generic:` block says where the syncs are (a list, a detail request, or both),
which JMESPath finds each field, and which provider status is which canonical state; every
path and state is checked at load time, so a wrong mapping fails the config, never a scrape.
Presets (`preset: fivetran`) are such blocks shipped in `exporter/presets/`, laid under the
source's own keys.
"""

from exporter.providers.generic.adapter import LIST_REUSE, Generic, _origin
from exporter.providers.generic.config import (
    MAX_RULES,
    DurationField,
    Fields,
    GenericApi,
    GenericAuth,
    GenericConfig,
    GenericSyncConfig,
    ListSpec,
    NumberField,
    Rule,
    TimeField,
)
from exporter.providers.generic.mapping import StatusMap
from exporter.providers.generic.presets import PRESET_KEYS, merged, preset, preset_names

__all__ = [
    "LIST_REUSE",
    "MAX_RULES",
    "PRESET_KEYS",
    "PROVIDER",
    "DurationField",
    "Fields",
    "Generic",
    "GenericApi",
    "GenericAuth",
    "GenericConfig",
    "GenericSyncConfig",
    "ListSpec",
    "NumberField",
    "Rule",
    "StatusMap",
    "TimeField",
    "_origin",
    "merged",
    "preset",
    "preset_names",
]

PROVIDER = Generic
