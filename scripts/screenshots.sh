#!/usr/bin/env bash
# Screenshots of every view of the buyer's web page, phone and desktop size,
# in headless Chromium against a real server (flashsale-http's example
# `screenshots`). Installs Chromium and ChromeDriver if missing.
#
#   scripts/screenshots.sh [DIR]     (default target/screenshots)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  apt-get update -qq && apt-get install -y -qq chromium chromium-driver
fi
dir=${1:-target/screenshots}
cargo run -q -p flashsale-http --example screenshots -- "$dir"
