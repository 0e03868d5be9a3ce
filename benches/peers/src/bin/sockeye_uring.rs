//! Experiment, not a product: sockeye's sans-I/O core (`sockeye::proto`) driven by io_uring on
//! one thread instead of tokio's epoll loop, to measure what batching system calls across
//! connections is worth on the echo cells that the kernel dominates.
//!
//! One `io_uring_enter` per turn of the loop submits every connection's next receive or send
//! and collects every completion, where the epoll servers make one `recvfrom` and one `sendto`
//! per message plus an `epoll_wait` every few messages. Each connection has at most one
//! operation in flight (a receive or a send), so its buffers are never touched while the
//! kernel owns them. Echo on every path; no TLS, no permessage-deflate.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;

use io_uring::{opcode, squeue, types, IoUring};
use sockeye::proto::handshake::{self, accept_response, parse_request, validate_request};
use sockeye::proto::{Connection, ConnectionConfig, DataMessage, Event, Role};

const RING_ENTRIES: u32 = 4096;
const READ_CHUNK: usize = 4 << 10;
const MAX_SLICES: usize = 8;
const MAX_HEAD: usize = 8 << 10;

const ACCEPT: u64 = 0;
const RECV: u64 = 1;
const SEND: u64 = 2;

struct Peer {
    stream: TcpStream,
    /// The request head until the 101 is queued, then `None`.
    head: Option<Vec<u8>>,
    conn: Connection,
    in_flight: bool,
    /// The iovecs of the send in flight; boxed so their address survives a move of `Peer`.
    iov: Box<[IoSlice<'static>; MAX_SLICES]>,
}

struct Server {
    ring: IoUring,
    listener: TcpListener,
    peers: Vec<Option<Peer>>,
    free: Vec<usize>,
    pending: VecDeque<squeue::Entry>,
}

fn main() {
    let args = sockeye_bench_peers::Args::parse(false, false);
    let listener = TcpListener::bind(args.addr).expect("bind");
    println!("LISTENING {}", listener.local_addr().expect("local_addr"));
    io::stdout().flush().expect("stdout");
    let mut server = Server {
        ring: ring().expect("io_uring"),
        listener,
        peers: Vec::new(),
        free: Vec::new(),
        pending: VecDeque::new(),
    };
    server.arm_accept();
    server.run().expect("io_uring loop");
}

/// One thread submits and reaps (`SINGLE_ISSUER`), and completions are run only when it waits
/// for them (`DEFER_TASKRUN`), so the kernel batches their work into the next `io_uring_enter`.
/// `SOCKEYE_URING_FLAGS=none` builds a plain ring instead, to repeat the first, slower run.
fn ring() -> io::Result<IoUring> {
    match std::env::var("SOCKEYE_URING_FLAGS").as_deref() {
        Ok("none") => IoUring::new(RING_ENTRIES),
        _ => IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_coop_taskrun()
            .build(RING_ENTRIES),
    }
}

impl Server {
    fn run(&mut self) -> io::Result<()> {
        let mut done = Vec::with_capacity(RING_ENTRIES as usize);
        loop {
            self.flush_pending();
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
                Err(e) => return Err(e),
            }
            done.clear();
            done.extend(self.ring.completion().map(|c| (c.user_data(), c.result())));
            for &(data, result) in &done {
                let (id, op) = ((data >> 8) as usize, data & 0xff);
                match op {
                    ACCEPT => self.accepted(result),
                    RECV => self.received(id, result),
                    _ => self.sent(id, result),
                }
            }
        }
    }

    fn push(&mut self, entry: squeue::Entry) {
        self.pending.push_back(entry);
    }

    fn flush_pending(&mut self) {
        while let Some(entry) = self.pending.pop_front() {
            // SAFETY: every entry points at memory owned by a `Peer` that keeps it unchanged
            // until the completion arrives (one operation in flight per connection).
            if unsafe { self.ring.submission().push(&entry) }.is_err() {
                self.pending.push_front(entry);
                self.ring.submit().expect("submit");
            }
        }
    }

    fn arm_accept(&mut self) {
        let fd = types::Fd(self.listener.as_raw_fd());
        let entry = opcode::Accept::new(fd, std::ptr::null_mut(), std::ptr::null_mut())
            .build()
            .user_data(ACCEPT);
        self.push(entry);
    }

    fn accepted(&mut self, result: i32) {
        self.arm_accept();
        if result < 0 {
            return;
        }
        use std::os::fd::FromRawFd;
        // SAFETY: a successful accept returns a new descriptor that nothing else owns.
        let stream = unsafe { TcpStream::from_raw_fd(result) };
        let _ = stream.set_nodelay(true);
        let peer = Peer {
            stream,
            head: Some(Vec::new()),
            conn: Connection::new(Role::Server, ConnectionConfig::default()),
            in_flight: false,
            iov: Box::new([IoSlice::new(&[]); MAX_SLICES]),
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.peers[id] = Some(peer);
                id
            }
            None => {
                self.peers.push(Some(peer));
                self.peers.len() - 1
            }
        };
        self.pump(id);
    }

    fn received(&mut self, id: usize, result: i32) {
        let Some(peer) = self.peers[id].as_mut() else {
            return;
        };
        peer.in_flight = false;
        if result <= 0 {
            self.drop_peer(id);
            return;
        }
        let n = result as usize;
        let buf = peer.conn.read_buf();
        // SAFETY: the kernel wrote `n` bytes into the spare capacity handed to the receive.
        unsafe { buf.set_len(buf.len() + n) };
        if let Some(head) = peer.head.as_mut() {
            head.extend_from_slice(buf);
            buf.clear();
            match parse_request(head, MAX_HEAD) {
                Ok(None) => {}
                Ok(Some((req, len))) => match validate_request(&req) {
                    Ok(offer) => {
                        let resp = accept_response(&offer, &offer.negotiate(None, None));
                        let rest = head.split_off(len);
                        peer.head = None;
                        let out = handshake::write_response(&resp, b"");
                        peer.conn.write_buf().extend_from_slice(&out);
                        peer.conn.receive_data(&rest);
                    }
                    Err(_) => return self.drop_peer(id),
                },
                Err(_) => return self.drop_peer(id),
            }
        } else {
            peer.conn.process();
        }
        self.pump(id);
    }

    fn sent(&mut self, id: usize, result: i32) {
        let Some(peer) = self.peers[id].as_mut() else {
            return;
        };
        peer.in_flight = false;
        if result < 0 {
            return self.drop_peer(id);
        }
        peer.conn.advance_written(result as usize);
        self.pump(id);
    }

    /// Echoes what has arrived, then starts the connection's next operation.
    fn pump(&mut self, id: usize) {
        let Some(peer) = self.peers[id].as_mut() else {
            return;
        };
        if peer.in_flight {
            return;
        }
        if peer.head.is_none() {
            while let Some(event) = peer.conn.poll_event() {
                if let Event::Message(msg @ (DataMessage::Text(_) | DataMessage::Binary(_))) = event {
                    let _ = peer.conn.send_owned(msg);
                }
            }
        }
        let fd = types::Fd(peer.stream.as_raw_fd());
        let entry = if peer.conn.buffered_amount() > 0 {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let used = peer.conn.write_slices(&mut slices);
            for (dst, src) in peer.iov.iter_mut().zip(&slices[..used]) {
                // SAFETY: the slices stay valid until the send completes: nothing is queued
                // on or taken from this connection while its one operation is in flight.
                *dst = IoSlice::new(unsafe { std::slice::from_raw_parts(src.as_ptr(), src.len()) });
            }
            opcode::Writev::new(fd, peer.iov.as_ptr().cast(), used as u32)
                .build()
                .user_data(((id as u64) << 8) | SEND)
        } else if peer.conn.eof_to_send() || peer.conn.error().is_some() {
            return self.drop_peer(id);
        } else {
            let want = peer.conn.bytes_wanted().clamp(READ_CHUNK, 1 << 20);
            let buf = peer.conn.read_buf();
            if buf.capacity() - buf.len() < want {
                buf.reserve(want);
            }
            let spare = buf.spare_capacity_mut();
            opcode::Recv::new(fd, spare.as_mut_ptr().cast(), spare.len() as u32)
                .build()
                .user_data(((id as u64) << 8) | RECV)
        };
        peer.in_flight = true;
        self.push(entry);
    }

    fn drop_peer(&mut self, id: usize) {
        if self.peers[id].take().is_some() {
            self.free.push(id);
        }
    }
}
