//! A header value's storage: short text inline (ids, timestamps, event types, content types
//! fit), longer text on the heap. Stamping the canonical headers then allocates nothing per
//! value.

/// Longest text kept inline, in bytes: a hyphenated UUID (36) and a 13-digit timestamp fit.
pub(crate) const INLINE: usize = 46;

/// UTF-8 text, inline up to [`INLINE`] bytes. 48 bytes wide.
#[derive(Clone)]
pub(crate) enum Text {
    /// `len` bytes of `buf`, always a whole UTF-8 string (copied from a `&str`, or ASCII).
    Inline {
        len: u8,
        buf: [u8; INLINE],
    },
    Heap(String),
}

impl Text {
    /// `s` inline when it fits, else on the heap.
    pub fn copy_of(s: &str) -> Text {
        if s.len() <= INLINE {
            let mut buf = [0; INLINE];
            buf[..s.len()].copy_from_slice(s.as_bytes());
            Text::Inline {
                len: s.len() as u8,
                buf,
            }
        } else {
            Text::Heap(s.to_owned())
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Text::Inline { len, buf } => {
                let bytes = &buf[..usize::from(*len)];
                // SAFETY: an inline value is only built by `copy_of`, `digits` and `uuid`,
                // from a `&str` or ASCII, and never changed: `bytes` is whole UTF-8.
                unsafe { std::str::from_utf8_unchecked(bytes) }
            }
            Text::Heap(s) => s,
        }
    }

    pub fn into_string(self) -> String {
        match self {
            Text::Heap(s) => s,
            inline => inline.as_str().to_owned(),
        }
    }

    /// The decimal digits of `n`, inline (at most 20 of them).
    pub fn digits(n: u64) -> Text {
        Text::copy_of(itoa::Buffer::new().format(n))
    }

    /// UUID `id` in its hyphenated lowercase form (36 bytes), inline.
    pub fn uuid(id: u128) -> Text {
        let mut buf = [0; INLINE];
        buf[..36].copy_from_slice(&uuid_ascii(id));
        Text::Inline { len: 36, buf }
    }
}

/// The decimal digits of `n` (at most 20), by `itoa`: `(length, digits)`, left-aligned.
pub(crate) fn decimal_ascii(n: u64) -> (u8, [u8; 20]) {
    let mut buffer = itoa::Buffer::new();
    let digits = buffer.format(n).as_bytes();
    let mut out = [0u8; 20];
    out[..digits.len()].copy_from_slice(digits);
    (digits.len() as u8, out)
}

/// UUID `id` in its hyphenated lowercase form: a byte at a time, two hex digits from a table.
pub(crate) fn uuid_ascii(id: u128) -> [u8; 36] {
    const HEX: [[u8; 2]; 256] = {
        let digits = b"0123456789abcdef";
        let mut t = [[0u8; 2]; 256];
        let mut i = 0;
        while i < 256 {
            t[i] = [digits[i >> 4], digits[i & 0xf]];
            i += 1;
        }
        t
    };
    // Where each byte's two digits go: 8-4-4-4-12 with hyphens between.
    const AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
    let mut buf = [b'-'; 36];
    for (i, byte) in id.to_be_bytes().into_iter().enumerate() {
        let at = AT[i];
        buf[at..at + 2].copy_from_slice(&HEX[usize::from(byte)]);
    }
    buf
}

impl From<String> for Text {
    /// Keeps the allocation it already has.
    fn from(s: String) -> Text {
        Text::Heap(s)
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_heap_read_back() {
        for s in [
            "",
            "a",
            "0191f2c4-8f9a-7b3e-9c1d-2e4f6a8b0c1d",
            "é€😀",
            &"x".repeat(47),
        ] {
            assert_eq!(Text::copy_of(s).as_str(), s);
            assert_eq!(Text::copy_of(s).into_string(), s);
        }
        assert!(matches!(
            Text::copy_of(&"x".repeat(46)),
            Text::Inline { .. }
        ));
        assert!(matches!(Text::copy_of(&"x".repeat(47)), Text::Heap(_)));
        assert_eq!(std::mem::size_of::<Text>(), 48);
    }

    #[test]
    fn uuid_is_hyphenated_lowercase() {
        let id = 0x0191_f2c4_8f9a_7b3e_9c1d_2e4f_6a8b_0c1d_u128;
        assert_eq!(
            Text::uuid(id).as_str(),
            "0191f2c4-8f9a-7b3e-9c1d-2e4f6a8b0c1d"
        );
        assert_eq!(
            Text::uuid(u128::MAX).as_str(),
            "ffffffff-ffff-ffff-ffff-ffffffffffff"
        );
    }

    #[test]
    fn digits_match_to_string() {
        for n in 0..1000 {
            assert_eq!(Text::digits(n).as_str(), n.to_string());
        }
        for n in [0, 7, 10, 1_700_000_000_123, u64::MAX] {
            assert_eq!(Text::digits(n).as_str(), n.to_string());
        }
    }
}
