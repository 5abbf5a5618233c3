#!/usr/bin/env bash
# Installs the independent Standard Webhooks verifier used by
# crates/vouch-server/tests/it/webhooks/ (through tests/support/verify_webhook.py).
set -euo pipefail
python3 -c 'import standardwebhooks' 2>/dev/null || python3 -m pip install -q 'standardwebhooks==1.1.0' >/dev/null
python3 -c 'import standardwebhooks; print("standardwebhooks ok")'
