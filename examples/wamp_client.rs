//! A WAMP client (sockeye-wamp's `Client`) doing the four things WAMP is for, against a
//! router: it registers a procedure and calls it (RPC), then subscribes to a topic and
//! publishes on it (PubSub), and leaves.
//!
//! ```sh
//! cargo run -p sockeye-cli -- serve                       # a router at ws://127.0.0.1:8080/wamp
//! cargo run -p sockeye-examples --example wamp_client -- ws://127.0.0.1:8080/wamp realm1
//! ```
//!
//! Arguments: the router's URL (default `ws://127.0.0.1:8080/wamp`) and the realm (default
//! `realm1`). `cargo run -p sockeye-wamp --example wamp_router` is a router too. It prints:
//!
//! ```text
//! joined realm1 as session 1234567
//! registered com.example.add2
//! called com.example.add2(2, 3) = 5
//! subscribed to com.example.greetings
//! published on com.example.greetings: publication 7654321
//! event on com.example.greetings: "hello from wamp_client"
//! left
//! ```

use std::time::Duration;

use sockeye_wamp::client::Client;
use sockeye_wamp::{Dict, Payload, Serializer, Value};

const PROCEDURE: &str = "com.example.add2";
const TOPIC: &str = "com.example.greetings";

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:8080/wamp".to_owned());
    let realm = args.next().unwrap_or_else(|| "realm1".to_owned());

    // Offers the subprotocol `wamp.2.json` and joins the realm anonymously (`connect_with`
    // takes ticket, WAMP-CRA or cryptosign credentials).
    let client = Client::connect(&url, &realm, Serializer::Json).await?;
    println!("joined {realm} as session {}", client.session_id());

    // RPC: register, answer invocations in a task of their own, call.
    let mut registration = client.register(PROCEDURE, Dict::new()).await?;
    println!("registered {PROCEDURE}");
    let callee = client.clone();
    tokio::spawn(async move {
        // Ends when the session does.
        while let Some(invocation) = registration.next().await {
            let args = invocation.payload.args();
            match (
                args.first().and_then(Value::as_i64),
                args.get(1).and_then(Value::as_i64),
            ) {
                (Some(a), Some(b)) => {
                    let sum = Payload::Args(vec![(a + b).into()]);
                    let _ = callee.yield_result(invocation.request, sum).await;
                }
                _ => {
                    let why = Payload::Args(vec!["expected two integers".into()]);
                    let _ = callee
                        .yield_error(invocation.request, "wamp.error.invalid_argument", why)
                        .await;
                }
            }
        }
    });
    let result = client
        .call(
            PROCEDURE,
            Payload::Args(vec![2.into(), 3.into()]),
            Dict::new(),
        )
        .await?;
    let sum = result.payload.args().first().and_then(Value::as_i64);
    println!(
        "called {PROCEDURE}(2, 3) = {}",
        sum.ok_or("no integer in the result")?
    );

    // PubSub: a publisher does not receive its own events unless it says `exclude_me: false`;
    // `acknowledge: true` makes the router confirm the publication.
    let mut subscription = client.subscribe(TOPIC, Dict::new()).await?;
    println!("subscribed to {TOPIC}");
    let options = Dict::new()
        .with("exclude_me", false)
        .with("acknowledge", true);
    let greeting = Payload::Args(vec!["hello from wamp_client".into()]);
    let publication = client.publish(TOPIC, greeting, options).await?;
    println!(
        "published on {TOPIC}: publication {}",
        publication.ok_or("no acknowledgement")?
    );
    let event = tokio::time::timeout(Duration::from_secs(5), subscription.next())
        .await
        .map_err(|_| "no event within 5 s")?
        .ok_or("the session ended before the event")?;
    let text = event.payload.args().first().and_then(Value::as_str);
    println!(
        "event on {TOPIC}: {:?}",
        text.ok_or("no text in the event")?
    );

    // GOODBYE. `leave` sends it and returns; the session is over once the router answered.
    let session = client.clone();
    client.leave().await?;
    tokio::time::timeout(Duration::from_secs(5), async {
        while !session.is_closed() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .map_err(|_| "the router did not answer GOODBYE within 5 s")?;
    println!("left");
    Ok(())
}
