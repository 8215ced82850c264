"""The breaker policy is written in models from several modules (markets, rules, setters, calibration);
an unknown key anywhere is answered with a suggestion drawn from all of them, not only risk.breaker_policy."""

from __future__ import annotations

from types import ModuleType

import pytest
from derivatives_fixtures import MINIMAL_BREAKERS
from pydantic import BaseModel

from risk import breaker_calibration, breaker_markets, breaker_policy, breaker_rules, breaker_setters
from risk.breaker_policy import _field_names, check_breaker_policy_text


@pytest.mark.parametrize("module", [breaker_markets, breaker_rules, breaker_setters, breaker_calibration, breaker_policy])
def test_suggestions_know_every_field_the_module_defines(module: ModuleType) -> None:
    models = [m for m in vars(module).values() if isinstance(m, type) and issubclass(m, BaseModel) and m.__module__ == module.__name__]
    assert models, f"{module.__name__} defines no models"
    known = set(_field_names())
    for model in models:
        assert set(model.model_fields) <= known, f"{model.__name__}: {sorted(set(model.model_fields) - known)}"


SOURCE = "        - {name: a, file: a.csv}\n"


@pytest.mark.parametrize(
    ("text", "typo", "suggested"),
    [
        (MINIMAL_BREAKERS.replace(SOURCE, SOURCE + "      fresh_withn: 2h\n"), "fresh_withn", "fresh_within"),  # risk.breaker_markets
        (MINIMAL_BREAKERS + "      detect: false\n", "detect", "detects"),  # risk.breaker_rules
        (MINIMAL_BREAKERS + "      change_limt: {max_relative: '50%'}\n", "change_limt", "change_limit"),  # the rule's on-chain part
        (MINIMAL_BREAKERS + "  calibration: {max_false_alarms_per_month: 1, max_detection_delay: 2h, calm_margn: 7d}\n", "calm_margn", "calm_margin"),
    ],
)
def test_a_typo_in_any_section_gets_a_suggestion(text: str, typo: str, suggested: str) -> None:
    policy, found = check_breaker_policy_text(text.encode(), "b.yaml")
    assert policy is None
    messages = [str(p) for p in found if typo in str(p)]
    assert messages and messages[0].endswith(f"unknown field; did you mean {suggested!r}?"), [str(p) for p in found]
