#!/usr/bin/env bash
# Set-up of `make test`: Debian's headless Chromium for the test that renders the report page
# (tests/test_workflow_report.py). Installed with apt where it is missing and this runs as
# root on Debian; elsewhere the test is skipped, with this message.
set -u
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian's chromium for the page rendering test (apt-get)..."
    if DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium \
        >/tmp/saliencybench-chromium.log 2>&1 ||
        { apt-get update -q >>/tmp/saliencybench-chromium.log 2>&1 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium \
                >>/tmp/saliencybench-chromium.log 2>&1; }; then
        exit 0
    fi
    echo "Could not install chromium (log: /tmp/saliencybench-chromium.log); the page rendering test will be skipped."
    exit 0
fi
echo "chromium is not installed and this is not root on Debian: the page rendering test will be skipped."
