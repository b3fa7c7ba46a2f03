#!/usr/bin/env bash
# Make the real `promtool` available for the observability tests (Debian/Ubuntu package
# `prometheus`). A no-op when promtool is already on PATH. Without root or apt it says so and
# continues: the tests that need promtool are then skipped locally (and required under CI=true).
if command -v promtool >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) >/dev/null 2>&1 \
    || echo "install-promtool: apt-get install prometheus failed; promtool tests will be skipped" >&2
else
  echo "install-promtool: not root or no apt-get; install the 'prometheus' package for promtool" >&2
fi
exit 0
