"""A check's verdict in the two forms Dagster takes it: reported by a sensor
(`AssetCheckEvaluation`, as the settle and freshness sensors do) or yielded by a run that
executes the check (`AssetCheckResult`). Both carry the same fields."""

from typing import Any

from dagster import AssetCheckEvaluation, AssetCheckResult, AssetCheckSeverity, AssetKey


class CheckVerdict:
    """Mixed into a verdict that has these attributes (fields or properties)."""

    key: AssetKey
    check_name: str
    passed: bool
    severity: AssetCheckSeverity
    description: str
    metadata: Any

    def _fields(self) -> dict[str, Any]:
        return {
            "asset_key": self.key,
            "check_name": self.check_name,
            "passed": self.passed,
            "severity": self.severity,
            "description": self.description,
            "metadata": self.metadata,
        }

    def as_evaluation(self) -> AssetCheckEvaluation:
        return AssetCheckEvaluation(**self._fields())

    def as_result(self) -> AssetCheckResult:
        return AssetCheckResult(**self._fields())
