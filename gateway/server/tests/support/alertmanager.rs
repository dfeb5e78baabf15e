//! A real Alertmanager (Debian's `prometheus-alertmanager`) on an ephemeral loopback port.

use std::process::{Command, Stdio};

use super::{DEBIAN, Process, free_port, tool, wait_ready};

/// A running Alertmanager with no receivers and clustering off.
pub struct Alertmanager {
    pub process: Process,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: none\nreceivers:\n  - name: none\n",
        )
        .unwrap();
        let port = free_port();
        let mut process = Process::spawn(
            "alertmanager",
            Command::new(tool("prometheus-alertmanager", "ALERTMANAGER_BIN", DEBIAN))
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address=")
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        wait_ready(&format!("http://127.0.0.1:{port}/-/ready"), &mut process).await;
        Self {
            process,
            port,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}
