//! A `wss://` client that trusts one more certificate authority, such as the private CA of a
//! test or staging server, on top of the usual roots: it connects, sends one text message,
//! prints the reply and closes with 1000, then prints the close event.
//!
//! ```sh
//! cargo run -p sockeye-examples --example tls_client -- wss://localhost:8443/echo ca.pem "hello"
//! ```
//!
//! Arguments: the URL, a PEM file of CA certificates to trust, and the message (default
//! `hello`). `sockeye serve --tls-cert cert.pem --tls-key key.pem` is a server to try it on.
//!
//! It prints:
//!
//! ```text
//! connected: tls=true alpn=http/1.1 extensions="permessage-deflate; ..."
//! reply: hello
//! closed: code=1000 reason="done" clean=true
//! ```
//!
//! and exits 0, or prints the error (for a server whose certificate the CA did not sign:
//! `TLS handshake failed: invalid peer certificate: UnknownIssuer`) and exits 1.

use std::time::Duration;

use sockeye::{ClientRequest, ClientTls, Config, Message};

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(ca_file)) = (args.next(), args.next()) else {
        return Err("usage: tls_client wss://HOST:PORT/PATH CA.pem [MESSAGE]".into());
    };
    let text = args.next().unwrap_or_else(|| "hello".to_owned());

    // The bundled Mozilla roots and the platform's, plus the CA of the file. Host names are
    // always verified: the server's certificate must name the URL's host.
    let tls = ClientTls::new().add_root_pem_file(&ca_file)?.build()?;
    let request = ClientRequest::new(&url)?
        .tls(tls)
        .connect_timeout(Duration::from_secs(5));
    let mut ws = sockeye::connect_with(request, Config::default()).await?;

    // `get_ref()` is the stream under the WebSocket: TLS details live there.
    let stream = ws.get_ref();
    let alpn = stream
        .alpn_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    println!(
        "connected: tls={} alpn={} extensions={:?}",
        stream.is_tls(),
        alpn.as_deref().unwrap_or("none"),
        ws.extensions()
    );

    ws.send(text.as_str()).await?;
    // The first message back is the reply; the server could also close instead.
    match ws.recv().await {
        Some(Ok(Message::Text(reply))) => println!("reply: {reply}"),
        Some(Ok(Message::Binary(data))) => println!("reply: {} bytes of binary", data.len()),
        Some(Ok(Message::Close(event))) => {
            return Err(format!("the server closed first: {} {}", event.code, event.reason).into())
        }
        Some(Ok(other)) => return Err(format!("unexpected {other:?}").into()),
        Some(Err(e)) => return Err(e.into()),
        None => return Err("the connection ended without a reply".into()),
    }

    // Like the browser's `ws.close(1000, "done")`: start the closing handshake, then keep
    // reading until the close event, which tells whether the server answered (`was_clean`).
    ws.close(Some(1000), "done").await?;
    while let Some(message) = ws.recv().await {
        if let Message::Close(event) = message? {
            println!(
                "closed: code={} reason={:?} clean={}",
                event.code, event.reason, event.was_clean
            );
        }
    }
    Ok(())
}
