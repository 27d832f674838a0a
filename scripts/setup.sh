#!/bin/sh
# setup.sh — installs the Debian packages swiftlet needs to build and test, only when
# one is missing (idempotent; `make` calls it through a stamp file). Also installs the
# npm packages of the end-to-end tests (the `openai` client) from tests/e2e/package.json.
set -e
PKGS="gcc make libc6-dev libmicrohttpd-dev libjansson-dev libpcre2-dev libxxhash-dev clang libclang-rt-14-dev libsimde-dev"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# node + npm may come from another repo (nodesource bundles npm); only add Debian's when absent
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -n "$missing" ]; then
  echo "setup: installing$missing"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi
need_npm=""
if [ -f tests/e2e/package.json ]; then
  # every dependency the e2e tests import must be there (a new one re-runs npm ci)
  for d in $(node -e 'console.log(Object.keys(require("./tests/e2e/package.json").dependencies || {}).join(" "))'); do
    [ -d "tests/e2e/node_modules/$d" ] || need_npm=1
  done
fi
if [ -n "$need_npm" ]; then
  echo "setup: npm install (tests/e2e)"
  (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
fi
exit 0
