"""Schemathesis hooks for scripts/fuzz-api.sh: the cases it must not send, each a known server bug
named with what to remove once it is fixed. None at the moment.

Loaded through SCHEMATHESIS_HOOKS=fuzz_api_hooks with scripts/ on PYTHONPATH. To exclude a case,
add a `@schemathesis.hook` `filter_case(ctx, case)` that returns False for it, with a comment
naming the bug and its fix.
"""
