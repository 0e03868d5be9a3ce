//! Incremental UTF-8 validation for text messages that arrive in pieces (RFC 6455 §8.1).
//!
//! A message may be split across fragments and TCP reads at any byte, even inside a code point.
//! The validator keeps at most three bytes of an unfinished code point between calls, and reports
//! an error at the first byte that can no longer start or continue valid UTF-8, so an endpoint
//! fails the connection without waiting for the rest of the message (Autobahn 6.4.*).

/// The bytes are not valid UTF-8, or a stream ended inside a code point. Carries no position:
/// the connection only needs to know that it must close with 1007.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

/// Validates a stream of bytes as UTF-8, chunk by chunk.
#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    partial: [u8; 4],
    partial_len: u8,
}

impl Utf8Validator {
    /// A validator at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Validates the next chunk. An error means the whole stream can never be valid UTF-8; a
    /// chunk that ends inside a code point is accepted, and the rest is expected next.
    ///
    /// After an error the validator's state is unspecified: [`Utf8Validator::reset`] it
    /// before another stream.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), InvalidUtf8> {
        if self.partial_len > 0 {
            let have = self.partial_len as usize;
            let width = char_width(self.partial[0]);
            let take = (width - have).min(data.len());
            self.partial[have..have + take].copy_from_slice(&data[..take]);
            self.partial_len += take as u8;
            data = &data[take..];
            match std::str::from_utf8(&self.partial[..self.partial_len as usize]) {
                Ok(_) => self.partial_len = 0,
                Err(e) if e.error_len().is_none() => return Ok(()),
                Err(_) => return Err(InvalidUtf8),
            }
        }
        match simdutf8::compat::from_utf8(data) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let rest = &data[e.valid_up_to()..];
                self.partial[..rest.len()].copy_from_slice(rest);
                self.partial_len = rest.len() as u8;
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// Checks that the stream did not end inside a code point. Call it at the end of each
    /// message; it leaves the validator ready for the next one.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let incomplete = self.partial_len != 0;
        self.partial_len = 0;
        if incomplete {
            Err(InvalidUtf8)
        } else {
            Ok(())
        }
    }

    /// Drops any unfinished code point, to start a new stream.
    pub fn reset(&mut self) {
        self.partial_len = 0;
    }
}

/// Validates a complete buffer at once.
pub fn validate(data: &[u8]) -> Result<(), InvalidUtf8> {
    simdutf8::basic::from_utf8(data)
        .map(|_| ())
        .map_err(|_| InvalidUtf8)
}

fn char_width(first: u8) -> usize {
    match first {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_split(data: &[u8], at: &[usize]) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::new();
        let mut start = 0;
        for &end in at.iter().chain(std::iter::once(&data.len())) {
            v.feed(&data[start..end])?;
            start = end;
        }
        v.finish()
    }

    #[test]
    fn every_split_of_valid_text_is_valid() {
        let text = "κόσμε 🌍 héllo \u{10FFFF}".as_bytes();
        for i in 0..=text.len() {
            for j in i..=text.len() {
                assert_eq!(feed_split(text, &[i, j]), Ok(()), "split at {i},{j}");
            }
        }
    }

    #[test]
    fn every_split_of_invalid_text_is_invalid() {
        let cases: &[&[u8]] = &[
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited", // surrogate
            b"\xf4\x90\x80\x80",                                               // > U+10FFFF
            b"\xc0\xaf",                                                       // overlong
            b"abc\xff",
            b"\xe2\x82",     // truncated at the end
            b"\xf0\x9f\x8c", // truncated 4-byte
        ];
        for case in cases {
            for i in 0..=case.len() {
                assert!(feed_split(case, &[i]).is_err(), "{case:?} split at {i}");
            }
        }
    }

    #[test]
    fn fails_fast_on_first_invalid_byte_before_the_message_ends() {
        // Autobahn 6.4.1: a code point above U+10FFFF in the middle of a message.
        let mut v = Utf8Validator::new();
        assert!(v.feed("κόσμε".as_bytes()).is_ok());
        assert_eq!(v.feed(b"\xf4\x90"), Err(InvalidUtf8));
    }

    #[test]
    fn incomplete_code_point_is_held_between_chunks() {
        let mut v = Utf8Validator::new();
        assert!(v.feed(b"\xf0").is_ok());
        assert!(v.feed(b"\x9f").is_ok());
        assert!(v.feed(b"\x8c").is_ok());
        assert!(v.feed(b"\x8d").is_ok());
        assert!(v.finish().is_ok());
    }
}
