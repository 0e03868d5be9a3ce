//! Microbenchmarks of the protocol core's hot paths, each beside its physical limit.
//!
//! `cargo bench -p sockeye-proto --bench core` (add `-- --measurement-time 2` for short runs).
//!
//! - frame headers: parse and encode, for the three length encodings;
//! - masking 1 MiB: `apply_mask` (words) and `apply_mask_scalar` (bytes, the RFC's definition)
//!   against a plain copy of the same bytes, which no in-place XOR pass can beat by much;
//! - UTF-8 validation of 1 MiB: the incremental validator (one chunk, and 4 KiB chunks as TCP
//!   reads deliver them) and `utf8::validate`, against the same copy.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sockeye_proto::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
use sockeye_proto::mask::{apply_mask, apply_mask_scalar};
use sockeye_proto::utf8::{self, Utf8Validator};

const MIB: usize = 1 << 20;
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn headers(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame_header");
    for (name, payload_len) in [("7bit", 20u64), ("16bit", 16 << 10), ("64bit", 1 << 20)] {
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: OpCode::Binary,
            mask: Some(KEY),
            payload_len,
        };
        let mut wire = [0u8; MAX_HEADER_LEN];
        let n = header.encode(&mut wire);
        group.bench_with_input(BenchmarkId::new("parse", name), &wire[..n], |b, wire| {
            b.iter(|| FrameHeader::parse(black_box(wire)))
        });
        group.bench_with_input(BenchmarkId::new("encode", name), &header, |b, header| {
            let mut dst = [0u8; MAX_HEADER_LEN];
            b.iter(|| black_box(header).encode(black_box(&mut dst)))
        });
    }
    group.finish();
}

fn masking(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask_1MiB");
    group.throughput(Throughput::Bytes(MIB as u64));
    let src: Vec<u8> = (0..MIB).map(|i| (i * 31 + 7) as u8).collect();
    let mut buf = src.clone();
    group.bench_function("apply_mask", |b| {
        b.iter(|| apply_mask(black_box(&mut buf), KEY, 0))
    });
    group.bench_function("apply_mask_unaligned", |b| {
        b.iter(|| apply_mask(black_box(&mut buf[1..]), KEY, 1))
    });
    group.bench_function("apply_mask_scalar", |b| {
        b.iter(|| apply_mask_scalar(black_box(&mut buf), KEY, 0))
    });
    group.bench_function("memcpy", |b| {
        b.iter(|| black_box(&mut buf).copy_from_slice(black_box(&src)))
    });
    group.finish();

    // The size of the echo benchmark's large cells: a payload that stays in the L1/L2 cache.
    let mut group = c.benchmark_group("mask_16KiB");
    group.throughput(Throughput::Bytes(16 << 10));
    let src = &src[..16 << 10];
    let mut buf = src.to_vec();
    group.bench_function("apply_mask", |b| {
        b.iter(|| apply_mask(black_box(&mut buf), KEY, 0))
    });
    group.bench_function("memcpy", |b| {
        b.iter(|| black_box(&mut buf).copy_from_slice(black_box(src)))
    });
    group.finish();
}

fn utf8_validation(c: &mut Criterion) {
    let mut group = c.benchmark_group("utf8_1MiB");
    group.throughput(Throughput::Bytes(MIB as u64));
    // ASCII is the common case (JSON); the mixed text takes the multi-byte paths too.
    let ascii: Vec<u8> = b"{\"id\":42,\"text\":\"hello world\"} "
        .iter()
        .copied()
        .cycle()
        .take(MIB)
        .collect();
    let mixed_unit = "κόσμε héllo wörld 🌍 ascii text 日本語 ".as_bytes();
    let mut mixed: Vec<u8> = mixed_unit.iter().copied().cycle().take(MIB).collect();
    // End on a whole code point.
    while std::str::from_utf8(&mixed).is_err() {
        mixed.pop();
    }
    for (name, text) in [("ascii", &ascii), ("mixed", &mixed)] {
        group.bench_with_input(BenchmarkId::new("validate", name), text, |b, text| {
            b.iter(|| utf8::validate(black_box(text)))
        });
        group.bench_with_input(
            BenchmarkId::new("validator_whole", name),
            text,
            |b, text| {
                b.iter(|| {
                    let mut v = Utf8Validator::new();
                    v.feed(black_box(text)).and_then(|_| v.finish())
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("validator_4KiB_chunks", name),
            text,
            |b, text| {
                b.iter(|| {
                    let mut v = Utf8Validator::new();
                    for chunk in black_box(text).chunks(4096) {
                        v.feed(chunk)?;
                    }
                    v.finish()
                })
            },
        );
        let mut dst = vec![0u8; text.len()];
        group.bench_with_input(BenchmarkId::new("memcpy", name), text, |b, text| {
            b.iter(|| black_box(&mut dst).copy_from_slice(black_box(text)))
        });
    }
    group.finish();
}

criterion_group!(benches, headers, masking, utf8_validation);
criterion_main!(benches);
