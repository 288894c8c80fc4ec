"""The names one CustomerGauge system takes in a code location.

Several systems (two regions, two business units) can share one code location: each is a
`Tenant` with its own prefix, and every name a Dagster instance keys state by derives from
it, so no two collide: asset keys and group, job, schedule and sensor names (and with them
sensor cursors and run keys), resource keys, the IO manager key, the pool, and the run
tag the sensor counts a day's attempts by.

The default prefix gives the names cg_assets always had (`customergauge/...` assets,
`customergauge_sync_job`, ...), so existing instances and run history keep their meaning.
The project's own tenant (`DEFAULT_TENANT`: its defs.yaml sets legacy_resource_keys) also
keeps its resource keys `customergauge` and `lake`; a component tenant's are always
prefixed, even with the default prefix. Every tenant's lake IO manager has a key of its own
(`customergauge_io_manager`, ...): none takes the code location's default `io_manager`, which
stays Dagster's for the user's own assets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dagster import AssetKey

DEFAULT_PREFIX = "customergauge"
# One asset key segment that is also a valid piece of a job, sensor, pool and resource name.
PREFIX_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"


def check_prefix(prefix: str) -> str:
    if not re.fullmatch(PREFIX_PATTERN, prefix):
        raise ValueError(
            f"key_prefix={prefix!r} is invalid: expected lower-case letters, digits and "
            "underscores, starting with a letter, at most 63 characters (for example "
            "customergauge_eu): it names the assets, jobs, sensors, resources and the pool."
        )
    return prefix


@dataclass(frozen=True)
class Tenant:
    prefix: str = DEFAULT_PREFIX
    # The env-driven code location's resource keys (see the module docstring).
    legacy_resource_keys: bool = False

    def __post_init__(self) -> None:
        check_prefix(self.prefix)

    @property
    def is_default(self) -> bool:
        return self.prefix == DEFAULT_PREFIX

    def key(self, table: str) -> AssetKey:
        return AssetKey([self.prefix, table])

    def name(self, suffix: str) -> str:
        """A job, schedule or sensor name: customergauge_sync_job, customergauge_eu_sync_job."""
        return f"{self.prefix}_{suffix}"

    def op_name(self, name: str) -> str:
        """Op names are unique in a code location, not just in their job."""
        return name if self.is_default else f"{name}_{self.prefix}"  # not a job name

    @property
    def group(self) -> str:
        return self.prefix

    @property
    def pool(self) -> str:
        """Runs that write this tenant's lake never overlap; another tenant's lake is not
        this pool's business, so its runs go on in parallel."""
        return self.name("lake")

    @property
    def client_resource_key(self) -> str:
        return "customergauge" if self.legacy_resource_keys else self.name("api")

    @property
    def lake_resource_key(self) -> str:
        return "lake" if self.legacy_resource_keys else self.name("lake")

    @property
    def lake_root_name(self) -> str:
        """How the docs and asset metadata name where this tenant's lake lives."""
        return "CG_LAKE_ROOT" if self.legacy_resource_keys else f"{self.prefix}.lake_root"

    @property
    def io_manager_key(self) -> str:
        # Never `io_manager`: taking the code location's default would make every asset of the
        # user's that returns something other than a polars DataFrame fail in our handle_output.
        return self.name("io_manager")


DEFAULT_TENANT = Tenant(legacy_resource_keys=True)
