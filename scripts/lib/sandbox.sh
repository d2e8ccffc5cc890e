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
