//! The market's `StockQuote` service in SOAP 1.2 at `/soap` ([MS-SWSB]: one envelope per
//! WebSocket message, subprotocol `soap`), described by the WSDL 1.1 document served at
//! `GET /soap?wsdl`.
//!
//! - `GetQuote(symbol)` → `GetQuoteResponse(quote)`;
//! - `GetQuotes(symbol, symbol, ...)` → `GetQuotesResponse(quote, quote, ...)`.
//!
//! Replies carry `wsa:RelatesTo` with the request's `wsa:MessageID`, so that a client with
//! several requests in flight on one socket can match them. An unknown symbol is a
//! `soap:Sender` fault with the subcode `sq:UnknownSymbol`; a malformed request or an unknown
//! operation is a `soap:Sender` fault (see [`sockeye_soap`] for the parser's limits).

use sockeye_soap::{Element, Fault, FaultCode, Limits};

use super::{Market, Tick};

/// The service's namespace, the WSDL's `targetNamespace`.
pub const NS: &str = "urn:sockeye:demo:stockquote";
/// The WebSocket subprotocol of SOAP (IANA WebSocket Subprotocol Name Registry).
pub const SUBPROTOCOL: &str = "soap";
/// Largest envelope `/soap` takes; larger messages are closed with 1009.
pub const MAX_ENVELOPE: usize = 1 << 20;

const WSDL: &str = include_str!("../../assets/stockquote.wsdl");

/// The WSDL document, with the service's address on the host the client asked for.
pub fn wsdl(scheme: &str, host: &str) -> String {
    WSDL.replace(
        "location=\"{{LOCATION}}\"",
        // `host` comes from the request: it must not be able to write markup into the document.
        &format!(
            "location=\"{scheme}://{}/soap\"",
            sockeye_soap::escape_attribute(host)
        ),
    )
}

/// The reply envelope to one request envelope. A failure of the service itself (a panic) is
/// a `soap:Receiver` fault, and the connection carries on.
pub fn answer(request: &[u8], market: &Market) -> String {
    receiver_fault_on_panic(|| serve(request, market))
}

fn receiver_fault_on_panic(service: impl FnOnce() -> String) -> String {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(service)).unwrap_or_else(|_| {
        sockeye_soap::fault(
            None,
            &Fault {
                code: FaultCode::Receiver,
                subcode: None,
                reason: "the service failed; the request may be retried".into(),
            },
        )
    })
}

fn serve(request: &[u8], market: &Market) -> String {
    let mut limits = Limits::default();
    limits.max_bytes = MAX_ENVELOPE;
    let request = match sockeye_soap::parse_request(request, &limits) {
        Ok(request) => request,
        Err(e) => return sockeye_soap::fault(e.message_id.as_deref(), &e.fault),
    };
    let relates_to = request.message_id.as_deref();
    let body = &request.body;
    if body.namespace.as_deref() != Some(NS) {
        return sockeye_soap::fault(
            relates_to,
            &sender(
                None,
                format!(
                    "no operation {{{}}}{}",
                    body.namespace.as_deref().unwrap_or(""),
                    body.name
                ),
            ),
        );
    }
    let symbols: Vec<&str> = body
        .children_named("symbol")
        .map(|s| s.text.trim())
        .collect();
    let (operation, wanted) = match body.name.as_str() {
        "GetQuote" if symbols.len() == 1 => ("GetQuote", symbols),
        "GetQuote" => {
            return sockeye_soap::fault(
                relates_to,
                &sender(None, "GetQuote takes exactly one symbol".into()),
            )
        }
        "GetQuotes" => ("GetQuotes", symbols),
        other => {
            return sockeye_soap::fault(relates_to, &sender(None, format!("no operation {other}")))
        }
    };
    let mut response = Element::new(Some(NS), &format!("{operation}Response"));
    for symbol in wanted {
        let Some(tick) = market.quote(symbol) else {
            return sockeye_soap::fault(
                relates_to,
                &sender(Some("UnknownSymbol"), format!("unknown symbol {symbol:?}")),
            );
        };
        response = response.with_child(quote(&tick));
    }
    let action = format!("{NS}/{operation}Response");
    sockeye_soap::response(relates_to, Some(&action), &response)
}

fn sender(subcode: Option<&str>, reason: String) -> Fault {
    Fault {
        code: FaultCode::Sender,
        subcode: subcode.map(|s| (NS.to_owned(), s.to_owned())),
        reason,
    }
}

fn quote(tick: &Tick) -> Element {
    let field = |name: &str, text: String| Element::new(Some(NS), name).with_text(text);
    Element::new(Some(NS), "quote")
        .with_child(field("symbol", tick.symbol.to_owned()))
        .with_child(field("bid", tick.bid.to_string()))
        .with_child(field("ask", tick.ask.to_string()))
        .with_child(field("last", tick.last.to_string()))
        .with_child(field("time", tick.time()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_of_the_service_is_a_receiver_fault() {
        let reply = receiver_fault_on_panic(|| panic!("a bug in the service"));
        assert!(
            reply.contains("<env:Value>env:Receiver</env:Value>"),
            "{reply}"
        );
    }

    #[test]
    fn get_quotes_answers_in_the_order_asked_and_one_unknown_symbol_faults_all() {
        let market = Market::new(1, 0);
        let request = |symbols: &[&str]| {
            let symbols: String = symbols
                .iter()
                .map(|s| format!("<symbol>{s}</symbol>"))
                .collect();
            format!(
                r#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><GetQuotes xmlns="{NS}">{symbols}</GetQuotes></e:Body></e:Envelope>"#
            )
        };
        let reply = answer(request(&["TOKIO", "SOCK"]).as_bytes(), &market);
        let tokio = reply.find("<symbol>TOKIO</symbol>").unwrap();
        let sock = reply.find("<symbol>SOCK</symbol>").unwrap();
        assert!(tokio < sock, "{reply}");
        let reply = answer(request(&["TOKIO", "NOPE"]).as_bytes(), &market);
        assert!(
            reply.contains("UnknownSymbol") && !reply.contains("TOKIO"),
            "{reply}"
        );
    }
}
