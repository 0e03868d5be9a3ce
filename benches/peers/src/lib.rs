//! What every peer echo server shares: its command line, its runtime and its listener.
//!
//! `SERVER ADDR [--multi-thread] [--deflate]`: listens on ADDR (port 0 picks one), prints
//! `LISTENING <addr>` on stdout once it accepts connections, and echoes every text and binary
//! message on any path until killed. The runtime is tokio's current_thread one unless
//! `--multi-thread` is given (one worker per CPU the process may run on, so `taskset` decides).
//! `--deflate` turns permessage-deflate on where the library has it; it is off otherwise.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

pub struct Args {
    pub addr: SocketAddr,
    pub multi_thread: bool,
    pub deflate: bool,
}

impl Args {
    pub fn parse(deflate_supported: bool) -> Args {
        let mut addr = None;
        let mut multi_thread = false;
        let mut deflate = false;
        for arg in std::env::args().skip(1) {
            match arg.as_str() {
                "--multi-thread" => multi_thread = true,
                "--deflate" if deflate_supported => deflate = true,
                "--deflate" => usage("this library has no permessage-deflate"),
                other if addr.is_none() => {
                    addr = Some(other.parse().unwrap_or_else(|_| usage("bad address")))
                }
                _ => usage("unexpected argument"),
            }
        }
        Args {
            addr: addr.unwrap_or_else(|| "127.0.0.1:0".parse().unwrap()),
            multi_thread,
            deflate,
        }
    }
}

fn usage(why: &str) -> ! {
    eprintln!("{why}\nusage: SERVER [ADDR] [--multi-thread] [--deflate]");
    std::process::exit(2)
}

/// Runs `handle` for every accepted connection (with TCP_NODELAY set, as every contender gets
/// the same socket options) on the runtime `args` asks for.
pub fn serve<F, Fut>(args: &Args, handle: F)
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let runtime = if args.multi_thread {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .expect("runtime");
    let addr = args.addr;
    runtime.block_on(async move {
        let listener = TcpListener::bind(addr).await.expect("bind");
        println!("LISTENING {}", listener.local_addr().expect("local_addr"));
        std::io::stdout().flush().expect("stdout");
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(handle(stream));
                }
                Err(e) => {
                    eprintln!("accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
    });
}
