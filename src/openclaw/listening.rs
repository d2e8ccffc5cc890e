//! Whether a restarted gateway listens yet, without starting a process: its port (from its
//! `ExecStart=` `--port`, else `OPENCLAW_GATEWAY_PORT` in its environment, else `gateway.port`
//! in its `openclaw.json`, else OpenClaw's default 18789) in a listening socket of the kernel's
//! tables (`/proc/net/tcp`, `/proc/net/tcp6`), whatever address it is bound to.
//!
//! The proof waits for this before its first call: each call starts OpenClaw's Node CLI (2–3 s
//! of CPU), and calls every half second while a 2026.9.6 gateway boots for 11–16 s compete with
//! it for the cores.

use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// OpenClaw's default gateway port.
pub const DEFAULT_PORT: u16 = 18789;

/// The gateway's port: `--port N` (or `--port=N`) after `gateway` in its argv, else
/// `OPENCLAW_GATEWAY_PORT`, else `gateway.port` in its config text, else the default.
pub fn gateway_port(
    argv: &[String],
    environment: &[(String, String)],
    config: Option<&str>,
) -> u16 {
    let from_argv = argv
        .iter()
        .enumerate()
        .find_map(|(i, arg)| match arg.as_str() {
            "--port" => argv.get(i + 1)?.parse().ok(),
            other => other.strip_prefix("--port=")?.parse().ok(),
        });
    let from_env = || {
        crate::host::systemd::env_value(environment, "OPENCLAW_GATEWAY_PORT")?
            .trim()
            .parse()
            .ok()
    };
    let from_config = || {
        let config: Value = json5::from_str(config?).ok()?;
        u16::try_from(config.pointer("/gateway/port")?.as_u64()?).ok()
    };
    from_argv
        .or_else(from_env)
        .or_else(from_config)
        .unwrap_or(DEFAULT_PORT)
}

/// Whether the kernel's socket tables (`/proc/net/tcp` format) list a socket listening on
/// `port`.
pub fn listed_as_listening(table: &str, port: u16) -> bool {
    table.lines().skip(1).any(|line| {
        let mut fields = line.split_whitespace();
        let local = fields.nth(1).unwrap_or("");
        let state = fields.nth(1).unwrap_or("");
        state == "0A"
            && local
                .rsplit_once(':')
                .and_then(|(_, hex)| u16::from_str_radix(hex, 16).ok())
                == Some(port)
    })
}

/// Whether something listens on `port` now.
pub fn is_listening(port: u16) -> bool {
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        crate::host::fsutil::read_regular(Path::new(table))
            .ok()
            .flatten()
            .is_some_and(|bytes| listed_as_listening(&String::from_utf8_lossy(&bytes), port))
    })
}

/// Waits until something listens on `port` or `deadline` passes; whether it does.
pub fn wait_listening(port: u16, deadline: Instant) -> bool {
    loop {
        if is_listening(port) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_port_comes_from_argv_then_environment_then_config() {
        let env = vec![("OPENCLAW_GATEWAY_PORT".to_owned(), "4001".to_owned())];
        let config = Some("{ gateway: { port: 4002 } } // json5");
        assert_eq!(
            gateway_port(
                &argv(&["node", "x.js", "gateway", "--port", "4000"]),
                &env,
                config
            ),
            4000
        );
        assert_eq!(
            gateway_port(&argv(&["openclaw", "gateway", "--port=4003"]), &[], None),
            4003
        );
        assert_eq!(
            gateway_port(&argv(&["openclaw", "gateway"]), &env, config),
            4001
        );
        assert_eq!(
            gateway_port(&argv(&["openclaw", "gateway"]), &[], config),
            4002
        );
        assert_eq!(
            gateway_port(&argv(&["openclaw", "gateway"]), &[], None),
            DEFAULT_PORT
        );
    }

    #[test]
    fn only_listening_sockets_on_the_port_count() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:4A75 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 100 0 0 10 0\n\
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 2 1 0 20 4 30 10 -1\n";
        assert!(listed_as_listening(table, 0x4A75));
        assert!(
            !listed_as_listening(table, 0x1F90),
            "established, not listening"
        );
        assert!(!listed_as_listening(table, 80));
        let table6 = "  sl  local_address                         remote_address                        st\n\
   0: 00000000000000000000000000000000:4A75 00000000000000000000000000000000:0000 0A 0\n";
        assert!(listed_as_listening(table6, 0x4A75));
    }
}
