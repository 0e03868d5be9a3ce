#!/usr/bin/env python3
"""zeep against the StockQuote service of `sockeye serve` at /soap: SOAP 1.2 over WebSocket.

Usage: soap_zeep_client.py HOST:PORT

zeep loads the WSDL from http://HOST:PORT/soap?wsdl and builds every request envelope
itself. The WSDL's wsam:Action attributes make zeep apply its WS-Addressing plugin
(zeep.wsa.WsAddressingPlugin) to each envelope, so each has wsa:Action, wsa:MessageID and
wsa:To; adding the plugin to the client as well would write those headers twice.

zeep has no WebSocket transport, so the envelopes travel over ONE `websockets` connection to
the address the WSDL names (subprotocol `soap`, [MS-SWSB]: one envelope per text message),
all sent before any reply is read. Replies are matched to requests by wsa:RelatesTo and handed
to the binding's process_reply, which is what zeep does with an HTTP response: it checks the
envelope, raises zeep.exceptions.Fault for an env:Fault, and otherwise deserialises the body
with the operation's output message.

Requests and what must come back:
    GetQuote(SOCK)                -> a Quote for SOCK
    GetQuotes([SOCK, CRAB, TOKIO]) -> three Quotes, in that order
    GetQuote(NOPE)                -> a Fault: Code env:Sender, Subcode sq:UnknownSymbol

stdout: one JSON line, {"ok": BOOL, "address": STR, "results": {...}, "errors": [STR, ...]}.
Exit status 0 if everything matched, 1 if not, 2 on bad arguments.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import sys

import zeep
import zeep.exceptions
import zeep.helpers
from lxml import etree
from websockets.asyncio.client import connect

TIMEOUT = 20.0
ENV = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
SQ = "urn:sockeye:demo:stockquote"
NS = {"env": ENV, "wsa": WSA}
FAULT_ACTION = "http://www.w3.org/2005/08/addressing/soap/fault"

# (label, operation, arguments)
REQUESTS = [
    ("GetQuote SOCK", "GetQuote", {"symbol": "SOCK"}),
    ("GetQuotes SOCK CRAB TOKIO", "GetQuotes", {"symbol": ["SOCK", "CRAB", "TOKIO"]}),
    ("GetQuote NOPE", "GetQuote", {"symbol": "NOPE"}),
]


class Reply:
    """What process_reply reads of a requests.Response: a 200 with the envelope as content."""

    status_code = 200
    encoding = "utf-8"

    def __init__(self, text: str):
        self.content = text.encode("utf-8")
        self.headers = {"Content-Type": "application/soap+xml; charset=utf-8"}


def header_text(doc: etree._Element, name: str) -> str | None:
    return doc.findtext(f"env:Header/wsa:{name}", namespaces=NS)


def fault_code(doc: etree._Element) -> str:
    """The fault's Code/Value as {namespace}local: zeep returns the prefixed text as is."""
    value = doc.find("env:Body/env:Fault/env:Code/env:Value", namespaces=NS)
    prefix, _, local = value.text.strip().rpartition(":")
    return etree.QName(value.nsmap.get(prefix or None), local).text


def check_quote(quote: object, symbol: str, errors: list[str], label: str) -> None:
    q = zeep.helpers.serialize_object(quote, dict)
    if q.get("symbol") != symbol:
        errors.append(f"{label}: symbol {q.get('symbol')!r}, expected {symbol!r}")
    for field in ("bid", "ask", "last"):
        if not isinstance(q.get(field), float):
            errors.append(f"{label}: {field} is {q.get(field)!r}, not a double")
    if isinstance(q.get("bid"), float) and isinstance(q.get("ask"), float) and q["bid"] > q["ask"]:
        errors.append(f"{label}: bid {q['bid']} over ask {q['ask']}")
    time = q.get("time")
    if not isinstance(time, datetime.datetime) or time.tzinfo is None:
        errors.append(f"{label}: time {time!r} is not a dateTime with a zone")


async def run(addr: str) -> dict:
    errors: list[str] = []
    results: dict[str, object] = {}
    transport = zeep.Transport(timeout=TIMEOUT, operation_timeout=TIMEOUT)
    client = zeep.Client(f"http://{addr}/soap?wsdl", transport=transport)
    binding = client.service._binding
    address = client.service._binding_options["address"]
    if address != f"ws://{addr}/soap":
        errors.append(f"the WSDL's address is {address!r}, not ws://{addr}/soap")

    envelopes = []  # (label, operation name, MessageID, envelope text)
    for label, operation, kwargs in REQUESTS:
        envelope = client.create_message(client.service, operation, **kwargs)
        ids = envelope.findall("env:Header/wsa:MessageID", namespaces=NS)
        if len(ids) != 1:
            raise RuntimeError(f"{label}: zeep wrote {len(ids)} wsa:MessageID headers")
        text = etree.tostring(envelope, encoding="unicode")
        envelopes.append((label, operation, ids[0].text, text))

    replies: dict[str, str] = {}
    async with connect(f"ws://{addr}/soap", subprotocols=["soap"], open_timeout=TIMEOUT) as ws:
        if ws.subprotocol != "soap":
            errors.append(f"subprotocol {ws.subprotocol!r}, not 'soap'")
        # All at once: the server must answer each, in whatever order, by wsa:RelatesTo.
        for _, _, _, text in envelopes:
            await ws.send(text)
        while len(replies) < len(envelopes):
            message = await asyncio.wait_for(ws.recv(), TIMEOUT)
            if not isinstance(message, str):
                errors.append("a binary message: SOAP over WebSocket replies are text")
                continue
            relates_to = header_text(etree.fromstring(message.encode("utf-8")), "RelatesTo")
            if relates_to in replies:
                errors.append(f"two replies relate to {relates_to}")
            replies[relates_to] = message

    for label, operation, message_id, _ in envelopes:
        text = replies.get(message_id)
        if text is None:
            errors.append(f"{label}: no reply relates to {message_id}")
            continue
        doc = etree.fromstring(text.encode("utf-8"))
        action = header_text(doc, "Action")
        try:
            result = binding.process_reply(client, binding.get(operation), Reply(text))
        except zeep.exceptions.Fault as fault:
            subcodes = [q.text for q in (fault.subcodes or [])]
            results[label] = {
                "fault": fault_code(doc),
                "code": fault.code,
                "subcodes": subcodes,
                "message": fault.message,
                "action": action,
            }
            if label != "GetQuote NOPE":
                errors.append(f"{label}: fault {fault.code} {fault.message!r}")
                continue
            if fault_code(doc) != f"{{{ENV}}}Sender":
                errors.append(f"{label}: code {fault_code(doc)}, not env:Sender")
            if subcodes != [f"{{{SQ}}}UnknownSymbol"]:
                errors.append(f"{label}: subcodes {subcodes}, not [sq:UnknownSymbol]")
            if action != FAULT_ACTION:
                errors.append(f"{label}: wsa:Action {action!r}, not {FAULT_ACTION}")
            continue
        results[label] = {
            "result": zeep.helpers.serialize_object(result, dict),
            "action": action,
        }
        expected_action = f"{SQ}/{operation}Response"
        if action != expected_action:
            errors.append(f"{label}: wsa:Action {action!r}, not {expected_action}")
        if label == "GetQuote SOCK":
            check_quote(result, "SOCK", errors, label)
        elif label == "GetQuotes SOCK CRAB TOKIO":
            quotes = list(result or [])
            if len(quotes) != 3:
                errors.append(f"{label}: {len(quotes)} quotes, not 3")
            for quote, symbol in zip(quotes, ["SOCK", "CRAB", "TOKIO"]):
                check_quote(quote, symbol, errors, label)
        else:
            errors.append(f"{label}: a result where a fault was due: {result!r}")
    return {"ok": not errors, "address": address, "results": results, "errors": errors}


def main() -> int:
    if len(sys.argv) != 2 or ":" not in sys.argv[1]:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        report = asyncio.run(run(sys.argv[1]))
    except Exception as exc:  # anything zeep or the connection raised is a failure to report
        report = {"ok": False, "results": {}, "errors": [f"{type(exc).__name__}: {exc}"]}
    print(json.dumps(report, default=str, ensure_ascii=True), flush=True)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
