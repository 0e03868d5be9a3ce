#!/usr/bin/env bash
# Checks that the crates are something another project can depend on, as it would from crates.io:
#   1. cargo package for the publishable crates (not interop or examples), and what each .crate holds
#   2. cargo doc of the libraries with RUSTDOCFLAGS="-D warnings"
#   3. cargo install of sockeye-cli into a temporary root: `sockeye --version`, and `sockeye serve`
#      on a free port answering GET /
#   4. tests/packaged, a crate outside the workspace, built against the sources extracted from
#      target/package/*.crate of every library (not the workspace paths) and run: a sockeye echo
#      server and client, and a WAMP and a SOAP call through the packaged WAMP and SOAP crates
# Prints how long each step took.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
# The workspace's target directory, wherever CARGO_TARGET_DIR puts it.
target=${CARGO_TARGET_DIR:-$root/target}

export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
crates=(sockeye-proto sockeye sockeye-wamp-proto sockeye-wamp sockeye-soap sockeye-cluster sockeye-cli)
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)

timings=()
failed=0
step() {
  local name=$1 start=$SECONDS rc=0
  shift
  echo "=== $name"
  # In the background, so that set -e applies inside the step (it does not under `||`).
  "$@" &
  wait $! || rc=$?
  local took=$((SECONDS - start))
  if ((rc == 0)); then
    timings+=("$(printf '%4ds  %s' "$took" "$name")")
  else
    timings+=("$(printf '%4ds  %s: FAILED' "$took" "$name")")
    failed=1
  fi
  return 0
}

package() {
  # --allow-dirty: this checks what the files would package, committed or not; publishing is
  # done from a clean tree anyway. --no-verify: cargo's own verification builds every package
  # from scratch (5.5 minutes here); step 4 builds the library packages from their extracted
  # sources instead, and step 3 builds the binary from the same files its package lists.
  cargo package --workspace --exclude sockeye-interop --exclude sockeye-examples --allow-dirty --no-verify
  local c f list need
  for c in "${crates[@]}"; do
    list=$(tar -tzf "$target/package/$c-$version.crate" | sed "s|^$c-$version/||")
    echo "$c: $(wc -l <<<"$list") files"
    need=(Cargo.toml README.md LICENSE-MIT LICENSE-APACHE src/lib.rs)
    if [[ $c == sockeye-cli ]]; then
      # The binary, and the files it include_str!s.
      need=(Cargo.toml README.md LICENSE-MIT LICENSE-APACHE src/main.rs assets/index.html assets/stockquote.wsdl)
    fi
    for f in "${need[@]}"; do
      grep -qx "$f" <<<"$list" || { echo "$c: $f missing from the package"; return 1; }
    done
  done
}

docs() {
  # The libraries, as docs.rs builds them. sockeye-cli is a binary (docs.rs documents none), its
  # clap help texts are doc comments, and its bin `sockeye` collides with the lib's doc folder.
  RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features \
    --exclude sockeye-cli --exclude sockeye-interop --exclude sockeye-examples
}

install() {
  local dir pid port status v
  dir=$(mktemp -d)
  # The workspace's target/: the same release build as scripts/test.sh's "build sockeye" stage.
  cargo install --locked --path crates/sockeye-cli --root "$dir" --target-dir "$target"
  v=$("$dir/bin/sockeye" --version)
  echo "$v"
  [[ $v == "sockeye $version" ]]
  # Made before the server starts, so the loop below never reads a file not there yet.
  : >"$dir/serve.out"
  "$dir/bin/sockeye" serve --listen 127.0.0.1:0 >"$dir/serve.out" 2>"$dir/serve.err" &
  pid=$!
  # Whatever fails from here (this step runs in its own shell), the server does not stay.
  trap "kill -TERM $pid 2>/dev/null; rm -rf '$dir'" EXIT
  port=
  for _ in $(seq 100); do
    port=$(sed -n 's/^LISTENING 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$dir/serve.out")
    [[ -n $port ]] && break
    sleep 0.1
  done
  status=1
  if [[ -n $port ]] && curl -sSf --max-time 5 --noproxy '*' -o "$dir/index.html" "http://127.0.0.1:$port/" &&
    grep -qi '<html' "$dir/index.html"; then
    echo "sockeye serve on 127.0.0.1:$port: GET / 200, $(wc -c <"$dir/index.html") bytes"
    status=0
  else
    echo "sockeye serve did not answer GET / (port '${port}')"
    cat "$dir/serve.out" "$dir/serve.err"
  fi
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" || { echo "sockeye serve exited with $? on SIGTERM"; status=1; }
  rm -rf "$dir"
  trap - EXIT
  return $status
}

packaged() {
  local work=$target/packaged c patches=() used
  rm -rf "$work/src" "$work/app"
  mkdir -p "$work/src" "$work/app"
  local libs=(sockeye-proto sockeye sockeye-wamp-proto sockeye-wamp sockeye-soap) want=
  for c in "${libs[@]}"; do
    tar -xzf "$target/package/$c-$version.crate" -C "$work/src"
    # As if it came from crates.io: the crates-io dependency on $c resolves to these sources.
    patches+=(--config "patch.crates-io.$c.path='$work/src/$c-$version'")
  done
  # A copy, so that its Cargo.lock (resolved afresh, as a new user's would be) stays out of the
  # tree; its manifest has a [workspace] of its own.
  cp -r tests/packaged/Cargo.toml tests/packaged/src "$work/app/"
  export CARGO_TARGET_DIR=$work/target
  # Each patch must be what was built: a patch cargo did not use would leave sockeye to
  # crates.io.
  used=$(cargo metadata --format-version 1 --manifest-path "$work/app/Cargo.toml" "${patches[@]}" |
    python3 -c 'import json, sys; libs = sys.argv[1:]; print("\n".join(sorted(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"] in libs)))' "${libs[@]}")
  echo "$used"
  want=$(for c in "${libs[@]}"; do echo "$work/src/$c-$version/Cargo.toml"; done | sort)
  [[ $used == "$want" ]]
  cargo run --manifest-path "$work/app/Cargo.toml" "${patches[@]}"
}

# The public API against the last release, once there is one: a breaking change must come with
# a new minor version (README, "API policy").
semver() {
  local tag
  tag=$(git tag --list 'v[0-9]*' --sort=-version:refname | head -n 1)
  if [[ -z $tag ]]; then
    echo "no release tag (v*) yet: nothing to compare the API with"
    return 0
  fi
  cargo semver-checks --version >/dev/null 2>&1 || cargo install cargo-semver-checks --locked
  cargo semver-checks --workspace --exclude sockeye-cli --exclude sockeye-interop \
    --exclude sockeye-examples --baseline-rev "$tag"
}

step "cargo package (${crates[*]})" package
step "cargo doc (libraries, -D warnings)" docs
step "cargo install sockeye-cli, sockeye --version, sockeye serve GET /" install
step "tests/packaged against the .crate sources" packaged
step "cargo semver-checks against the last release tag" semver

echo
echo "check-package timings:"
printf '%s\n' "${timings[@]}"
echo "total ${SECONDS}s"
((failed == 0))
