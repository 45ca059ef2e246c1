# Sourced by scripts/with-moto, aws-checks, sam-local, tests/local-aws/stack: pinned Python tools in a venv outside the
# repository (PyPI is the only registry these tools come from).
#   aws_tools_venv <pip requirement>...   creates/updates the venv, prints nothing, sets $VENV
#   free_port                             prints a free loopback TCP port
#   start_moto                            starts moto on 127.0.0.1:<free port>; sets MOTO_PID, MOTO_PORT, MOTO_ENDPOINT
#   arm64_rust_target / arm64_emulator    rustup's aarch64 target / qemu-user-static + arm64 C runtime (apt)
#   sam_build_functions [sam build opts]  `sam build` of the template (arm64) into .aws-sam/build
# Pins (checked with `pip index versions` on 2026-11): bump them together.
MOTO_PIN="moto[server]==5.2.5"
SAM_PIN="aws-sam-cli==1.170.0"
CARGO_LAMBDA_PIN="cargo-lambda==1.9.2"
ZIG_PIN="ziglang==0.13.0.post1"
# Debian (bookworm) packages that run the template's arm64 bootstraps on an x86-64 host:
# qemu-aarch64-static (user-mode emulation) and the arm64 C runtime it loads them with
# (-L /usr/aarch64-linux-gnu). Checked with `apt-cache policy` on 2026-12-02.
ARM64_APT_PINS=(qemu-user-static=1:7.2+dfsg-7+deb12u18+b3 libc6-arm64-cross=2.36-8cross1
                libgcc-s1-arm64-cross=12.2.0-14cross1)
# LocalStack 2026.3.0 host mode needs Python 3.13 and an exact dependency set (cbor2<6,
# cryptography<45, pyopenssl<25, service_identity<25 among them), installed with --no-deps from
# this frozen list so that pip's resolver cannot pick other versions.
LOCALSTACK_REQUIREMENTS="tests/local-aws/localstack-requirements.txt"

aws_tools_python() {
    for py in python3.11 python3.12 python3.13 python3; do
        if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
            echo "$py"; return 0
        fi
    done
    echo "no python3 >= 3.9 found" >&2; return 1
}

aws_tools_venv() {
    local name="$1"; shift
    VENV="${MARQUEE_TOOLS_DIR:-$HOME/.cache/marquee}/$name"
    local stamp="$VENV/.pins" want="$*"
    if [ ! -x "$VENV/bin/python" ]; then
        "$(aws_tools_python)" -m venv "$VENV"
    fi
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
        echo "$want" > "$stamp"
    fi
}

# The LocalStack venv ($VENV): Python 3.13 from PATH or pyenv.
localstack_venv() {
    local py=""
    for cand in python3.13 "$HOME"/.pyenv/versions/3.13*/bin/python3.13 /usr/local/bin/python3.13; do
        # A pyenv shim is on PATH even where its version is not selected: check it runs.
        if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; assert sys.version_info >= (3, 13)' 2>/dev/null; then
            py=$(command -v "$cand"); break
        fi
    done
    [ -n "$py" ] || { echo "LocalStack 2026.3 needs Python 3.13 (not found on PATH or under ~/.pyenv/versions)" >&2; return 1; }
    VENV="${MARQUEE_TOOLS_DIR:-$HOME/.cache/marquee}/localstack"
    local want; want="$(sha256sum "$LOCALSTACK_REQUIREMENTS" | cut -c1-16)"
    [ -x "$VENV/bin/python" ] || "$py" -m venv "$VENV"
    if [ "$(cat "$VENV/.pins" 2>/dev/null)" != "$want" ]; then
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$LOCALSTACK_REQUIREMENTS"
        echo "$want" > "$VENV/.pins"
    fi
}

# `--bin <name>` for every function under functions/ (cargo lambda build arguments).
lambda_bin_args() {
    local manifest name
    for manifest in functions/*/Cargo.toml; do
        name=$(sed -n '/^\[\[bin\]\]/,/^name/ s/^name = "\(.*\)"/\1/p' "$manifest")
        [ -n "$name" ] && printf -- '--bin %s ' "$name"
    done
}

# The rustup target `sam build` (rust-cargolambda, Architectures: [arm64]) compiles for.
arm64_rust_target() {
    rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu \
        || rustup target add aarch64-unknown-linux-gnu
}

# qemu-aarch64-static + the arm64 glibc/libgcc under /usr/aarch64-linux-gnu, from apt at the pinned
# versions, for whichever of them is not installed (as root, or through sudo). Nothing to do on an
# arm64 host. Debian's mirror drops superseded point-release versions: bump ARM64_APT_PINS then.
arm64_emulator() {
    case "$(uname -m)" in aarch64|arm64) return 0 ;; esac
    local pin missing=()
    for pin in "${ARM64_APT_PINS[@]}"; do
        dpkg-query -W -f='${Status}' "${pin%%=*}" 2>/dev/null | grep -q 'ok installed' || missing+=("$pin")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=(); [ "$(id -u)" = 0 ] || sudo=(sudo)
    echo "== installing ${missing[*]} (apt)" >&2
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
        || { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"; }
}

# `sam build` (samconfig.toml's build section: infra/template.yaml, rust-cargolambda, arm64): the
# artifacts `sam deploy` uploads, .aws-sam/build/<Function>/bootstrap, and the built template.
# SAM runs `cargo lambda build --release --arm64 --bin <fn>` once per function, one after the
# other, in the workspace's target/ (dependencies compiled once). One cargo lambda call for all
# eight first, with the flags SAM passes (provided.al2023 + arm64: --release --arm64), builds the
# functions' own crates in parallel; SAM's own calls then find every binary fresh and copy it (had
# anything differed, they would rebuild it: the copies are always SAM's own build).
sam_build_functions() {
    aws_tools_venv aws-tools "$SAM_PIN" "$MOTO_PIN" "$CARGO_LAMBDA_PIN" "$ZIG_PIN"
    arm64_rust_target
    local bins; read -r -a bins <<< "$(lambda_bin_args)"
    PATH="$VENV/bin:$PATH" cargo lambda build --release --arm64 --locked "${bins[@]}"
    PATH="$VENV/bin:$PATH" SAM_CLI_TELEMETRY=0 sam build "$@"
}

free_port() {
    "$(aws_tools_python)" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_moto() {
    MOTO_PORT="$(free_port)"
    MOTO_ENDPOINT="http://127.0.0.1:$MOTO_PORT"
    MOTO_LOG="$(mktemp -t moto.XXXXXX.log)"
    "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$MOTO_LOG" 2>&1 &
    MOTO_PID=$!
    for _ in $(seq 1 100); do
        if "$VENV/bin/python" - "$MOTO_ENDPOINT" <<'PY' 2>/dev/null
import json, sys, urllib.request
base = sys.argv[1]
urllib.request.urlopen(base + "/moto-api/", timeout=1).read()
# Let moto's Step Functions run Pass/Choice/Map states (execute_state_machine).
req = urllib.request.Request(base + "/moto-api/config", data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(), method="POST", headers={"Content-Type": "application/json"})
urllib.request.urlopen(req, timeout=2).read()
PY
        then
            return 0
        fi
        if ! kill -0 "$MOTO_PID" 2>/dev/null; then
            echo "moto exited; its log:" >&2; cat "$MOTO_LOG" >&2; return 1
        fi
        sleep 0.2
    done
    echo "moto did not answer on $MOTO_ENDPOINT within 20 s; its log:" >&2; cat "$MOTO_LOG" >&2
    return 1
}

stop_moto() {
    if [ -n "${MOTO_PID:-}" ]; then
        kill "$MOTO_PID" 2>/dev/null || true
        wait "$MOTO_PID" 2>/dev/null || true
        MOTO_PID=
    fi
}
