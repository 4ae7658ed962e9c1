"""Keys for the test suite. They protect nothing.

The payload-codec key is fixed and committed because the histories in tests/histories/
were recorded with it, and replaying them must decode their payloads. The credential KEK
is generated afresh for every session (conftest.py).
"""

from __future__ import annotations

#: `CHARTER_PAYLOAD_KEYS` for tests: the key the committed histories are encrypted with.
TEST_PAYLOAD_KEY_ID = "charter-test-1"
TEST_PAYLOAD_KEYS = "charter-test-1:PR24gVNeDqkQpwB6yxgmMSHBti1M1wwrJ91QJmPH+sU="
