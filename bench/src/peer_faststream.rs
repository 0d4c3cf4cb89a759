//! `--peer faststream`: runs `bench/peers/faststream_bench.py` (FastStream, Python) once per
//! round with the SDK run's workload and reads its result: the script times from its first
//! publish to its last handled message (after a warm-up message, as the SDK's consumer is also
//! ready before the clock starts), writes every latency to a file and prints one JSON line.
//! Interpreter start-up and connecting are outside the timed part, as for the SDK.
//!
//! The interpreter is `$BROKERKIT_BENCH_PYTHON`, else `bench/peers/.venv/bin/python` (made by
//! `bench/peers/setup.sh`). The broker URL goes in the environment, never on the command line.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use brokerkit::{Error, ErrorKind, Result};

use brokerkit_bench_driver::{Args, RunResult};

fn err(e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Unexpected, format!("faststream peer: {e}"))
}

fn peers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peers")
}

/// One run of the script on `broker` (its name in the script) at `address`, as the broker's
/// bench crate maps the URL.
pub async fn run(args: &Args, (broker, address): (&'static str, String)) -> Result<RunResult> {
    let python = std::env::var_os("BROKERKIT_BENCH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| peers_dir().join(".venv/bin/python"));
    if !python.exists() {
        return Err(err(format!(
            "no Python at {} (run bench/peers/setup.sh, or set BROKERKIT_BENCH_PYTHON)",
            python.display()
        )));
    }
    let out_file = std::env::temp_dir().join(brokerkit_bench_driver::measure::unique_name(
        "bench-faststream",
    ));
    let mut cmd = Command::new(&python);
    cmd.arg(peers_dir().join("faststream_bench.py"))
        .args(["--broker", broker])
        .args(["--messages", &args.messages.to_string()])
        .args(["--size", &args.size.to_string()])
        .args(["--producers", &args.producers.to_string()])
        .args(["--prefetch", &args.prefetch.to_string()])
        .arg("--latencies-out")
        .arg(&out_file)
        .env("BENCH_BROKER_URL", address)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    let output = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .map_err(err)?
        .map_err(|e| err(format!("starting {}: {e}", python.display())))?;
    let latencies = std::fs::read(&out_file);
    let _ = std::fs::remove_file(&out_file);
    if !output.status.success() {
        return Err(err(format!("the script failed ({})", output.status)));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let report: serde_json::Value =
        serde_json::from_str(last).map_err(|e| err(format!("bad result line {last:?}: {e}")))?;
    let messages = report["messages"]
        .as_u64()
        .ok_or_else(|| err("no messages"))? as usize;
    let elapsed = report["elapsed_s"]
        .as_f64()
        .filter(|s| *s > 0.0)
        .ok_or_else(|| err("no elapsed_s"))?;
    if messages != args.messages {
        return Err(err(format!(
            "handled {messages} of {} messages",
            args.messages
        )));
    }
    let latencies: Vec<u64> = latencies
        .map_err(|e| err(format!("reading the latencies: {e}")))?
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect();
    Ok(RunResult::new(
        messages,
        Duration::from_secs_f64(elapsed),
        latencies,
    ))
}
