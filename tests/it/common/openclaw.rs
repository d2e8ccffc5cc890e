//! Real OpenClaw for the end-to-end tests: the npm releases `scripts/install-test-deps` put in
//! the tools dir, run as the test user, a real gateway started from the unit that release
//! installs (rendered for this machine, since `openclaw gateway install` refuses where PID 1 is
//! not systemd), and the project's loopback Anthropic stand-in (`tests/support/anthropic_standin.py`)
//! that the gateway is pointed at through `models.providers.anthropic.baseUrl`.

use super::*;
use serde_json::Value;

/// The releases the end-to-end tests cover: before the managed-key guard, its first release,
/// and the newest (SQLite stores).
pub const SEED_RELEASE: &str = "2026.5.28";
pub const FIRST_GUARD_RELEASE: &str = "2026.8.1";
pub const NEWEST_RELEASE: &str = "2026.9.6";

pub fn package_dir(version: &str) -> PathBuf {
    tools_dir().join(format!("openclaw-{version}/node_modules/openclaw"))
}

pub fn node() -> PathBuf {
    tools_dir().join("node/bin/node")
}

/// Whether the release is installed; outside CI a missing one skips the test (with the reason).
pub fn require_release(version: &str) -> bool {
    let entry = package_dir(version).join("dist/index.js");
    if entry.exists() {
        return true;
    }
    skip(&format!(
        "{} missing: run scripts/install-test-deps --openclaw",
        entry.display()
    ));
    false
}

/// Runs the release's CLI as the test user, clean environment plus `extra` (values travel in the
/// environment, never on a command line). Returns (success, stdout, stderr).
pub fn run_openclaw(
    user: &TestUser,
    version: &str,
    args: &[&str],
    extra: &[(&str, &str)],
) -> (bool, String, String) {
    let node_bin = tools_dir().join("node/bin");
    let output = Command::new("setpriv")
        .arg(format!("--reuid={}", user.uid))
        .arg(format!("--regid={}", user.gid))
        .arg("--init-groups")
        .arg(node())
        .arg(package_dir(version).join("dist/index.js"))
        .args(args)
        .current_dir(&user.home)
        .env_clear()
        .env("HOME", &user.home)
        .env("USER", &user.name)
        .env("PATH", format!("{}:/usr/bin:/bin", node_bin.display()))
        .env("NO_COLOR", "1")
        .env("CI", "1")
        .envs(extra.iter().copied())
        .output()
        .expect("run openclaw");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The first JSON object in a CLI's output (OpenClaw may print a banner line before it).
pub fn json_in(text: &str) -> Option<Value> {
    let start = text.find('{')?;
    serde_json::Deserializer::from_str(&text[start..])
        .into_iter::<Value>()
        .next()?
        .ok()
}

// ---------------------------------------------------------------- Anthropic stand-in

pub struct AnthropicStandIn {
    pub port: u16,
    pub base_url: String,
    _helper: PythonHelper,
}

impl AnthropicStandIn {
    pub fn start() -> AnthropicStandIn {
        let helper = PythonHelper::start("anthropic_standin.py", &[], "/__standin/requests");
        AnthropicStandIn {
            port: helper.port,
            base_url: format!("http://127.0.0.1:{}", helper.port),
            _helper: helper,
        }
    }

    fn request(&self, method: &str, path: &str, body: &str) -> String {
        loopback_request(self.port, method, path, body)
    }

    /// Every request recorded so far: method, path, kind ("bearer"/"x-api-key"), fingerprint,
    /// stream, beta, status.
    pub fn requests(&self) -> Vec<Value> {
        let all: Value = serde_json::from_str(&self.request("GET", "/__standin/requests", ""))
            .expect("stand-in answers JSON");
        all["requests"].as_array().cloned().unwrap_or_default()
    }

    /// Answers requests carrying this token with Anthropic's 401 `authentication_error`.
    pub fn reject(&self, token: &str) {
        self.request(
            "POST",
            "/__standin/reject",
            &serde_json::json!({ "fingerprints": [fingerprint(token)] }).to_string(),
        );
    }

    /// Spreads each streamed answer over `seconds` (a long agent turn in flight), until the next
    /// [`reset`](Self::reset).
    pub fn slow(&self, seconds: u64) {
        self.request(
            "POST",
            "/__standin/slow",
            &serde_json::json!({ "seconds": seconds }).to_string(),
        );
    }

    pub fn reset(&self) {
        self.request("POST", "/__standin/reset", "");
    }
}

// ---------------------------------------------------------------- real gateway

/// A real OpenClaw gateway of one release for one test user, from that release's own unit.
pub struct RealGateway {
    pub version: String,
    pub port: u16,
}

/// The unit the release installs (`tests/fixtures/openclaw/openclaw-gateway.service.<release>`,
/// captured from OpenClaw; releases without a capture of their own use the newest one's shape),
/// rendered for this machine: our Node and package, the user's home, the port, a PATH with Node.
pub fn render_unit(version: &str, home: &Path, port: u16) -> String {
    let captured = fixture(&format!("openclaw/openclaw-gateway.service.{version}"));
    let template = if captured.exists() {
        captured
    } else {
        fixture(&format!(
            "openclaw/openclaw-gateway.service.{NEWEST_RELEASE}"
        ))
    };
    let text = fs::read_to_string(template).unwrap();
    let node_bin = tools_dir().join("node/bin");
    text.lines()
        .map(|line| {
            if line.starts_with("Environment=PATH=") {
                format!(
                    "Environment=PATH={}:/usr/local/bin:/usr/bin:/bin",
                    node_bin.display()
                )
            } else if line.starts_with("Environment=OPENCLAW_SERVICE_VERSION=") {
                format!("Environment=OPENCLAW_SERVICE_VERSION={version}")
            } else {
                line.replace("/usr/bin/node", &node().display().to_string())
                    .replace(
                        "/usr/lib/node_modules/openclaw",
                        &package_dir(version).display().to_string(),
                    )
                    .replace("18789", &port.to_string())
                    .replace("/home/ubuntu", &home.display().to_string())
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// An Anthropic model in the release's catalog (the built-in default is another provider's).
pub fn default_model(version: &str) -> &'static str {
    if version == SEED_RELEASE {
        "anthropic/claude-sonnet-4-6"
    } else {
        "anthropic/claude-sonnet-5"
    }
}

/// The test gateway's `gateway.auth.token` for a user.
pub fn gateway_token(user: &TestUser) -> String {
    format!("gw-test-{}", fingerprint(&user.name))
}

impl RealGateway {
    /// Writes `openclaw.json` (local gateway on a free loopback port with token auth, Anthropic
    /// requests sent to `anthropic_base`, agents `main` and `work` with its own `agentDir`) and
    /// installs the release's unit in place of the stand-in. Does not start it.
    pub fn install(user: &TestUser, version: &str, anthropic_base: &str) -> RealGateway {
        let port = free_port();
        let mut config = serde_json::json!({
            "gateway": {
                "mode": "local",
                "port": port,
                "bind": "loopback",
                "auth": { "mode": "token", "token": gateway_token(user) },
                // Agent turns over the gateway's OpenAI-compatible HTTP endpoint (`agent_turn`).
                "http": { "endpoints": { "chatCompletions": { "enabled": true } } }
            },
            "models": {
                "providers": { "anthropic": { "baseUrl": anthropic_base, "models": [] } },
                "catalogRefresh": { "enabled": false }
            },
            "update": { "checkOnStart": false },
            "agents": {
                "defaults": { "model": default_model(version) },
                "list": [
                { "id": "main" },
                { "id": "work", "agentDir": user.path("workdir/agent") }
            ] }
        });
        if version == SEED_RELEASE {
            // 2026.5.28 rejects keys it does not know yet.
            config["models"]
                .as_object_mut()
                .unwrap()
                .remove("catalogRefresh");
            config.as_object_mut().unwrap().remove("update");
        }
        user.write(
            ".openclaw/openclaw.json",
            serde_json::to_string_pretty(&config).unwrap().as_bytes(),
            0o600,
        );
        user.write(
            &format!(".config/systemd/user/{UNIT}"),
            render_unit(version, &user.home, port).as_bytes(),
            0o644,
        );
        user.systemctl(&["daemon-reload"]);
        RealGateway {
            version: version.to_owned(),
            port,
        }
    }

    pub fn start(&self, user: &TestUser) {
        user.systemctl(&["start", UNIT]);
        self.wait_listening(Duration::from_secs(90));
    }

    /// Waits until the gateway accepts connections on its port.
    pub fn wait_listening(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "gateway {} did not listen on {} within {limit:?}",
                self.version,
                self.port
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// One agent turn through the running gateway: a request to its OpenAI-compatible
    /// `/v1/chat/completions` endpoint for `agent` (`x-openclaw-agent-id`), which runs the
    /// agent's real turn inside the gateway (no CLI, so no Node start, and no fallback to a turn
    /// outside the gateway). Returns (success, body, status line).
    pub fn agent_turn(&self, user: &TestUser, agent: &str) -> (bool, String, String) {
        http_turn(self.port, &gateway_token(user), agent)
    }
}

/// [`RealGateway::agent_turn`] by port and gateway token (for a turn on another thread).
pub fn http_turn(port: u16, gateway_token: &str, agent: &str) -> (bool, String, String) {
    {
        let body = serde_json::json!({
            "model": "openclaw",
            "messages": [{"role": "user", "content": "Say hello"}],
        })
        .to_string();
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(150)))
            .unwrap();
        write!(
            stream,
            "POST /v1/chat/completions HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nx-openclaw-agent-id: {agent}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            gateway_token,
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        let _ = std::io::Read::read_to_string(&mut stream, &mut response);
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let status = head.lines().next().unwrap_or_default().to_owned();
        (status.contains(" 200 "), body.to_owned(), status)
    }
}
