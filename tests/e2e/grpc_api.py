"""The gRPC API as the workbench's end-to-end test reads it: sends the demo remittances, then
reports what the service holds about payments and invoices, as JSON on stdout.

    python3 grpc_api.py send ADDR FILE                        # AR system token in $ERP_TOKEN
    python3 grpc_api.py state ADDR PAYMENT_ID [INVOICE_ID...]  # + analyst token in $ANALYST_TOKEN

Stubs are generated from the proto into $STUBS_DIR (once), with the helper of
tests/python/test_grpc_client.py.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

import grpc  # noqa: E402
from test_grpc_client import generate_stubs  # noqa: E402


def main():
    cmd, addr = sys.argv[1], sys.argv[2]
    pb, rpc = generate_stubs(os.environ["STUBS_DIR"])
    # The service runs over TLS with the test certificate of fixtures/tls/.
    with open(os.path.join(HERE, "..", "..", "fixtures", "tls", "ca.crt"), "rb") as f:
        channel = grpc.secure_channel(addr, grpc.ssl_channel_credentials(root_certificates=f.read()))
    erp = [("authorization", "Bearer " + os.environ.get("ERP_TOKEN", ""))]
    analyst = [("authorization", "Bearer " + os.environ.get("ANALYST_TOKEN", ""))]
    if cmd == "send":
        with open(sys.argv[3], "rb") as f:
            content = f.read()
        req = pb.MatchRequest(raw=pb.RawRemittance(content=content, format="csv", file_name="demo.csv"))
        out = rpc.MatchingStub(channel).MatchPayment(req, metadata=erp, timeout=600)
        print(json.dumps({
            "errors": [str(e) for e in out.errors],
            "results": [
                {"payment_id": r.decision.payment_id, "status": pb.DecisionStatus.Name(r.decision.status)}
                for r in out.results
            ],
        }))
    elif cmd == "state":
        pid, invoices = sys.argv[3], sys.argv[4:]
        review = rpc.ReviewStub(channel)
        item = review.GetReviewItem(pb.GetReviewItemRequest(payment_id=pid), metadata=analyst)
        trail = review.GetAuditTrail(pb.GetAuditTrailRequest(payment_id=pid), metadata=analyst)
        decision = rpc.MatchingStub(channel).GetDecision(pb.GetDecisionRequest(payment_id=pid), metadata=erp)
        ledger = rpc.LedgerStub(channel)
        res = item.resolution
        print(json.dumps({
            "state": pb.ReviewState.Name(item.summary.state),
            "decision_status": pb.DecisionStatus.Name(decision.status),
            "resolution": None if not item.HasField("resolution") else {
                "analyst": res.analyst,
                "action": pb.ResolutionAction.Name(res.action),
                "allocations": [
                    {"invoice_id": a.invoice_id, "amount": a.amount, "discount": a.discount,
                     "deduction": a.deduction, "reason_code": a.reason_code}
                    for a in res.allocations
                ],
                "unapplied": res.unapplied,
                "note": res.note,
            },
            "audit": [
                {"actor": e.actor, "action": e.action, "before": json.loads(e.before_json),
                 "after": json.loads(e.after_json)}
                for e in trail.events
            ],
            "invoices": {
                i: ledger.GetInvoice(pb.GetInvoiceRequest(invoice_id=i), metadata=erp).open_amount
                for i in invoices
            },
        }))
    else:
        raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    main()
