#!/usr/bin/env bash
# Installs Debian's Chromium for the browser test (Playwright drives it; nothing downloads a browser).
# Never fails the build: where Chromium cannot be installed, the e2e test skips and says why.
set -u

CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"

if [ -x "$CHROMIUM" ]; then
    echo "install_chromium: $CHROMIUM is present"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium: no apt-get on this machine; the browser test will be skipped." \
         "Install Chromium at $CHROMIUM (or set CHROMIUM_PATH) to run it."
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "install_chromium: not root and no passwordless sudo; the browser test will be skipped." \
             "Run 'sudo apt-get install -y chromium' to enable it."
        exit 0
    fi
fi

export DEBIAN_FRONTEND=noninteractive
if $SUDO apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
   || { $SUDO apt-get update -qq >/dev/null 2>&1 \
        && $SUDO apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; }; then
    echo "install_chromium: installed $(command -v chromium || echo chromium)"
else
    echo "install_chromium: 'apt-get install chromium' failed (offline or no such package);" \
         "the browser test will be skipped."
fi
exit 0
