//! RFC 6455 §9.1: the `Sec-WebSocket-Extensions` header grammar.
//!
//! ```text
//! extension-list = 1#extension
//! extension = extension-token *( ";" extension-param )
//! extension-param = token [ "=" (token | quoted-string) ]
//! ```

/// One extension offer or response: a name and its parameters, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionOffer {
    /// The extension token, e.g. `permessage-deflate`. This crate matches it exactly, case
    /// included.
    pub name: String,
    /// Parameter names and values, in header order; `None` for a parameter without `=`.
    /// Quoted values are stored unquoted.
    pub params: Vec<(String, Option<String>)>,
}

/// The header could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed Sec-WebSocket-Extensions header")]
pub struct InvalidExtensionHeader;

/// Parses one or more header values (repeated headers form one list, RFC 7230 §3.2.2).
///
/// Empty list elements are skipped. Any other deviation from the grammar above, a value that
/// is not UTF-8, or a quoted value that is not a token once unquoted (§9.1) fails the whole
/// header.
pub fn parse_extensions<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<ExtensionOffer>, InvalidExtensionHeader> {
    let mut offers = Vec::new();
    for value in values {
        let value = std::str::from_utf8(value).map_err(|_| InvalidExtensionHeader)?;
        let mut p = Parser {
            s: value.as_bytes(),
            i: 0,
        };
        loop {
            p.skip_ws();
            if p.eof() {
                break;
            }
            if p.peek() == Some(b',') {
                p.i += 1;
                continue;
            }
            let name = p.token()?;
            let mut params = Vec::new();
            loop {
                p.skip_ws();
                match p.peek() {
                    None | Some(b',') => break,
                    Some(b';') => {
                        p.i += 1;
                        p.skip_ws();
                        let key = p.token()?;
                        p.skip_ws();
                        let val = if p.peek() == Some(b'=') {
                            p.i += 1;
                            p.skip_ws();
                            Some(if p.peek() == Some(b'"') {
                                p.quoted()?
                            } else {
                                p.token()?
                            })
                        } else {
                            None
                        };
                        params.push((key, val));
                    }
                    Some(_) => return Err(InvalidExtensionHeader),
                }
            }
            offers.push(ExtensionOffer { name, params });
        }
    }
    Ok(offers)
}

/// Formats offers as one header value, in the form [`parse_extensions`] reads. Values are
/// written without quotes, so they must be tokens; that is not checked.
pub fn format_extensions(offers: &[ExtensionOffer]) -> String {
    let mut out = String::new();
    for (i, offer) in offers.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&offer.name);
        for (key, val) in &offer.params {
            out.push_str("; ");
            out.push_str(key);
            if let Some(val) = val {
                out.push('=');
                out.push_str(val);
            }
        }
    }
    out
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn eof(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn token(&mut self) -> Result<String, InvalidExtensionHeader> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        if start == self.i {
            return Err(InvalidExtensionHeader);
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    /// RFC 6455 §9.1: a quoted value must itself be a token once unquoted.
    fn quoted(&mut self) -> Result<String, InvalidExtensionHeader> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(InvalidExtensionHeader),
                Some(b'"') => {
                    self.i += 1;
                    break;
                }
                Some(b'\\') => {
                    self.i += 1;
                    out.push(self.peek().ok_or(InvalidExtensionHeader)?);
                    self.i += 1;
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
        if out.is_empty() || !out.iter().copied().all(is_tchar) {
            return Err(InvalidExtensionHeader);
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

/// RFC 7230 §3.2.6 token characters.
pub(crate) fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7692_several_offers_with_parameters() {
        let offers = parse_extensions([&b"permessage-deflate; client_max_window_bits, permessage-deflate; server_max_window_bits=\"10\" ; server_no_context_takeover"[..]]).unwrap();
        assert_eq!(offers.len(), 2);
        assert_eq!(offers[0].name, "permessage-deflate");
        assert_eq!(
            offers[0].params,
            vec![("client_max_window_bits".into(), None)]
        );
        assert_eq!(
            offers[1].params,
            vec![
                ("server_max_window_bits".into(), Some("10".into())),
                ("server_no_context_takeover".into(), None)
            ]
        );
    }

    #[test]
    fn repeated_headers_form_one_list() {
        let offers = parse_extensions([&b"a"[..], &b"b; x=1"[..]]).unwrap();
        assert_eq!(offers.len(), 2);
        assert_eq!(format_extensions(&offers), "a, b; x=1");
    }

    #[test]
    fn malformed_headers_are_rejected() {
        for bad in [
            &b"a;"[..],
            b"a; =1",
            b"a b",
            b"a; x=\"\"",
            b"a; x=\"1 2\"",
            b"a; x=\"1",
        ] {
            assert!(
                parse_extensions([bad]).is_err(),
                "{:?}",
                std::str::from_utf8(bad)
            );
        }
    }
}
