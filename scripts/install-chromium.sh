#!/usr/bin/env bash
# Make Debian's `chromium` available for the browser tests (tests/browser: playwright for Python
# drives it through executable_path; no browser is downloaded). A no-op when chromium is already
# installed. Without root or apt it says so and continues: the browser tests are then skipped
# locally (and fail under CI=true).
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) >/dev/null 2>&1 \
    || echo "install-chromium: apt-get install chromium failed; browser tests will be skipped" >&2
else
  echo "install-chromium: not root or no apt-get; install the 'chromium' package for the browser tests" >&2
fi
exit 0
