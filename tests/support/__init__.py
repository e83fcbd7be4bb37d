"""Test support code shared by the test layers (in-memory doubles, fixed keys)."""
