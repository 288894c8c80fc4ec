"""Dagster warnings about Dagster's own use of its beta parameters: nothing a user can act on.

`load_from_defs_folder` loads the defs folder (the project's tenant included) inside
`warnings.catch_warnings()`, so filters set while our modules are imported there are gone
once it returns; definitions.py sets them before it loads anything.
"""

import warnings

from dagster import BetaWarning

QUIET = (
    # BackfillPolicy.single_run() is what makes a range one run. Dagster marks the parameter
    # beta and warns wherever the code location loads (about three times a run).
    "Parameter `backfill_policy` of function `asset` is currently in beta",
    # Dagster copies an asset's inline check specs into an AssetChecksDefinition when it
    # builds the asset graph (repository_data.get_asset_checks_defs_by_key), after the load.
    "Parameter `execution_type` of function `AssetsDefinition.__init__` is currently in beta",
)


def quiet_dagster_warnings() -> None:
    """Idempotent: filterwarnings replaces an identical filter rather than adding one."""
    for message in QUIET:
        warnings.filterwarnings("ignore", message=message, category=BetaWarning)
