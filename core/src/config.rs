//! Broker URLs: parsing, accepted query keys, and redaction of secrets.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use url::Url;

use crate::error::{Error, Result};

const REDACTED: &str = "***";

/// Whether a query key names a secret whose value must never print.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "passwd",
        "credential",
        "access_key",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// Decodes the `%XX` escapes of a URL part (user, password, vhost); `None` when an escape is
/// malformed or the result is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `url` with its password (or a user name given without one, which may be a token) and
/// secret query values replaced by `***`; other query values
/// (e.g. an endpoint URL) have embedded passwords redacted too.
pub fn redact_url(url: &Url) -> String {
    if url.cannot_be_a_base() {
        // `user:secret@host` parses as scheme `user` with an opaque path.
        return redact_unparsed(url.as_str());
    }
    let mut u = url.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some(REDACTED));
    } else if !u.username().is_empty() {
        // A user name without a password may be a token: hide it too.
        let _ = u.set_username(REDACTED);
    }
    if u.query().is_some() {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret_key(&k) {
                    REDACTED.into()
                } else {
                    redact_text(&v)
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

/// Redacts what looks like a URL's secrets inside free text, e.g. a client library's error
/// message that quotes the address, or a URL too malformed to parse:
/// everything before the last `@` of an address (`scheme://user:secret@host` →
/// `scheme://user:***@host`, `scheme://token@host` → `scheme://***@host`, also when the password
/// holds `/` or `?`), and the values of secret query keys (`?secret_access_key=***`).
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .unwrap_or(tail.len());
        out.push_str(&redact_address(&tail[..end]));
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Redacts one address without its `scheme://`: user info and secret query values.
fn redact_address(address: &str) -> String {
    let mut out = String::with_capacity(address.len());
    let mut rest = address;
    if let Some(at) = rest.rfind('@') {
        let userinfo = &rest[..at];
        match userinfo.find(':') {
            // The user name is kept only when it cannot be a secret itself.
            Some(colon) if !userinfo[..colon].contains(['/', '?', '#']) => {
                out.push_str(&userinfo[..=colon]);
                out.push_str(REDACTED);
            }
            _ => out.push_str(REDACTED),
        }
        rest = &rest[at..];
    }
    match rest.split_once('?') {
        None => out.push_str(rest),
        Some((before, query)) => {
            out.push_str(before);
            out.push('?');
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _))
                        if is_secret_key(&percent_decode(k).unwrap_or_default())
                            || is_secret_key(k) =>
                    {
                        format!("{k}={REDACTED}")
                    }
                    _ => pair.to_string(),
                })
                .collect();
            out.push_str(&pairs.join("&"));
        }
    }
    out
}

/// A URL that did not parse, fit to print: everything after `scheme://` (or the whole text
/// without one) is treated as one address, as in [`redact_text`]
/// (`user:secret@host` → `user:***@host`).
pub fn redact_unparsed(text: &str) -> String {
    // The whole rest is one address, spaces included: in a URL that did not parse, a space
    // may sit inside the user info (`x://u v:secret@h`).
    match text.split_once("://") {
        Some((scheme, rest))
            if !scheme.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) =>
        {
            format!("{scheme}://{}", redact_address(rest))
        }
        // No real scheme in front (fuzzing found `u:secret@h…scheme://…`): all one address.
        _ => redact_address(text),
    }
}

/// A parsed broker URL. `Debug` and `Display` redact secrets.
#[derive(Clone)]
pub struct BrokerUrl {
    url: Url,
}

impl BrokerUrl {
    /// Parses `text`; an unparsable URL is a config error naming the expected form.
    pub fn parse(text: &str) -> Result<Self> {
        let url = Url::parse(text.trim()).map_err(|e| {
            Error::config(format!(
                "invalid broker URL {:?}: {e}; expected <scheme>://[user[:password]@]host[:port][/path][?key=value]",
                redact_unparsed(text.trim())
            ))
        })?;
        Ok(BrokerUrl { url })
    }

    /// The scheme, e.g. `memory`, `amqp`.
    pub fn scheme(&self) -> &str {
        self.url.scheme()
    }

    /// The underlying URL, with secrets. Pass it only to the client library, never to output.
    pub fn expose(&self) -> &Url {
        &self.url
    }

    /// The URL with secrets replaced by `***`.
    pub fn redacted(&self) -> String {
        redact_url(&self.url)
    }

    /// The query parameters, checked against the keys the adapter accepts. An unknown key is a
    /// config error that lists the accepted ones; a repeated key is an error too.
    pub fn params(&self, accepted: &[&'static str]) -> Result<Params> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (k, v) in self.url.query_pairs() {
            if !accepted.contains(&k.as_ref()) {
                let list = if accepted.is_empty() {
                    "none".to_string()
                } else {
                    accepted.join(", ")
                };
                return Err(Error::config(format!(
                    "unknown config key {k:?} in {}; accepted keys: {list}",
                    self.redacted()
                )));
            }
            if pairs.iter().any(|(p, _)| p == &k) {
                return Err(Error::config(format!("config key {k:?} is given twice")));
            }
            pairs.push((k.into_owned(), v.into_owned()));
        }
        Ok(Params { pairs })
    }
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BrokerUrl({})", self.redacted())
    }
}

/// Checked query parameters of a [`BrokerUrl`].
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `key` parsed as `T`; a bad value is a config error naming the key and the expected type.
    pub fn parse<T: FromStr>(&self, key: &str, expected: &str) -> Result<Option<T>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                let shown = if is_secret_key(key) { REDACTED } else { v };
                Error::config(format!(
                    "config key {key:?} has value {shown:?}; expected {expected}"
                ))
            }),
        }
    }

    /// `key` as a duration in milliseconds.
    pub fn millis(&self, key: &str) -> Result<Option<Duration>> {
        Ok(self
            .parse::<u64>(key, "milliseconds as a non-negative integer")?
            .map(Duration::from_millis))
    }

    /// `key` as a boolean (`true`/`false`).
    pub fn flag(&self, key: &str) -> Result<Option<bool>> {
        self.parse::<bool>(key, "true or false")
    }
}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in &self.pairs {
            m.entry(k, if is_secret_key(k) { &REDACTED } else { v });
        }
        m.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn secrets_are_redacted_everywhere() {
        let u = BrokerUrl::parse("amqp://guest:hunter2@127.0.0.1:5672/%2f?token=abc&prefetch=5")
            .unwrap();
        for s in [u.to_string(), format!("{u:?}"), u.redacted()] {
            assert!(!s.contains("hunter2") && !s.contains("abc"), "{s}");
            assert!(s.contains("guest:***@"), "{s}");
        }
        let p = u.params(&["token", "prefetch"]).unwrap();
        assert!(!format!("{p:?}").contains("abc"));
        assert_eq!(p.get("token"), Some("abc"));
    }

    #[test]
    fn aws_keys_are_secrets() {
        let u = BrokerUrl::parse(
            "aws://?access_key_id=AKIA1&secret_access_key=s&session_token=t&region=eu-west-1",
        )
        .unwrap();
        let shown = u.redacted();
        assert!(
            !shown.contains("AKIA1") && !shown.contains("=s&") && !shown.contains("=t"),
            "{shown}"
        );
        assert!(shown.contains("region=eu-west-1"), "{shown}");
    }

    #[test]
    fn unknown_and_bad_keys_name_what_is_accepted() {
        let u = BrokerUrl::parse("memory://?capacity=10&colour=red").unwrap();
        let e = u.params(&["capacity"]).err().unwrap();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("\"colour\"") && e.message().contains("capacity"));
        let u = BrokerUrl::parse("memory://?capacity=lots").unwrap();
        let e = u
            .params(&["capacity"])
            .unwrap()
            .parse::<usize>("capacity", "a positive integer")
            .unwrap_err();
        assert!(e.message().contains("lots") && e.message().contains("positive integer"));
    }

    #[test]
    fn bad_url_is_config_error_without_secret() {
        let e = BrokerUrl::parse("amqp://user:s3cret@[bad").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(!e.to_string().contains("s3cret"), "{e}");
        assert!(BrokerUrl::parse("").is_err());
    }

    #[test]
    fn redact_text_hides_passwords_in_messages() {
        let t = "failed to connect to amqp://u:p4ss@host:5672/vh: refused";
        assert_eq!(
            redact_text(t),
            "failed to connect to amqp://u:***@host:5672/vh: refused"
        );
        assert_eq!(redact_text("no url here"), "no url here");
        assert_eq!(redact_unparsed("x://u v:pw@h:bad"), "x://u v:***@h:bad");
        assert_eq!(redact_unparsed("u:pw@h"), "u:***@h");
        assert_eq!(redact_unparsed("x y:pw@h?k=a://b"), "x y:***@h?k=a://b");
    }
}
