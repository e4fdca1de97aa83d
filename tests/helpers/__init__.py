"""Helpers shared by the tests (tiny offline models); imported through fixtures in conftest.py."""
