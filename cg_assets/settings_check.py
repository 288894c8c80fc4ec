"""`make run` checks the settings before it starts anything: `python -m cg_assets.settings_check`.

A bad setting would otherwise start the UI with a broken code location (the message buried
in a traceback; the project's defs.yaml reads every CG_* variable when it loads), and a
half-set pair of credentials would silently start the demo. The same rules read the
variables here and in the defs.yaml (cg_assets/settings.py), so both refuse a value alike.

This prints the mode on stdout (`demo` or `tenant`) and exits 0, or prints a few lines
naming the variable on stderr and exits 2. No traceback, no Dagster import: it answers
within a second. Besides what the defs.yaml checks it checks what a run needs: the
credentials and a region, the lake root (a supported scheme, writable), the deltalake
package for the delta format, the keys the personal-data settings need.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping

from cg_assets.lake.parquet_lake import NAMESPACE
from cg_assets.lake.root_check import check_lake_root
from cg_assets.privacy.requirements import keyring_from_env, require_keys
from cg_assets.privacy.suppression import SUPPRESSED_DIR
from cg_assets.settings import (
    DEFAULT_LAKE_ROOT,
    RULES,
    ClientSettings,
    LoadSettings,
    PrivacySettings,
    SettingsError,
    lake_root_from_env,
    table_format_from_env,
)

DEMO = "demo"
TENANT = "tenant"
EXIT_BAD_SETTING = 2
CREDENTIALS = ("CG_CLIENT_ID", "CG_CLIENT_SECRET")
# The demo points the client at the bundled simulator itself (scripts/run-demo); the other
# client settings (timeouts, rates, CG_EXTRA_PARAMS) apply to it as they would to a tenant.
DEMO_URLS = {"CG_API_URL": "http://127.0.0.1", "CG_AUTH_URL": "http://127.0.0.1/oauth2/token"}
# The lake each mode uses when CG_LAKE_ROOT is unset (scripts/run-demo, from the project folder).
MODE_LAKE_ROOTS = {DEMO: "data/demo-lake", TENANT: DEFAULT_LAKE_ROOT}


def _is_set(env: Mapping[str, str], name: str) -> bool:
    return bool(env.get(name, "").strip())


def check(env: Mapping[str, str]) -> str:
    """The mode `make run` starts in; raises SettingsError naming the variable. The same
    parsers as the runs' (cg_assets/settings.py), so what passes here passes there."""
    LoadSettings.from_env(env)
    mode = _mode(env)
    root = lake_root_from_env(env) if _is_set(env, "CG_LAKE_ROOT") else MODE_LAKE_ROOTS[mode]
    check_lake_root(root)
    _check_table_format(env)
    RULES["adopt_api"].read(env)
    _check_privacy(env, root)
    return mode


def _mode(env: Mapping[str, str]) -> str:
    given = [name for name in CREDENTIALS if _is_set(env, name)]
    if len(given) == 1:
        missing = next(name for name in CREDENTIALS if name not in given)
        raise SettingsError(
            f"{given[0]} is set but {missing} is not: set both to use your CustomerGauge "
            "tenant (docs/getting-started.md: From the demo to your tenant), or unset both for "
            "the demo with the bundled simulator."
        )
    if not given:
        ClientSettings.from_env({**env, **DEMO_URLS})
        return DEMO
    ClientSettings.from_env(env)  # region or URLs: fail now rather than at the first run
    return TENANT


def _check_table_format(env: Mapping[str, str]) -> None:
    if table_format_from_env(env) == "delta" and importlib.util.find_spec("deltalake") is None:
        raise SettingsError(
            "CG_TABLE_FORMAT=delta needs the deltalake package, which is not installed: "
            "install the project's delta extra (pip install -e '.[delta]'; make run's dev "
            "extras include it), or unset CG_TABLE_FORMAT for Parquet."
        )


def _check_privacy(env: Mapping[str, str], root: str) -> None:
    """Mode, retention and segments parse; the keys they need are set and long enough. A
    local lake's suppression list needs a key too (an object store's is checked by the run,
    which reads it anyway)."""
    settings = PrivacySettings.from_env(env)
    keyring = keyring_from_env(env)
    local = "://" not in root or root.startswith("file://")
    folder = os.path.join(root.removeprefix("file://"), NAMESPACE, SUPPRESSED_DIR)
    listed = (
        local and os.path.isdir(folder) and any(n.endswith(".parquet") for n in os.listdir(folder))
    )
    require_keys(settings, keyring, suppression_list=listed)


def main(env: Mapping[str, str] | None = None) -> int:
    try:
        mode = check(os.environ if env is None else env)
    except SettingsError as exc:
        print(f"make run: {exc}", file=sys.stderr)
        print(
            "Nothing was started. Fix the variable (docs/configuration.md) and run it again.",
            file=sys.stderr,
        )
        return EXIT_BAD_SETTING
    print(mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
