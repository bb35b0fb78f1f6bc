"""Helpers shared by the tests: a recording server, the OData grammar oracle, a webhook
receiver for the sandbox tests."""
