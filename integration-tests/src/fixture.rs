//! What the shared cases need from one adapter beyond its URL: how to make an unreachable
//! URL, and how to inject a raw foreign message (as another application using the broker's
//! own client would) with headers brokerkit cannot carry, and how to restart the broker for
//! the fault cases. Each adapter provides one in its own crate
//! (`adapters/<b>/tests/fixture/mod.rs`) and passes it to [`crate::conformance_suite!`] and
//! [`crate::fault_suite!`]; the cases in `conformance_fixture.rs` and `conformance_faults.rs`
//! then run against it.

use std::time::Duration;

use brokerkit::core::async_trait;

/// The password (or secret key) in every unreachable URL: it must never be printed.
pub const SECRET: &str = "hunter2-secret";

/// A foreign message published by a fixture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    /// Header names brokerkit must drop and list in `x-brokerkit-invalid-headers`, as they
    /// appear in that list.
    pub invalid: Vec<String>,
}

impl Injected {
    /// A foreign message whose headers `invalid` must be dropped and listed.
    pub fn dropping(invalid: &[&str]) -> Self {
        Injected {
            invalid: invalid.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// A broker a fault case may stop and start again (see [`Fixture::restartable`]).
#[async_trait]
pub trait Restartable: Send + Sync {
    /// The brokerkit URL of this broker (may hold secrets: do not print).
    fn url(&self) -> String;

    /// Stops the broker (its process killed, or its application stopped), waits `down`,
    /// starts it again and returns once it accepts connections.
    async fn restart(&mut self, down: Duration);
}

/// One adapter's test fixture.
#[async_trait]
pub trait Fixture: Send + Sync + 'static {
    /// A broker of this adapter the fault cases may restart, given the suite's `url`: a
    /// private server on a free port where the broker is cheap to start, or the
    /// shared one where it is not (e.g. its application stopped and started, which
    /// disturbs every other user of it). `Err(reason)` where it cannot be restarted here.
    async fn restartable(&self, url: &str) -> Result<Box<dyn Restartable>, String> {
        let _ = url;
        Err("the fixture cannot restart this broker".into())
    }

    /// A URL of this adapter where nothing listens, with [`SECRET`] as password or secret
    /// key; `None` where the adapter has no network (memory).
    fn unreachable_url(&self) -> Option<String> {
        None
    }

    /// URLs of this adapter's schemes that cannot work (a bad port, a malformed endpoint, a
    /// password with `/`, `?` or `#` in it), each with the secrets it holds: parsing or
    /// connecting fails (or times out), and no error shows a secret.
    fn malformed_urls(&self) -> Vec<(String, Vec<String>)> {
        Vec::new()
    }

    /// Publishes `payload` to `destination` of the broker at `url` with the broker's own
    /// client, with the header `x-ok: fine` and headers brokerkit cannot carry. `None` where
    /// the broker has no foreign senders.
    async fn inject_foreign(
        &self,
        url: &str,
        destination: &str,
        payload: &[u8],
    ) -> Option<Injected> {
        let _ = (url, destination, payload);
        None
    }

    /// Publishes `payload` to `destination` with exactly `headers` (text names and values) with
    /// the broker's own client, as a producer in another language would (a CloudEvents SDK
    /// in binary mode, say). `false` where the broker has no foreign senders.
    async fn inject_with_headers(
        &self,
        url: &str,
        destination: &str,
        headers: &[(&str, &str)],
        payload: &[u8],
    ) -> bool {
        let _ = (url, destination, headers, payload);
        false
    }
}

/// The fixture of an adapter without network or foreign senders (memory).
pub struct NoFixture;

impl Fixture for NoFixture {}

/// A broker process of the fixture's own, for the fault cases: started from `binary` on a
/// free loopback port with a temporary working directory, killed and started again by
/// [`Restartable::restart`], removed on drop. Never the shared broker.
///
/// In `args` and `url`, `{port}` is replaced by the port; the process runs in its directory
/// (log in `server.log` there).
pub struct PrivateServer {
    name: &'static str,
    binary: std::path::PathBuf,
    args: Vec<String>,
    url: String,
    port: u16,
    dir: std::path::PathBuf,
    child: Option<std::process::Child>,
}

impl PrivateServer {
    /// Starts `binary` and waits until it listens, or says why not.
    pub async fn start(
        name: &'static str,
        binary: std::path::PathBuf,
        args: &[&str],
        url: &str,
    ) -> Result<PrivateServer, String> {
        if !binary.is_file() {
            return Err(format!("{name} not found at {}", binary.display()));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| format!("no free port: {e}"))?;
        let dir = std::env::temp_dir().join(format!(
            "brokerkit-{name}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("temp dir: {e}"))?;
        let fill = |s: &str| s.replace("{port}", &port.to_string());
        let mut server = PrivateServer {
            name,
            binary,
            args: args.iter().map(|a| fill(a)).collect(),
            url: fill(url),
            port,
            dir,
            child: None,
        };
        server.spawn().await;
        Ok(server)
    }

    async fn spawn(&mut self) {
        use std::process::{Command, Stdio};
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .expect("log file");
        let child = Command::new(&self.binary)
            .current_dir(&self.dir)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.name));
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "{} did not listen on {}",
                self.name,
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops (`SIGSTOP`) or resumes (`SIGCONT`) the server: its connections stay open and
    /// nothing is answered, as with a server that hangs or a network that drops packets.
    pub fn pause(&self, paused: bool) {
        let Some(child) = &self.child else { return };
        let signal = if paused { "-STOP" } else { "-CONT" };
        let status = std::process::Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {} failed", self.name);
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[async_trait]
impl Restartable for PrivateServer {
    fn url(&self) -> String {
        self.url.clone()
    }

    async fn restart(&mut self, down: Duration) {
        self.kill();
        tokio::time::sleep(down).await;
        self.spawn().await;
    }
}
