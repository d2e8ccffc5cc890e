//! The host beneath a sync: atomic files that never follow a link (`fsutil`), the files this tool
//! manages and their paths (`managed_files`), dropping to a user (`privileges`, `session`),
//! systemd managers and units (`systemd`), run locks (`locks`), the state file (`state`), and
//! bounded worker processes (`forked`).

pub mod docker;
pub mod forked;
pub mod fsutil;
pub mod locks;
pub mod managed_files;
pub mod podman;
pub mod privileges;
pub mod session;
pub mod state;
pub mod systemd;
