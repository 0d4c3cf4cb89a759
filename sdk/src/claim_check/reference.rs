//! The reference a claim-checked message carries instead of its payload: one header,
//! [`REFERENCE_HEADER`], whose value is a small JSON object.
//!
//! ```text
//! claim-check: {"v":1,"store":"s3","bucket":"payloads","key":"brokerkit/orders/0190…",
//!               "size":5242880,"sha256":"9f86d0…","content_type":"application/json"}
//! ```

use brokerkit_core::Result;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::{ClaimCheckError, Problem};

/// The header that marks a claim-checked message and says where its payload is.
pub const REFERENCE_HEADER: &str = "claim-check";

/// Where an offloaded payload is and how to check it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// Format version (1).
    pub v: u32,
    /// The store kind that holds the object (`s3`, `file`, `memory`).
    pub store: String,
    /// Bucket (S3), directory (file) or name (memory) of the store.
    pub bucket: String,
    /// Object key inside the bucket.
    pub key: String,
    /// Payload size in bytes.
    pub size: u64,
    /// SHA-256 of the payload, lowercase hex.
    pub sha256: String,
    /// The payload's content type, from the message's `content-type` header when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

impl Reference {
    /// The header value (JSON on one line).
    pub fn to_header(&self) -> String {
        // Only strings and integers: serialization cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a header value; a malformed one is a `Decode` error with a
    /// [`ClaimCheckError`] source.
    pub fn parse(value: &str) -> Result<Reference> {
        let r: Reference = serde_json::from_str(value).map_err(|e| {
            ClaimCheckError::new(Problem::BadReference, format!("unreadable reference: {e}"))
                .into_error()
        })?;
        if r.v != 1 {
            return Err(ClaimCheckError::new(
                Problem::BadReference,
                format!(
                    "reference format v{} is not supported (this build reads v1)",
                    r.v
                ),
            )
            .into_error());
        }
        if r.sha256.len() != 64 || !r.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ClaimCheckError::new(
                Problem::BadReference,
                "reference has no valid sha256".to_string(),
            )
            .into_error());
        }
        Ok(r)
    }

    /// Where the object is, for messages: `s3://bucket/key`.
    pub fn location(&self) -> String {
        format!("{}://{}/{}", self.store, self.bucket, self.key)
    }

    /// Checks fetched bytes against the size and digest.
    pub fn verify(&self, bytes: &[u8]) -> Result<()> {
        if bytes.len() as u64 != self.size {
            return Err(ClaimCheckError::new(
                Problem::Corrupt,
                format!(
                    "object {} is {} bytes; the reference says {}",
                    self.location(),
                    bytes.len(),
                    self.size
                ),
            )
            .into_error());
        }
        let digest = sha256_hex(bytes);
        if !digest.eq_ignore_ascii_case(&self.sha256) {
            return Err(ClaimCheckError::new(
                Problem::Corrupt,
                format!(
                    "object {} has sha256 {digest}; the reference says {}",
                    self.location(),
                    self.sha256
                ),
            )
            .into_error());
        }
        Ok(())
    }
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(b"0123456789abcdef"[(b >> 4) as usize]));
        out.push(char::from(b"0123456789abcdef"[(b & 15) as usize]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use brokerkit_core::ErrorKind;

    fn reference(bytes: &[u8]) -> Reference {
        Reference {
            v: 1,
            store: "file".into(),
            bucket: "/tmp/x".into(),
            key: "k".into(),
            size: bytes.len() as u64,
            sha256: sha256_hex(bytes),
            content_type: Some("application/json; charset=utf-8".into()),
        }
    }

    #[test]
    fn header_round_trips_and_is_a_valid_header_value() {
        let r = reference(b"hello");
        let value = r.to_header();
        assert!(!value.bytes().any(|b| b.is_ascii_control()));
        assert_eq!(Reference::parse(&value).unwrap(), r);
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn verify_names_size_and_digest_mismatches() {
        let r = reference(b"hello");
        assert!(r.verify(b"hello").is_ok());
        let e = r.verify(b"hellO").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Decode);
        assert!(e.message().contains("sha256"), "{e}");
        assert_eq!(ClaimCheckError::of(&e).unwrap().problem, Problem::Corrupt);
        let e = r.verify(b"hell").unwrap_err();
        assert!(e.message().contains("4 bytes"), "{e}");
    }

    #[test]
    fn malformed_references_are_typed_decode_errors() {
        for bad in [
            "not json",
            r#"{"v":2,"store":"s3","bucket":"b","key":"k","size":1,"sha256":"00"}"#,
            r#"{"v":1,"store":"s3","bucket":"b","key":"k","size":1,"sha256":"zz"}"#,
        ] {
            let e = Reference::parse(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Decode, "{bad}");
            assert_eq!(
                ClaimCheckError::of(&e).unwrap().problem,
                Problem::BadReference
            );
        }
    }
}
