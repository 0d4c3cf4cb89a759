//! The three headers of a message that starts a new correlation (message-id and
//! correlation-id the same UUID, and the timestamp), kept formatted inside [`super::Headers`]
//! instead of in its shared list: the usual send, outside a handler and without headers of
//! its own, then allocates nothing for its headers.

use super::names;
use crate::text::{write_digits, write_uuid, DIGITS, UUID_LEN};

/// See the module docs. 57 bytes, ASCII only.
#[derive(Clone, Copy)]
pub(super) struct Fresh {
    id: [u8; UUID_LEN],
    at: [u8; DIGITS],
    at_len: u8,
}

/// ASCII bytes as text.
fn ascii(bytes: &[u8]) -> &str {
    debug_assert!(bytes.is_ascii());
    // SAFETY: `Fresh` is written only by `write_uuid` and `write_digits` (hex digits,
    // hyphens, decimal digits), all ASCII, and never changed.
    unsafe { std::str::from_utf8_unchecked(bytes) }
}

impl Fresh {
    /// UUID `id` as message-id and correlation-id, `at_ms` as the timestamp.
    pub(super) fn new(id: u128, at_ms: u64) -> Fresh {
        let mut fresh = Fresh {
            id: [0; UUID_LEN],
            at: [0; DIGITS],
            at_len: 0,
        };
        write_uuid(id, &mut fresh.id);
        fresh.at_len = write_digits(at_ms, &mut fresh.at) as u8;
        fresh
    }

    fn id(&self) -> &str {
        ascii(&self.id)
    }

    fn at(&self) -> &str {
        ascii(&self.at[..usize::from(self.at_len)])
    }

    /// The three `(name, value)` pairs, in the order the list would hold them.
    pub(super) fn pairs(&self) -> [(&'static str, &str); 3] {
        [
            (names::MESSAGE_ID, self.id()),
            (names::CORRELATION_ID, self.id()),
            (names::TIMESTAMP, self.at()),
        ]
    }

    /// The value of `name` (ASCII case ignored), if it is one of the three.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.pairs()
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}
