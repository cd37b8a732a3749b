"""Fixtures for every test folder."""

from tests.hub_cache import hub_cache, online_hub  # noqa: F401  (a private, offline hub cache; a stand-in hub)
