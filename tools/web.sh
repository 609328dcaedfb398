#!/usr/bin/env bash
# convshade in the browser.
#   tools/web.sh build         the page's wasm and JavaScript glue, into web/pkg
#   tools/web.sh serve [PORT]  serves the repository at http://localhost:PORT/ (default 8000):
#                              the demo at /web/, the verifier at /web/verify.html?cases=URL
#   tools/web.sh test          builds, then in headless Chromium on WebGPU: the async API's
#                              tests (wasm-bindgen-test), then the pages (tools/web_check.py)
# Needs the wasm32-unknown-unknown target and wasm-bindgen-cli at the version of wasm-bindgen in
# Cargo.lock: both are installed when missing (the CLI built from crates.io, nothing prebuilt).
# `test` needs chromium and chromium-driver (Debian: apt-get install chromium chromium-driver).
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3 }' Cargo.lock)

tools() {
  if command -v rustup >/dev/null; then
    rustup target add wasm32-unknown-unknown >/dev/null 2>&1
  fi
  if ! wasm-bindgen --version 2>/dev/null | grep -qF " $version"; then
    cargo install wasm-bindgen-cli --version "$version" --target-dir "$target_dir/wasm-bindgen-cli"
  fi
}

build() {
  tools
  cargo build --release --target wasm32-unknown-unknown -p convshade-web
  wasm-bindgen --target web --no-typescript --out-dir web/pkg \
    "$target_dir/wasm32-unknown-unknown/release/convshade_web.wasm"
  wasm=web/pkg/convshade_web_bg.wasm
  echo "web/pkg built: $(stat -c %s "$wasm") bytes of wasm, $(gzip -9c "$wasm" | wc -c) gzipped"
}

case "${1:-}" in
  build)
    build
    ;;
  serve)
    port=${2:-8000}
    echo "http://localhost:$port/web/ (the demo)"
    echo "http://localhost:$port/web/verify.html?cases=/tests/conformance&device=gpu (the cases)"
    exec python3 -m http.server "$port" --bind 127.0.0.1
    ;;
  test)
    build
    # the runner drives headless Chromium through chromedriver, with web/webdriver.json's flags
    cd web
    CHROMEDRIVER=${CHROMEDRIVER:-$(command -v chromedriver)} \
      CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
      cargo test --release --target wasm32-unknown-unknown --test browser
    cd ..
    for device in gpu cpu; do
      python3 tools/web_check.py "web/verify.html?cases=/tests/conformance&device=$device" \
        '^\d+ passed, 0 failed$'
    done
    # the demo: the kernel learned back within 0.1 of [1, -1], then the digits CNN
    kernel='\[(0\.9[0-9]*|1\.0[0-9]*), -(0\.9[0-9]*|1\.0[0-9]*)\]'
    for device in gpu cpu; do
      python3 tools/web_check.py "web/?auto=1&device=$device" "^done: learned kernel $kernel"
    done
    ;;
  *)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
