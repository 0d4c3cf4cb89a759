//! `schema check` and `schema validate`: the SDK's compatibility checker and validator as a CI
//! gate. No broker involved.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use brokerkit::schema::compat::{check, BreakingChange};
use brokerkit::SchemaValidator;
use owo_colors::OwoColorize;
use serde_json::{json, Value};

use crate::args::{Cli, Mode, SchemaCommand};
use crate::{print, CmdResult, Failure, Outcome};

/// Runs a `schema` command.
pub fn run(cli: &Cli, c: &SchemaCommand) -> CmdResult {
    match c {
        SchemaCommand::Check {
            paths,
            mode,
            against: None,
        } => {
            let [old, new] = paths.as_slice() else {
                return Err(Failure(format!(
                    "schema check takes OLD NEW (got {} paths), or --against GITREF PATH...",
                    paths.len()
                )));
            };
            let old_v = read_json(old)?;
            let new_v = read_json(new)?;
            let r = compare(&old_v, &new_v, *mode);
            finish_check(
                cli,
                *mode,
                vec![FileResult {
                    old: old.display().to_string(),
                    new: new.display().to_string(),
                    note: None,
                    breaks: r,
                }],
            )
        }
        SchemaCommand::Check {
            paths,
            mode,
            against: Some(gitref),
        } => check_against(cli, gitref, paths, *mode),
        SchemaCommand::Validate { schema, files } => validate(cli, schema, files),
    }
}

fn read_json(path: &Path) -> Result<Value, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| Failure(format!("{} is not JSON: {e}", path.display())))
}

/// Breaking changes for `mode`, each tagged with its direction.
fn compare(old: &Value, new: &Value, mode: Mode) -> Vec<(&'static str, BreakingChange)> {
    let r = check(old, new);
    let mut out = Vec::new();
    if matches!(mode, Mode::Backward | Mode::Full) {
        out.extend(r.backward.into_iter().map(|c| ("backward", c)));
    }
    if matches!(mode, Mode::Forward | Mode::Full) {
        out.extend(r.forward.into_iter().map(|c| ("forward", c)));
    }
    out
}

struct FileResult {
    old: String,
    new: String,
    note: Option<String>,
    breaks: Vec<(&'static str, BreakingChange)>,
}

fn pointer(c: &BreakingChange) -> &str {
    if c.pointer.is_empty() {
        "/"
    } else {
        &c.pointer
    }
}

fn finish_check(cli: &Cli, mode: Mode, files: Vec<FileResult>) -> CmdResult {
    let breaking: usize = files.iter().map(|f| f.breaks.len()).sum();
    let mode_name = match mode {
        Mode::Backward => "backward",
        Mode::Forward => "forward",
        Mode::Full => "full",
    };
    if cli.json {
        let list: Vec<Value> = files
            .iter()
            .map(|f| {
                json!({
                    "old": f.old, "new": f.new, "note": f.note,
                    "compatible": f.breaks.is_empty(),
                    "breaking_changes": f.breaks.iter().map(|(dir, c)| json!({
                        "direction": dir, "pointer": pointer(c), "change": c.change,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!(
            "{}",
            json!({"mode": mode_name, "compatible": breaking == 0, "files": list})
        );
    } else {
        for f in &files {
            if let Some(n) = &f.note {
                anstream::println!("{} {}: {n}", "note".dimmed(), f.new);
                continue;
            }
            if f.breaks.is_empty() {
                anstream::println!("{} {} ({mode_name})", "compatible".green(), f.new);
            } else {
                anstream::println!(
                    "{} {} → {} ({} breaking change(s), {mode_name})",
                    "BREAKING".red().bold(),
                    f.old,
                    f.new,
                    f.breaks.len()
                );
                for (dir, c) in &f.breaks {
                    anstream::println!("  {dir:<8} {}  {}", pointer(c).bold(), c.change);
                }
            }
        }
    }
    Ok(if breaking > 0 {
        Outcome::Finding
    } else {
        Outcome::Ok
    })
}

fn git(args: &[&str], cwd: &Path) -> Result<std::process::Output, Failure> {
    Command::new("git")
        .args(args)
        .current_dir(cwd)
        .output()
        .map_err(|e| Failure(format!("cannot run git: {e}")))
}

fn schema_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Failure> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Failure> {
        let rd = std::fs::read_dir(dir)
            .map_err(|e| Failure(format!("cannot read {}: {e}", dir.display())))?;
        for entry in rd {
            let p = entry.map_err(Failure::from)?.path();
            if p.is_dir() {
                walk(&p, out)?;
            } else if p.extension().is_some_and(|e| e == "json") {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out)?;
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(Failure(format!("{} does not exist", p.display())));
        }
    }
    out.sort();
    Ok(out)
}

fn check_against(cli: &Cli, gitref: &str, paths: &[PathBuf], mode: Mode) -> CmdResult {
    let cwd = std::env::current_dir()?;
    let top = git(&["rev-parse", "--show-toplevel"], &cwd)?;
    if !top.status.success() {
        return Err(Failure(format!(
            "--against needs a git repository: {}",
            String::from_utf8_lossy(&top.stderr).trim()
        )));
    }
    let top = PathBuf::from(String::from_utf8_lossy(&top.stdout).trim().to_string());
    let top = top.canonicalize().unwrap_or(top);
    let verify = git(
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{gitref}^{{commit}}"),
        ],
        &cwd,
    )?;
    if !verify.status.success() {
        return Err(Failure(format!("unknown git ref {gitref:?}")));
    }
    let mut results = Vec::new();
    for file in schema_files(paths)? {
        let abs = file.canonicalize()?;
        let rel = abs.strip_prefix(&top).map_err(|_| {
            Failure(format!(
                "{} is outside the repository {}",
                file.display(),
                top.display()
            ))
        })?;
        let rel = rel.to_string_lossy().replace('\\', "/");
        let new = read_json(&file)?;
        let shown = git(&["show", &format!("{gitref}:{rel}")], &top)?;
        let label = format!("{gitref}:{rel}");
        if !shown.status.success() {
            results.push(FileResult {
                old: label,
                new: file.display().to_string(),
                note: Some(format!("new schema (not present at {gitref})")),
                breaks: Vec::new(),
            });
            continue;
        }
        let old: Value = serde_json::from_slice(&shown.stdout)
            .map_err(|e| Failure(format!("{label} is not JSON: {e}")))?;
        results.push(FileResult {
            old: label,
            new: file.display().to_string(),
            note: None,
            breaks: compare(&old, &new, mode),
        });
    }
    if results.is_empty() {
        print::warn("no *.json schema files found");
    }
    finish_check(cli, mode, results)
}

fn validate(cli: &Cli, schema: &Path, files: &[PathBuf]) -> CmdResult {
    let validator = SchemaValidator::from_file(schema)?;
    let mut docs = Vec::new();
    let mut invalid = 0;
    for f in files {
        let text = if f.as_os_str() == "-" {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| Failure(format!("cannot read standard input: {e}")))?;
            s
        } else {
            std::fs::read_to_string(f)
                .map_err(|e| Failure(format!("cannot read {}: {e}", f.display())))?
        };
        let issues: Vec<(String, String)> = match serde_json::from_str::<Value>(&text) {
            Ok(v) => validator
                .violations(&v)
                .into_iter()
                .map(|i| (i.pointer, i.reason))
                .collect(),
            Err(e) => vec![(String::new(), format!("not JSON: {e}"))],
        };
        if !issues.is_empty() {
            invalid += 1;
        }
        docs.push((f.display().to_string(), issues));
    }
    if cli.json {
        let list: Vec<Value> = docs
            .iter()
            .map(|(f, issues)| {
                json!({"file": f, "valid": issues.is_empty(),
                       "violations": issues.iter().map(|(p, r)| json!({
                           "pointer": if p.is_empty() { "/" } else { p }, "reason": r,
                       })).collect::<Vec<_>>()})
            })
            .collect();
        println!(
            "{}",
            json!({"schema": schema.display().to_string(), "valid": invalid == 0, "documents": list})
        );
    } else {
        for (f, issues) in &docs {
            if issues.is_empty() {
                anstream::println!("{} {f}", "valid".green());
            } else {
                anstream::println!("{} {f}", "INVALID".red().bold());
                for (p, r) in issues {
                    let p = if p.is_empty() { "/" } else { p };
                    anstream::println!("  {}  {r}", p.bold());
                }
            }
        }
    }
    Ok(if invalid > 0 {
        Outcome::Finding
    } else {
        Outcome::Ok
    })
}
