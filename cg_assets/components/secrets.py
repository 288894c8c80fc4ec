"""Secrets in a defs.yaml: `"{{ env.NAME }}"` is read as `dagster.EnvVar("NAME")`.

Dagster's own template resolution would put the variable's value into the component's
attributes, and from there into the resource config, the repository snapshot and the UI.
The resolver below reads the template itself, without rendering it: the value is looked up
only when a run starts, like any EnvVar.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from dagster import EnvVar, ResolutionContext, Resolver

_ENV_TEMPLATE = re.compile(
    r"""^\{\{\s*env(?:\.([A-Za-z_][A-Za-z0-9_]*)|\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]\s*\))\s*\}\}$"""
)


def env_var_of(raw: str) -> EnvVar | None:
    """EnvVar("NAME") for `{{ env.NAME }}` or `{{ env('NAME') }}`, else None."""
    match = _ENV_TEMPLATE.match(raw.strip())
    if match is None:
        return None
    return EnvVar(match.group(1) or match.group(2))


def _secret(context: ResolutionContext, raw: Any) -> EnvVar | None:
    if raw is None:
        return None
    env_var = env_var_of(str(raw))
    if env_var is None:
        # Not echoed: the value given may be the secret itself.
        raise ValueError(
            "a secret must be written as an environment variable template, for example "
            '"{{ env.CG_CLIENT_SECRET }}": a literal value would be stored in the code '
            "location's snapshot and shown in the UI."
        )
    return env_var


def _identifier(context: ResolutionContext, raw: Any) -> EnvVar | str:
    env_var = env_var_of(str(raw))
    # Not a secret: a literal client id is allowed (and templates other than env render).
    return env_var if env_var is not None else str(context.resolve_value(raw, as_type=str))


def secret_field(description: str) -> Resolver:
    return Resolver(
        _secret, model_field_type=str, inject_before_resolve=False, description=description
    )


Secret = Annotated[EnvVar, secret_field('A secret, as "{{ env.NAME }}".')]
OptionalSecret = Annotated[EnvVar | None, secret_field('A secret, as "{{ env.NAME }}".')]


def identifier_field(description: str) -> Resolver:
    return Resolver(
        _identifier, model_field_type=str, inject_before_resolve=False, description=description
    )
