#!/usr/bin/env bash
# Installs what the browser tests need: Debian's Chromium and playwright-core
# (the driver only; it never downloads a browser of its own).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if ! command -v /usr/bin/chromium >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  # Another process may hold the dpkg lock; wait for it rather than fail.
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -q
  $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends \
    chromium fonts-dejavu-core
fi

cd "$here"
# Installed when any pinned dev dependency is missing or at another version.
if ! node -e '
  const deps = require("./package.json").devDependencies;
  for (const [name, version] of Object.entries(deps)) {
    if (require(`./node_modules/${name}/package.json`).version !== version) process.exit(1);
  }' 2>/dev/null; then
  # playwright-core never fetches browsers; keep it from trying anyway.
  export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
  if [ -f package-lock.json ]; then
    npm ci --no-audit --no-fund
  else
    npm install --no-audit --no-fund
  fi
fi
