//! `FrameHeader::parse` never panics; a parsed header encodes to bytes that parse back to the
//! same header, and to the very input bytes when the input used the minimal length encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockeye_proto::frame::{FrameHeader, MAX_HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(Some((header, len))) = FrameHeader::parse(data) else {
        return;
    };
    assert!(len <= data.len() && len <= MAX_HEADER_LEN);
    let mut buf = [0u8; MAX_HEADER_LEN];
    let n = header.encode(&mut buf);
    assert_eq!(n, header.encoded_len());
    assert!(n <= len, "encoding is minimal");
    assert_eq!(FrameHeader::parse(&buf[..n]), Ok(Some((header, n))));
    if n == len {
        assert_eq!(&buf[..n], &data[..len]);
    }
    // Every shorter prefix of a valid header asks for more bytes.
    for cut in 0..n {
        assert_eq!(FrameHeader::parse(&buf[..cut]), Ok(None));
    }
});
