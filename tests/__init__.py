"""The test suite of flinkey_async."""
