//! `brokerkit asyncapi`: an AsyncAPI 3.0 document from the checked-in schemas
//! (`schemas/<type>.v<N>.json`) and the producers and consumer groups named on the command
//! line. No broker involved; server URLs are printed without credentials.

use std::sync::Arc;

use brokerkit::asyncapi::Document;
use brokerkit::schema::published::PublishedSchemas;
use brokerkit::SchemaValidator;

use crate::args::AsyncApiArgs;
use crate::{CmdResult, Failure, Outcome};

/// Runs `brokerkit asyncapi`.
pub fn run(a: &AsyncApiArgs) -> CmdResult {
    let published = PublishedSchemas::from_dir(&a.schemas)?;
    let mut b = Document::builder(&a.title, &a.app_version);
    for s in &a.servers {
        let (name, url) = s
            .split_once('=')
            .ok_or_else(|| Failure(format!("--server takes NAME=URL, got {:?}", redact(s))))?;
        b = b.server_url(name, url);
    }
    for p in &a.produces {
        let (dest, event) = p
            .split_once('=')
            .ok_or_else(|| Failure(format!("--produces takes DEST=TYPE[.vN], got {p:?}")))?;
        let schema = lookup(&published, event)?;
        b = b.produces_schemas(dest, &[(schema.0.as_str(), schema.1, schema.2)]);
    }
    for c in &a.consumes {
        let bad = || Failure(format!("--consumes takes DEST:GROUP=TYPE[.vN], got {c:?}"));
        let (target, event) = c.split_once('=').ok_or_else(bad)?;
        let (dest, group) = target.split_once(':').ok_or_else(bad)?;
        let schema = lookup(&published, event)?;
        b = b.consumes_schemas(dest, group, &[(schema.0.as_str(), schema.1, schema.2)]);
    }
    let doc = b.build()?;
    let text = doc.to_pretty_json();
    match &a.out {
        Some(path) => std::fs::write(path, text + "\n")
            .map_err(|e| Failure(format!("cannot write {}: {e}", path.display())))?,
        None => println!("{text}"),
    }
    Ok(Outcome::Ok)
}

/// `order.placed.v2` (that version) or `order.placed` (the newest published).
fn lookup(
    published: &PublishedSchemas,
    event: &str,
) -> Result<(String, u32, Arc<SchemaValidator>), Failure> {
    let (name, wanted) = match event.rsplit_once(".v") {
        Some((n, v)) if v.parse::<u32>().is_ok() => (n, v.parse::<u32>().ok()),
        _ => (event, None),
    };
    let found = published
        .versions(name)
        .filter(|(v, _)| wanted.is_none() || wanted == Some(*v))
        .last();
    let Some((version, schema)) = found else {
        return Err(Failure(format!(
            "no published schema for {event:?}; the schema directory has {:?}",
            published.event_types()
        )));
    };
    let validator = SchemaValidator::new(schema.origin.clone(), schema.schema.clone())?;
    Ok((name.to_string(), version, Arc::new(validator)))
}

fn redact(s: &str) -> String {
    brokerkit::core::config::redact_text(s)
}
