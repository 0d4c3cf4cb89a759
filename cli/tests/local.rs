//! The built `brokerkit` binary without a real broker: usage, help, schema commands, the
//! configuration file, memory, secrets. (`memory://` lives inside one process, so each
//! invocation has its own empty broker.)

use std::path::{Path, PathBuf};
use std::process::Command as Std;

use assert_cmd::Command;
use predicates::prelude::*;

fn bk() -> Command {
    let mut c = Command::cargo_bin("brokerkit").expect("the brokerkit binary");
    c.env_remove("BROKERKIT_URL").env_remove("BROKERKIT_CONFIG");
    c
}

fn repo_schema() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/order.placed.v1.json")
}

fn edited(dir: &Path, name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo_schema()).unwrap()).unwrap();
    edit(&mut v);
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    p
}

fn remove_required(v: &mut serde_json::Value, field: &str) {
    v["properties"].as_object_mut().unwrap().remove(field);
    v["required"]
        .as_array_mut()
        .unwrap()
        .retain(|f| f.as_str() != Some(field));
}

#[test]
fn help_for_every_command_and_usage_errors_exit_2() {
    for args in [
        vec!["--help"],
        vec!["publish", "--help"],
        vec!["tail", "--help"],
        vec!["dlq", "--help"],
        vec!["dlq", "list", "--help"],
        vec!["dlq", "show", "--help"],
        vec!["dlq", "redrive", "--help"],
        vec!["schema", "check", "--help"],
        vec!["schema", "validate", "--help"],
        vec!["caps", "--help"],
        vec!["ping", "--help"],
        vec!["completions", "--help"],
        vec!["man", "--help"],
    ] {
        bk().args(&args)
            .assert()
            .success()
            .stdout(predicate::str::contains("Usage: brokerkit"));
    }
    bk().arg("--help")
        .assert()
        .stdout(predicate::str::contains("Exit codes"));
    bk().arg("frobnicate").assert().code(2);
    bk().args(["publish"]).assert().code(2);
    bk().args(["publish", "orders", "x", "--event-type", "t"])
        .assert()
        .code(2);
    bk().args(["publish", "orders", "x", "--header", "no-equals"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("expected K=V"));
    bk().args(["dlq", "redrive", "orders", "--filter", "colour=red"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("reason~TEXT"));
}

#[test]
fn schema_check_is_a_ci_gate() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = repo_schema();
    // A removed required field: exit 1, naming its pointer.
    let removed = edited(dir.path(), "removed.json", |v| {
        remove_required(v, "customer_email")
    });
    bk().args(["schema", "check"])
        .arg(&v1)
        .arg(&removed)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("/customer_email"));
    // An added optional field: exit 0 (backward, the default).
    let added = edited(dir.path(), "added.json", |v| {
        v["properties"]["note"] = serde_json::json!({"type": "string"});
    });
    bk().args(["schema", "check"])
        .arg(&v1)
        .arg(&added)
        .assert()
        .success();
    // Forward and full see that old readers reject the new field (closed object).
    bk().args(["schema", "check", "--mode", "full"])
        .arg(&v1)
        .arg(&added)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("/note"));
    // JSON output lists each change with its pointer.
    let out = bk()
        .args(["--json", "schema", "check", "--mode", "full"])
        .arg(&v1)
        .arg(&removed)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["compatible"], false);
    let changes = v["files"][0]["breaking_changes"].as_array().unwrap();
    assert!(changes.iter().all(|c| c["pointer"] == "/customer_email"));
    assert_eq!(changes.len(), 2, "{v}");
    // Not JSON, missing file: exit 2.
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{").unwrap();
    bk().args(["schema", "check"])
        .arg(&v1)
        .arg(&junk)
        .assert()
        .code(2);
    bk().args(["schema", "check", "nope.json", "nope2.json"])
        .assert()
        .code(2);
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Std::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(ok.status.success(), "git {args:?}: {ok:?}");
}

#[test]
fn schema_check_against_a_git_ref() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("schemas")).unwrap();
    std::fs::copy(repo_schema(), root.join("schemas/order.placed.v1.json")).unwrap();
    git(root, &["init", "-q"]);
    git(root, &["add", "."]);
    git(root, &["commit", "-qm", "v1"]);
    // Unchanged: ok.
    bk().current_dir(root)
        .args(["schema", "check", "--against", "HEAD", "schemas/"])
        .assert()
        .success();
    // A breaking edit and a new file.
    edited(&root.join("schemas"), "order.placed.v1.json", |v| {
        remove_required(v, "total_cents")
    });
    std::fs::copy(repo_schema(), root.join("schemas/new.v1.json")).unwrap();
    bk().current_dir(root)
        .args(["schema", "check", "--against", "HEAD", "schemas"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("/total_cents"))
        .stdout(predicate::str::contains("new schema"));
    bk().current_dir(root)
        .args(["schema", "check", "--against", "no-such-ref", "schemas"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown git ref"));
}

#[test]
fn schema_validate_lists_violations_by_pointer() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(
        &good,
        r#"{"order_id":1,"customer_email":"a@b.c","total_cents":5}"#,
    )
    .unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"order_id":"x","customer_email":"a@b.c"}"#).unwrap();
    bk().args(["schema", "validate"])
        .arg(repo_schema())
        .arg(&good)
        .assert()
        .success();
    bk().args(["schema", "validate"])
        .arg(repo_schema())
        .arg(&good)
        .arg(&bad)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("/order_id"));
    let out = bk()
        .args(["--json", "schema", "validate"])
        .arg(repo_schema())
        .arg(&bad)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let pointers: Vec<&str> = v["documents"][0]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["pointer"].as_str().unwrap())
        .collect();
    assert!(pointers.contains(&"/order_id"), "{v}");
    assert!(
        pointers.contains(&"/"),
        "missing total_cents is at the root: {v}"
    );
    // Standard input.
    bk().args(["schema", "validate"])
        .arg(repo_schema())
        .arg("-")
        .write_stdin(r#"{"order_id":1,"customer_email":"a@b.c","total_cents":5}"#)
        .assert()
        .success();
}

#[test]
fn configuration_file_sets_the_url_and_unknown_keys_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("brokerkit.toml");
    std::fs::write(
        &good,
        "url = \"memory://\"\nvisibility_timeout_ms = 1500\n\n[destinations.orders]\nprefetch = 8\n\n[destinations.orders.groups.billing]\nconcurrency = 2\nretry = { max_attempts = 3, initial_delay_ms = 10 }\n",
    )
    .unwrap();
    let out = bk()
        .args(["--json", "caps", "--config"])
        .arg(&good)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["adapter"], "memory");
    assert_eq!(v["lease_ms"], 1500, "visibility_timeout_ms applied: {v}");
    // From the environment too; BROKERKIT_URL and BROKERKIT_VISIBILITY_TIMEOUT_MS override
    // the file, --url overrides both.
    bk().env("BROKERKIT_CONFIG", &good)
        .env("BROKERKIT_URL", "memory://?max_payload_bytes=1000")
        .env("BROKERKIT_VISIBILITY_TIMEOUT_MS", "700")
        .args(["--json", "caps"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"lease_ms\":700"))
        .stdout(predicate::str::contains("\"max_payload_bytes\":1000"));
    bk().env("BROKERKIT_CONFIG", &good)
        .env("BROKERKIT_URL", "memory://?max_payload_bytes=1000")
        .args([
            "--json",
            "caps",
            "--url",
            "memory://?max_payload_bytes=2000",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"max_payload_bytes\":2000"));
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "url = \"memory://\"\n\n[destinations.orders]\nprefech = 8\n",
    )
    .unwrap();
    bk().args(["caps", "--config"])
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad.toml"))
        .stderr(predicate::str::contains("line 4"))
        .stderr(predicate::str::contains("prefech"))
        .stderr(predicate::str::contains("prefetch"));
    bk().args(["caps", "--config", "/nonexistent/brokerkit.toml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot read configuration file"));
}

#[test]
fn memory_publish_tail_caps_ping_and_dlq() {
    bk().args([
        "publish",
        "orders",
        "{}",
        "-H",
        "tenant=acme",
        "--key",
        "k",
        "--count",
        "3",
    ])
    .assert()
    .success()
    .stdout(predicate::str::is_match("^([0-9a-f-]{36}\n){3}$").unwrap());
    bk().args([
        "--json",
        "publish",
        "orders",
        "--event-type",
        "order.placed",
        "--event-version",
        "1",
        "-",
    ])
    .write_stdin("{}")
    .assert()
    .success()
    .stdout(predicate::str::contains("\"published\":1"));
    bk().args(["--json", "ping"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"ok\":true"));
    bk().args(["caps"])
        .assert()
        .success()
        .stdout(predicate::str::contains("browse"));
    // Each process has its own memory broker: nothing to see, and no error.
    bk().args(["--json", "tail", "orders", "--from-start"])
        .assert()
        .success()
        .stdout("");
    bk().args(["--json", "dlq", "list", "orders"])
        .assert()
        .success()
        .stdout("[]\n");
    bk().args(["dlq", "show", "orders", "1"]).assert().code(1);
    bk().args(["--json", "dlq", "redrive", "orders", "--dry-run"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"total_moved\":0"));
    bk().args(["tail", "orders", "--count", "1", "--timeout", "0.3"])
        .assert()
        .success();
    // Colours only on a terminal: piped output has no escape codes.
    bk().args(["caps"])
        .assert()
        .stdout(predicate::str::contains("\u{1b}[").not());
}

#[test]
fn secrets_never_print() {
    let out = bk()
        .args([
            "ping",
            "--connect-timeout",
            "5",
            "--url",
            "amqp://guest:hunter2secret@127.0.0.1:1/%2f",
        ])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains("hunter2secret"), "{all}");
    assert!(all.contains("error:"), "{all}");
    let out = bk()
        .args([
            "caps",
            "--url",
            "memory://?access_key_id=AKIDSECRET&secret_access_key=s3cr3tvalue&bogus=1",
        ])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("s3cr3tvalue") && !err.contains("AKIDSECRET"),
        "{err}"
    );
}

#[test]
fn completions_and_man_pages() {
    for shell in ["bash", "zsh", "fish"] {
        bk().args(["completions", shell])
            .assert()
            .success()
            .stdout(predicate::str::contains("redrive"));
    }
    let dir = tempfile::tempdir().unwrap();
    bk().args(["man", "--dir"])
        .arg(dir.path())
        .assert()
        .success();
    for page in [
        "brokerkit.1",
        "brokerkit-publish.1",
        "brokerkit-dlq-redrive.1",
        "brokerkit-schema-check.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
        assert!(text.contains(".TH"), "{page}");
    }
    bk().arg("man")
        .assert()
        .success()
        .stdout(predicate::str::contains(".TH brokerkit"));
}
