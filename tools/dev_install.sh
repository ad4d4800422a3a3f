#!/usr/bin/env bash
# Rebuild the development (editable) install after changing csrc/ or kernels/.
# Serialised with a lock so several people / processes rebuilding at once don't collide in build/.
set -euo pipefail
cd "$(dirname "$0")/.."
exec flock /tmp/disenttalk_fast-build.lock \
  pip install --no-build-isolation --no-deps -e . -q --disable-pip-version-check
