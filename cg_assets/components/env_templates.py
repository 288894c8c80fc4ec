"""How a defs.yaml attribute written as an environment variable template is read.

`"{{ env.NAME }}"` (or `"{{ env('NAME') }}"`, or `"{{ env('NAME', 'fallback') }}"`) is not
rendered by Dagster's templating for our attributes; it is read here:

- **A secret** is `dagster.EnvVar("NAME")`. Dagster's rendering would put the variable's
  value into the component's attributes, and from there into the resource config, the
  repository snapshot and the UI; an EnvVar's value is looked up only when it is used (a
  run's resources when the run starts, the alert webhook when the alert sensor ticks).
- **A setting** is the variable's text, parsed by the variable's own rule
  (cg_assets/settings.py, the same parser as `make run`'s pre-check) and named by it when
  refused. Dagster's rendering (jinja's native types) would `literal_eval` the text
  (`10,60` becomes a tuple, `1e3` a float, `08` stays text) and give None for an unset
  variable, which a typed attribute with a default refuses. Here an unset or blank
  variable is the fallback given in the template, else the attribute's default.

Any other value or template is rendered by Dagster as usual, then checked by the rule.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Annotated, Any

from dagster import EnvVar, ResolutionContext, Resolver

from cg_assets.settings import Rule

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_ENV_TEMPLATE = re.compile(
    rf"""^\{{\{{\s*env(?:\.(?P<dotted>{_NAME})|\(\s*(?P<q>['"])(?P<called>{_NAME})(?P=q)"""
    r"""\s*(?:,\s*(?P<q2>['"])(?P<fallback>[^'"]*)(?P=q2)\s*)?\))\s*\}\}$"""
)


@dataclass(frozen=True)
class EnvTemplate:
    variable: str
    fallback: str | None = None


def env_template_of(raw: Any) -> EnvTemplate | None:
    """The variable (and fallback) of `{{ env.NAME }}` / `{{ env('NAME'[, 'fallback']) }}`."""
    if not isinstance(raw, str):
        return None
    match = _ENV_TEMPLATE.match(raw.strip())
    if match is None:
        return None
    return EnvTemplate(match.group("dotted") or match.group("called"), match.group("fallback"))


def env_var_of(raw: str) -> EnvVar | None:
    """EnvVar("NAME") for `{{ env.NAME }}` or `{{ env('NAME') }}`, else None."""
    template = env_template_of(raw)
    if template is None or template.fallback is not None:
        return None
    return EnvVar(template.variable)


def _is_set(env_var: EnvVar) -> bool:
    return bool(os.environ.get(env_var.env_var_name, "").strip())


def _secret(raw: Any, drop_if_unset: bool) -> EnvVar | None:
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
    # An optional secret whose variable is not set where the code location loads is no
    # secret: an EnvVar of an unset variable would fail every run of the resource (even in
    # keep mode, for the PII key). Only the name is looked at, never shown.
    if drop_if_unset and not _is_set(env_var):
        return None
    return env_var


def _kept_secret(context: ResolutionContext, raw: Any) -> EnvVar | None:
    return _secret(raw, drop_if_unset=False)


def _dropped_if_unset_secret(context: ResolutionContext, raw: Any) -> EnvVar | None:
    return _secret(raw, drop_if_unset=True)


def _identifier(context: ResolutionContext, raw: Any) -> EnvVar | str:
    env_var = env_var_of(str(raw))
    # Not a secret: a literal client id is allowed (and templates other than env render).
    return env_var if env_var is not None else str(context.resolve_value(raw, as_type=str))


def secret_field(
    description: str, required: bool = True, keep_when_unset: bool = False
) -> Resolver:
    """A secret attribute, `"{{ env.NAME }}"` only, resolved to `EnvVar("NAME")`.

    An optional one whose variable is unset where the code location loads is None, as if
    not written, unless `keep_when_unset`: then the EnvVar stays, and whatever reads it
    says the variable is unset when it does (the alert sensor skips, naming it), rather
    than the feature vanishing without a word.
    """
    return Resolver(
        _kept_secret if required or keep_when_unset else _dropped_if_unset_secret,
        model_field_type=str,
        inject_before_resolve=False,
        description=description,
    )


Secret = Annotated[EnvVar, secret_field('A secret, as "{{ env.NAME }}".')]
OptionalSecret = Annotated[
    EnvVar | None, secret_field('A secret, as "{{ env.NAME }}".', required=False)
]


def identifier_field(description: str) -> Resolver:
    return Resolver(
        _identifier, model_field_type=str, inject_before_resolve=False, description=description
    )


class Unset:
    """An attribute left to its default: an env template of an unset or blank variable, a
    blank or null value. The component drops it before pydantic sees it."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET = Unset()


@dataclass(frozen=True)
class FromVariable:
    """An attribute's value read from a variable: the component names the variable (not the
    attribute) when it refuses the value together with another (a start date in the future
    of its time zone, a headers deadline longer than the response's)."""

    value: Any
    variable: str


def setting_field(rule: Rule, model_field_type: Any) -> Resolver:
    """An attribute that is a setting: read by `rule` (see the module docstring)."""

    def resolve(context: ResolutionContext, raw: Any) -> Any:
        template = env_template_of(raw)
        if template is not None:
            text = os.environ.get(template.variable)
            if not rule.is_unset(text):
                return FromVariable(rule.from_text(str(text), template.variable), template.variable)
            if template.fallback is None:
                return UNSET
            return rule.from_text(template.fallback, name=f"{template.variable}'s fallback")
        value = context.resolve_value(raw)
        if value is None or (isinstance(value, str) and rule.is_unset(value)):
            return UNSET
        # Text is the variable's form (per_page: "50", http_timeout: "10,60"), so an attribute
        # accepts what its variable accepts.
        return rule.from_text(value, name=rule.name) if isinstance(value, str) else value

    return Resolver(
        resolve,
        model_field_type=model_field_type,
        inject_before_resolve=False,
        description=rule.description,
    )
