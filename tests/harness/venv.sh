# Sourced by the Python suites' run.sh (OpenFeature, schemathesis, the Python client, the
# console's browser tests): make_venv DIR makes a fresh virtualenv at DIR, installing Debian's
# python3-venv first when its python3 cannot make one (it leaves ensurepip to that package).
make_venv() {
  rm -rf "$1"
  mkdir -p "$(dirname "$1")"
  if ! python3 -m venv "$1" 2>/dev/null; then
    rm -rf "$1"
    apt-get update && apt-get install -y --no-install-recommends python3-venv
    python3 -m venv "$1"
  fi
}
