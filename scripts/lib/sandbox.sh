# Sourced by scripts/demo and scripts/bench: a local Secrets-Manager-compatible endpoint and a
# sandbox user, with nothing from AWS. Expects $root (the repository) to be set.
#   sandbox_start_moto       -> MOTO_PORT; exports the AWS test environment pointing at it
#   sandbox_start_proxy      -> PROXY_PORT (counting proxy in front of moto, tests/support/fault_proxy.py)
#   sandbox_secret_create NAME VALUE / sandbox_secret_put NAME VALUE
#   sandbox_random_token     -> prints a fake sk-ant-oat01- token (never echo it to a terminal)
#   sandbox_user NAME        -> as root: throwaway user, real systemd --user manager, stand-in gateway
#                               sets SANDBOX_HOME, SANDBOX_ARGS (--user NAME) and SANDBOX_STATUS_ARGS;
#                               not root: a temporary --home and --no-restart
#   sandbox_cleanup          (installed as an EXIT trap by sandbox_start_moto)

tools=${OCSYNC_TEST_TOOLS:-$root/target/test-tools}
SANDBOX_PIDS=()
SANDBOX_MANAGER=""
SANDBOX_USER=""

sandbox_cleanup() {
    for pid in "${SANDBOX_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ -n "$SANDBOX_MANAGER" ]; then
        "$root/tests/support/user-manager.sh" stop "$SANDBOX_USER" "$SANDBOX_MANAGER" || true
    fi
}

sandbox_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

sandbox_start_moto() {
    MOTO_PORT=$(sandbox_free_port)
    "$tools/venv/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >/tmp/ocsync-sandbox-moto.log 2>&1 &
    SANDBOX_PIDS+=($!)
    trap sandbox_cleanup EXIT
    until curl -fs "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null; do sleep 0.1; done
    local empty
    empty=$(mktemp /tmp/ocsync-empty-aws.XXXXXX); chmod 0644 "$empty"
    export AWS_ACCESS_KEY_ID=sandbox AWS_SECRET_ACCESS_KEY=sandbox
    export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
    export AWS_CONFIG_FILE=$empty AWS_SHARED_CREDENTIALS_FILE=$empty
    export AWS_ENDPOINT_URL=http://127.0.0.1:$MOTO_PORT OPENCLAW_TOKEN_SYNC_CONFIG=/dev/null
}

sandbox_start_proxy() {
    PROXY_PORT=$(sandbox_free_port)
    "$tools/venv/bin/python" "$root/tests/support/fault_proxy.py" "$PROXY_PORT" "$MOTO_PORT" >/dev/null 2>&1 &
    SANDBOX_PIDS+=($!)
    until curl -fs "http://127.0.0.1:$PROXY_PORT/__proxy/stats" >/dev/null; do sleep 0.1; done
}

sandbox_random_token() {
    printf 'sk-ant-oat01-SANDBOX-%s' "$(head -c 96 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 90)"
}

# The value travels on stdin, never on a command line.
sandbox_secret_create() {
    printf '%s' "$2" | "$tools/venv/bin/python" -c 'import sys, boto3; boto3.client("secretsmanager").create_secret(Name=sys.argv[1], SecretString=sys.stdin.read())' "$1"
}

sandbox_secret_put() {
    printf '%s' "$2" | "$tools/venv/bin/python" -c 'import sys, boto3; boto3.client("secretsmanager").put_secret_value(SecretId=sys.argv[1], SecretString=sys.stdin.read())' "$1"
}

sandbox_user() {
    local name=$1
    if [ "$(id -u)" = 0 ]; then
        SANDBOX_USER=$name
        id "$name" >/dev/null 2>&1 || useradd -m -s /bin/bash "$name"
        SANDBOX_HOME=/home/$name
        pkill -KILL -u "$name" 2>/dev/null || true
        rm -rf "$SANDBOX_HOME"
        mkdir -p "$SANDBOX_HOME/.config/systemd/user" "$SANDBOX_HOME/.openclaw/agents/main/agent"
        cp "$root/tests/fixtures/stand-in-gateway.service" "$SANDBOX_HOME/.config/systemd/user/openclaw-gateway.service"
        cp "$root/tests/fixtures/openclaw/auth-profiles.example.json" "$SANDBOX_HOME/.openclaw/agents/main/agent/auth-profiles.json"
        chown -R "$name:" "$SANDBOX_HOME"
        SANDBOX_MANAGER=$("$root/tests/support/user-manager.sh" start "$name")
        runuser -u "$name" -- env XDG_RUNTIME_DIR="/run/user/$(id -u "$name")" systemctl --user start openclaw-gateway.service
        SANDBOX_ARGS=(--user "$name")
        SANDBOX_STATUS_ARGS=(--user "$name")
    else
        SANDBOX_HOME=$(mktemp -d /tmp/ocsync-sandbox-home.XXXXXX)
        mkdir -p "$SANDBOX_HOME/.openclaw/agents/main/agent"
        cp "$root/tests/fixtures/openclaw/auth-profiles.example.json" "$SANDBOX_HOME/.openclaw/agents/main/agent/auth-profiles.json"
        SANDBOX_ARGS=(--home "$SANDBOX_HOME" --no-restart)
        SANDBOX_STATUS_ARGS=(--home "$SANDBOX_HOME")
    fi
}

# The project's loopback Anthropic stand-in (tests/support/anthropic_standin.py): every probe and
# every agent turn of the sandbox goes there, never to Anthropic. Sets STANDIN_URL and points
# openclaw-token-sync's probes at it.
sandbox_start_standin() {
    local ready
    ready=$(mktemp /tmp/ocsync-standin.XXXXXX)
    "$tools/venv/bin/python" -u "$root/tests/support/anthropic_standin.py" 0 >"$ready" 2>/dev/null &
    SANDBOX_PIDS+=($!)
    until grep -q '^listening ' "$ready" 2>/dev/null; do sleep 0.1; done
    STANDIN_URL=http://127.0.0.1:$(awk '/^listening /{print $2; exit}' "$ready")
    rm -f "$ready"
    export OPENCLAW_TOKEN_SYNC_ANTHROPIC_BASE_URL=$STANDIN_URL
}

# The fingerprint openclaw-token-sync prints (sha256: + 12 hex digits), of a value on stdin.
sandbox_fingerprint() {
    printf 'sha256:%s' "$(sha256sum | cut -c1-12)"
}

# As root, after sandbox_user: replaces the stand-in gateway with a real OpenClaw gateway of
# release $1 (from target/test-tools), started from the unit that release installs (rendered
# for this machine as the tests do), its Anthropic requests sent to the stand-in, with stale
# Anthropic profiles in its stores (SQLite releases get theirs from their own doctor --fix).
# Sets GATEWAY_PORT.
sandbox_openclaw_gateway() {
    local version=$1 user=$SANDBOX_USER home=$SANDBOX_HOME
    local package=$tools/openclaw-$version/node_modules/openclaw node=$tools/node/bin/node
    local template=$root/tests/fixtures/openclaw/openclaw-gateway.service.$version
    [ -f "$template" ] || template=$root/tests/fixtures/openclaw/openclaw-gateway.service.2026.9.6
    GATEWAY_PORT=$(sandbox_free_port)
    sandbox_as_user systemctl --user stop openclaw-gateway.service || true
    "$tools/venv/bin/python" - "$home" "$GATEWAY_PORT" "$STANDIN_URL" "$version" "$root" <<'PY'
import json, sys
home, port, standin, version, root = sys.argv[1:]
model = "anthropic/claude-sonnet-4-6" if version == "2026.5.28" else "anthropic/claude-sonnet-5"
config = {
    "gateway": {"mode": "local", "port": int(port), "bind": "loopback",
                "auth": {"mode": "token", "token": "gw-demo-" + port},
                # Agent turns over the gateway's OpenAI-compatible endpoint (sandbox_turn).
                "http": {"endpoints": {"chatCompletions": {"enabled": True}}}},
    "models": {"providers": {"anthropic": {"baseUrl": standin, "models": []}}},
    "agents": {"defaults": {"model": model}, "list": [{"id": "main"}]},
}
if version != "2026.5.28":
    config["models"]["catalogRefresh"] = {"enabled": False}
    config["update"] = {"checkOnStart": False}
with open(f"{home}/.openclaw/openclaw.json", "w") as f:
    json.dump(config, f, indent=2)
stale = json.load(open(f"{root}/tests/fixtures/openclaw/auth-profiles.example.json"))
stale["profiles"].pop("openrouter:default", None)
with open(f"{home}/.openclaw/agents/main/agent/auth-profiles.json", "w") as f:
    json.dump(stale, f, indent=2)
PY
    sed -e "s|^Environment=PATH=.*|Environment=PATH=$tools/node/bin:/usr/local/bin:/usr/bin:/bin|" \
        -e "s|/usr/bin/node|$node|" -e "s|/usr/lib/node_modules/openclaw|$package|" \
        -e "s|18789|$GATEWAY_PORT|g" -e "s|/home/ubuntu|$home|g" \
        "$template" >"$home/.config/systemd/user/openclaw-gateway.service"
    chmod 0600 "$home/.openclaw/openclaw.json" "$home/.openclaw/agents/main/agent/auth-profiles.json"
    chown -R "$user:" "$home"
    if [ "$version" != 2026.5.28 ]; then
        sandbox_openclaw "$version" doctor --fix --non-interactive >/dev/null 2>&1
    fi
    sandbox_as_user systemctl --user daemon-reload
    local began
    began=$(date +%s%N)
    sandbox_as_user systemctl --user start openclaw-gateway.service
    local waited=0
    until (exec 3<>"/dev/tcp/127.0.0.1/$GATEWAY_PORT") 2>/dev/null; do
        sleep 0.2; waited=$((waited + 1))
        [ "$waited" -lt 450 ] || { echo "the OpenClaw gateway did not listen within 90 s" >&2; return 1; }
    done
    # How long the gateway alone takes from its start to listening (a sync that restarts it
    # cannot be faster than that).
    GATEWAY_START_S=$(awk -v ns=$(( $(date +%s%N) - began )) 'BEGIN { printf "%.1f", ns / 1e9 }')
}

# Runs a command as the sandbox user with its manager's environment.
sandbox_as_user() {
    runuser -u "$SANDBOX_USER" -- env XDG_RUNTIME_DIR="/run/user/$(id -u "$SANDBOX_USER")" "$@"
}

# Runs OpenClaw's CLI of release $1 as the sandbox user (clean environment).
sandbox_openclaw() {
    local version=$1; shift
    setpriv --reuid="$(id -u "$SANDBOX_USER")" --regid="$(id -g "$SANDBOX_USER")" --init-groups \
        env -i HOME="$SANDBOX_HOME" USER="$SANDBOX_USER" PATH="$tools/node/bin:/usr/bin:/bin" NO_COLOR=1 CI=1 \
        "$tools/node/bin/node" "$tools/openclaw-$version/node_modules/openclaw/dist/index.js" "$@"
}

# One agent turn of agent main through the running gateway: a request to its OpenAI-compatible
# /v1/chat/completions endpoint, which runs the agent's real turn inside the gateway (no CLI, so
# no Node start). Fails unless the gateway answers 200. The stand-in's record is emptied first,
# so sandbox_last_turn_fingerprint sees this turn's requests only.
sandbox_turn() {
    curl -fs -X POST -o /dev/null "$STANDIN_URL/__standin/reset"
    curl -fsS --max-time 150 -o /dev/null "http://127.0.0.1:$GATEWAY_PORT/v1/chat/completions" \
        -H "Authorization: Bearer gw-demo-$GATEWAY_PORT" -H "x-openclaw-agent-id: main" \
        -H "Content-Type: application/json" \
        -d '{"model":"openclaw","messages":[{"role":"user","content":"Say hello"}]}'
}

# The fingerprint of the credential the stand-in saw last on /v1/messages ("none" without one).
sandbox_last_turn_fingerprint() {
    curl -fs "$STANDIN_URL/__standin/requests" | "$tools/venv/bin/python" -c '
import json, sys
seen = [r for r in json.load(sys.stdin)["requests"] if r["path"] == "/v1/messages"]
print(seen[-1]["fingerprint"] if seen else "none")'
}
