# Sourced by scripts/with-moto and scripts/aws-checks: pinned Python tools in a venv outside the
# repository (PyPI is the only registry these tools come from).
#   aws_tools_venv <pip requirement>...   creates/updates the venv, prints nothing, sets $VENV
#   free_port                             prints a free loopback TCP port
#   start_moto                            starts moto on 127.0.0.1:<free port>; sets MOTO_PID, MOTO_PORT, MOTO_ENDPOINT
# Pins (checked with `pip index versions` on 2026-11): bump them together.
MOTO_PIN="moto[server]==5.2.5"
SAM_PIN="aws-sam-cli==1.170.0"
CARGO_LAMBDA_PIN="cargo-lambda==1.9.2"
ZIG_PIN="ziglang==0.13.0.post1"
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

# The functions in the dev profile, laid out as <bin>/bootstrap (hard links) in
# target/lambda-dev: the local stack and sam local serve them like cargo lambda's output.
# `--workspace` keeps scripts/test's feature set, so only the binaries are compiled and linked.
build_dev_lambdas() {
    local target="${CARGO_TARGET_DIR:-target}" bin
    read -r -a _bins <<< "$(lambda_bin_args)"
    cargo build --workspace --locked "${_bins[@]}"
    printf '%-12s %10s\n' function bytes
    for ((i = 1; i < ${#_bins[@]}; i += 2)); do
        bin="${_bins[$i]}"
        mkdir -p "$target/lambda-dev/$bin"
        ln -f "$target/debug/$bin" "$target/lambda-dev/$bin/bootstrap"
        printf '%-12s %10s\n' "$bin" "$(stat -c %s "$target/lambda-dev/$bin/bootstrap")"
    done
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
