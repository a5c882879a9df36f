"""A provider module whose import raises SystemExit (tests/test_provider_contract.py): importing
a factory's module runs provider code too. Never imported by test collection (no test_ prefix)."""

raise SystemExit(3)


def create(settings: dict) -> object:  # never reached
    return object()
