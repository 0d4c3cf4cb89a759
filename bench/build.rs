//! Registers the broker bench crates the features turn on, so that `src/` names no broker:
//! each feature `<b>` for which `adapters/<b>/bench` exists (package `brokerkit-<b>-bench`,
//! an optional dependency that feature enables in Cargo.toml; cargo turns a `-` in a
//! feature name into `_`, so `CARGO_FEATURE_MY_BROKER` is looked for as `adapters/my-broker`) adds
//! `&brokerkit_<b>_bench::BENCH` to `$OUT_DIR/brokers.rs`, which `src/brokers.rs` includes.

use std::path::Path;

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo");
    let adapters = Path::new(&manifest).join("../adapters");
    println!("cargo:rerun-if-changed=build.rs");
    let mut brokers: Vec<String> = std::env::vars()
        .filter_map(|(k, _)| k.strip_prefix("CARGO_FEATURE_").map(str::to_lowercase))
        .filter(|b| {
            let folder = b.replace('_', "-");
            adapters.join(folder).join("bench/Cargo.toml").is_file()
        })
        .collect();
    brokers.sort();
    let list: String = brokers
        .iter()
        .map(|b| format!("    &brokerkit_{b}_bench::BENCH,\n"))
        .collect();
    let out = Path::new(&std::env::var("OUT_DIR").expect("set by cargo")).join("brokers.rs");
    std::fs::write(out, format!("&[\n{list}]\n")).expect("writing brokers.rs");
}
