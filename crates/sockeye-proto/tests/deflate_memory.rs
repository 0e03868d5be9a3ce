//! What permessage-deflate holds per connection between messages, counted by the allocator
//! itself: the estimates `/metrics` reports, and the cost of each `CompressionPolicy` for an
//! idle connection that has sent and received one compressed message.
//!
//! One test in this binary, so that nothing else allocates while it counts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use sockeye_proto::deflate::{compressor_bytes, DECOMPRESSOR_BYTES};
use sockeye_proto::{CompressionPolicy, DeflateConfig, DeflateParams, PerMessageDeflate, Role};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts sizes. (A test-only
// allocator: counting is the only way to see what zlib-rs allocates.)
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn within(measured: isize, estimate: usize, what: &str) {
    let diff = (measured - estimate as isize).unsigned_abs();
    assert!(
        diff * 50 <= estimate,
        "{what}: allocated {measured}, estimated {estimate}"
    );
}

const TICK: &[u8] = br#"{"type":"tick","symbol":"SCKY","seq":1042,"bid":101.25,"ask":101.27,"last":101.26,"volume":41870,"time":"2026-12-05T06:33:37.042Z"}"#;

/// A client offering what Chromium offers, and a server with `policy`.
fn negotiated(policy: CompressionPolicy) -> (DeflateConfig, DeflateParams) {
    let server = DeflateConfig::with_policy(policy);
    let offer = sockeye_proto::extensions::parse_extensions([
        &b"permessage-deflate; client_max_window_bits"[..],
    ])
    .unwrap();
    let (params, _) = server.server_accept(&offer).unwrap();
    (server, params)
}

const WARM: usize = 20;

/// Live bytes per server connection that has sent one tick and received one, compressed.
fn idle_bytes_per_connection(policy: CompressionPolicy, n: usize) -> (isize, usize) {
    let (config, params) = negotiated(policy);
    let client_config = DeflateConfig::with_policy(CompressionPolicy::Max);
    let mut client = PerMessageDeflate::new(Role::Client, params, &client_config);
    let mut inbound = Vec::new();
    client.compress(TICK, &mut inbound, true);
    let mut out = Vec::new();
    let mut scratch = Vec::new();
    let mut run = |conns: &mut Vec<PerMessageDeflate>| {
        let mut conn = PerMessageDeflate::new(Role::Server, params, &config);
        scratch.clear();
        assert!(conn.compress_message(TICK, &mut scratch));
        out.clear();
        conn.decompress(&inbound, &mut out, 1 << 20).unwrap();
        conn.finish_inbound(&mut out, 1 << 20).unwrap();
        assert_eq!(out, TICK);
        conns.push(conn);
    };
    // Warm up the buffers, and fill the shared cache (16 compressors, set below) so that what follows
    // is what each connection adds.
    let mut warm = Vec::with_capacity(WARM);
    for _ in 0..WARM {
        run(&mut warm);
    }
    let mut conns = Vec::with_capacity(n);
    let before = live();
    for _ in 0..n {
        run(&mut conns);
    }
    let per = (live() - before) / n as isize;
    let held = conns[0].held_bytes();
    assert!(conns.iter().all(|c| c.held_bytes() == held));
    let memory = sockeye_proto::deflate::memory();
    // `client`, `warm` and `conns` are all the connections alive.
    let servers_holding = if held > 0 { n + WARM } else { 0 };
    let client_holding = usize::from(client.held_bytes() > 0);
    assert_eq!(
        memory.connections,
        servers_holding + client_holding,
        "{memory:?}"
    );
    assert_eq!(
        memory.connection_bytes,
        (n + WARM) * held + client.held_bytes(),
        "{memory:?}"
    );
    (per, held)
}

#[test]
fn what_each_policy_holds_per_idle_connection_and_what_metrics_estimate() {
    sockeye_proto::deflate::set_shared_compressors(16);
    // The estimates against what zlib-rs allocates.
    for bits in 9..=15u8 {
        let before = live();
        let mut c = Compress::new_with_window_bits(Compression::new(6), false, bits);
        let mut out = Vec::with_capacity(64);
        c.compress_vec(b"Hello", &mut out, FlushCompress::Sync)
            .unwrap();
        within(live() - before - 64, compressor_bytes(bits), "compressor");
        let before = live();
        let mut d = Decompress::new_with_window_bits(false, 15);
        let mut plain = Vec::with_capacity(64);
        d.decompress_vec(&out, &mut plain, FlushDecompress::Sync)
            .unwrap();
        within(live() - before - 64, DECOMPRESSOR_BYTES, "decompressor");
    }

    let (fast, held) = idle_bytes_per_connection(CompressionPolicy::Fast, 50);
    assert_eq!(held, 0);
    let (balanced, held) = idle_bytes_per_connection(CompressionPolicy::Balanced, 50);
    assert_eq!(held, TICK.len(), "the window retained so far");
    let (max, held) = idle_bytes_per_connection(CompressionPolicy::Max, 50);
    assert_eq!(held, compressor_bytes(15) + DECOMPRESSOR_BYTES);
    eprintln!("bytes per idle connection: fast {fast}, balanced {balanced}, max {max}");
    // The struct itself (boxed by the connection) is all `fast` holds.
    let own = std::mem::size_of::<PerMessageDeflate>() as isize;
    assert!(fast <= own, "fast {fast}");
    assert!(balanced <= own + TICK.len() as isize, "balanced {balanced}");
    within(max - own, compressor_bytes(15) + DECOMPRESSOR_BYTES, "max");

    // Quiet now: the shared cache gives back what no message took between two calls.
    let shared = sockeye_proto::deflate::memory().shared_bytes;
    assert!(shared > 0);
    let before = live();
    sockeye_proto::deflate::release_idle_shared();
    assert_eq!(sockeye_proto::deflate::memory().shared_bytes, shared);
    assert!(sockeye_proto::deflate::release_idle_shared() > 0);
    assert_eq!(sockeye_proto::deflate::memory().shared_bytes, 0);
    within(before - live(), shared, "released");
}
