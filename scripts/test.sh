#!/usr/bin/env bash
# The project's test command: format and lint gates, then every test of the
# workspace. Tests run real programs (kubectl), so check they are here first.
set -euo pipefail
cd "$(dirname "$0")/.."

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "error: '$1' is required by the tests but was not found on PATH. $2" >&2
    exit 1
  fi
}
# Real neighbours from Debian: InfluxDB 1.x (the writer's tests), promtool
# (the /metrics tests) and headless Chromium with a font (the web view's tests).
# Installed here when missing and we may (root, apt-get).
missing=()
command -v influxd >/dev/null 2>&1 || missing+=(influxdb)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v chromium >/dev/null 2>&1 || missing+=(chromium fonts-dejavu-core)
# A real OCI registry and its inspector (the checkpoint image tests).
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "error: the tests need ${missing[*]} (Debian packages); run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
# Debian starts services on install where it can; the tests run their own, on loopback.
if command -v systemctl >/dev/null 2>&1; then systemctl stop influxdb prometheus docker-registry >/dev/null 2>&1 || true; fi

# schemathesis (PyPI) checks the API against its OpenAPI document; it lives in a
# virtualenv under target/ so nothing system-wide changes.
tools="$PWD/target/tools/venv"
if ! command -v schemathesis >/dev/null 2>&1 && [ ! -x "$tools/bin/schemathesis" ]; then
  if ! python3 -m venv --help >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> apt-get install python3-venv"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv python3-pip >/dev/null
  fi
  echo "==> pip install schemathesis (into $tools)"
  python3 -m venv "$tools" && "$tools/bin/pip" install -q schemathesis \
    || { echo "error: could not install schemathesis from PyPI (needs python3 with venv)" >&2; exit 1; }
fi
# The Python `kubernetes` client (PyPI) is one of the clients kube-sim is tested with.
if [ -x "$tools/bin/python3" ] && ! "$tools/bin/python3" -c "import kubernetes" >/dev/null 2>&1; then
  echo "==> pip install kubernetes (into $tools)"
  "$tools/bin/pip" install -q kubernetes || { echo "error: could not install the kubernetes client from PyPI" >&2; exit 1; }
fi
if [ -x "$tools/bin/schemathesis" ]; then export PATH="$tools/bin:$PATH"; fi

need cargo "Install the Rust toolchain (https://rustup.rs)."
need influxd "Install Debian's influxdb package."
need promtool "Install Debian's prometheus package."
need chromium "Install Debian's chromium package."
need docker-registry "Install Debian's docker-registry package."
need skopeo "Install Debian's skopeo package."
need schemathesis "Install it with: pip install schemathesis."
need kubectl "It is preinstalled on the project's machine image (/usr/bin/kubectl, v1.32); install a kubectl 1.27-1.33 binary. Do not install Debian's kubernetes-client."

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "==> tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
  # nextest does not run doctests
  cargo test --workspace --doc --quiet
else
  cargo test --workspace --no-fail-fast "$@"
fi
