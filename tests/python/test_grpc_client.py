"""The service driven by a client that is not the project's own: Python grpcio with stubs
generated from proto/cashmatch/v1/cashmatch.proto at test time.

Run from the repository root after `cargo build` (or `cargo test`):

    pip install grpcio grpcio-tools
    python3 tests/python/test_grpc_client.py

CASHMATCH_BIN names the binary (default target/debug/cashmatch). The service runs over TLS with the
test certificate of fixtures/tls/, as a deployment with `[tls]` would.
"""

import csv
import importlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from decimal import Decimal

import grpc
from grpc_tools import protoc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("CASHMATCH_BIN", os.path.join(ROOT, "target", "debug", "cashmatch"))
TLS = os.path.join(ROOT, "fixtures", "tls")


def generate_stubs(out_dir):
    """Compiles the proto into out_dir and imports the generated modules."""
    os.makedirs(out_dir, exist_ok=True)
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    rc = protoc.main(
        [
            "grpc_tools.protoc",
            "-I" + os.path.join(ROOT, "proto"),
            "-I" + include,
            "--python_out=" + out_dir,
            "--grpc_python_out=" + out_dir,
            os.path.join(ROOT, "proto", "cashmatch", "v1", "cashmatch.proto"),
        ]
    )
    if rc != 0:
        raise RuntimeError("protoc failed with %d" % rc)
    sys.path.insert(0, out_dir)
    pb = importlib.import_module("cashmatch.v1.cashmatch_pb2")
    rpc = importlib.import_module("cashmatch.v1.cashmatch_pb2_grpc")
    return pb, rpc


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PythonClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="cashmatch-python-")
        cls.pb, cls.rpc = generate_stubs(os.path.join(cls.tmp, "stubs"))
        cls.data = os.path.join(cls.tmp, "data")
        cls.log = open(os.path.join(cls.tmp, "server.log"), "wb")
        cls.config = os.path.join(cls.tmp, "cashmatch.toml")
        with open(cls.config, "w") as f:
            f.write(
                '[tls]\ncert = "%s"\nkey = "%s"\n'
                % (os.path.join(TLS, "server.crt"), os.path.join(TLS, "server.key"))
            )
        with open(os.path.join(TLS, "ca.crt"), "rb") as f:
            cls.ca = f.read()
        cls.start(demo=True)
        # The whole journal, watched from sequence 0 while the tests match and resolve.
        cls.journal = []
        cls.watch = cls.postings.WatchPostings(cls.pb.WatchPostingsRequest(after_sequence=0))
        cls.watcher = threading.Thread(target=cls.follow, daemon=True)
        cls.watcher.start()

    @classmethod
    def start(cls, demo):
        """Starts `cashmatch serve` over TLS on the test's data directory and waits until it answers."""
        port = free_port()
        cls.addr = "127.0.0.1:%d" % port
        args = [BIN, "serve", "--config", cls.config, "--data-dir", cls.data, "--addr", cls.addr, "--no-ui"]
        if demo:
            # The test sends the demo remittances itself; the live feed would race it.
            args += ["--demo", "--demo-feed", "0"]
        cls.server = subprocess.Popen(args, stderr=cls.log)
        cls.channel = grpc.secure_channel(cls.addr, grpc.ssl_channel_credentials(root_certificates=cls.ca))
        cls.models = cls.rpc.ModelsStub(cls.channel)
        deadline = time.time() + 120
        while True:
            try:
                cls.models.GetActiveModel(cls.pb.GetActiveModelRequest(), timeout=2)
                break
            except grpc.RpcError:
                if time.time() > deadline or cls.server.poll() is not None:
                    raise RuntimeError("cashmatch serve did not come up; see " + cls.log.name)
                time.sleep(0.2)
        cls.ledger = cls.rpc.LedgerStub(cls.channel)
        cls.matching = cls.rpc.MatchingStub(cls.channel)
        cls.review = cls.rpc.ReviewStub(cls.channel)
        cls.postings = cls.rpc.PostingsStub(cls.channel)
        cls.reversals = cls.rpc.ReversalsStub(cls.channel)

    @classmethod
    def follow(cls):
        try:
            for p in cls.watch:
                cls.journal.append(p)
        except grpc.RpcError:
            pass  # cancelled by the test, or the server stopped

    @classmethod
    def tearDownClass(cls):
        cls.watch.cancel()
        cls.channel.close()
        if cls.server.poll() is None:
            cls.server.kill()
            cls.server.wait()
        cls.log.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_1_demo_remittances_are_matched_idempotently(self):
        path = os.path.join(self.data, "demo", "remittances.csv")
        with open(path, "rb") as f:
            content = f.read()
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        ids = {r["payment_id"] for r in rows}
        amounts = {r["payment_id"]: Decimal(r["payment_amount"]) for r in rows}
        req = self.pb.MatchRequest(raw=self.pb.RawRemittance(content=content, format="csv", file_name="demo.csv"))
        first = self.matching.MatchPayment(req, timeout=300)
        self.assertEqual(len(first.errors), 0, first.errors)
        self.assertEqual({r.decision.payment_id for r in first.results}, ids)
        auto = [r.decision for r in first.results if r.decision.status == self.pb.DECISION_STATUS_AUTO]
        self.assertGreater(len(auto), 1)
        type(self).auto_applied = [d.payment_id for d in auto]
        for r in first.results:
            d = r.decision
            applied = sum((Decimal(a.amount) for a in d.allocations), Decimal(0))
            self.assertEqual(applied + Decimal(d.unapplied), amounts[d.payment_id], d.payment_id)
        # An auto-applied invoice has its open amount reduced.
        a = auto[0].allocations[0]
        inv = self.ledger.GetInvoice(self.pb.GetInvoiceRequest(invoice_id=a.invoice_id))
        self.assertGreaterEqual(Decimal(inv.open_amount), 0)
        self.assertLessEqual(Decimal(inv.open_amount), Decimal(inv.amount) - Decimal(a.amount))
        # The same file again changes nothing.
        again = self.matching.MatchPayment(req, timeout=300)
        self.assertTrue(all(r.replayed for r in again.results))
        after = self.ledger.GetInvoice(self.pb.GetInvoiceRequest(invoice_id=a.invoice_id))
        self.assertEqual(after.open_amount, inv.open_amount)

    def test_1b_plaintext_and_an_untrusted_certificate_are_refused(self):
        # The server speaks only TLS: a plaintext client gets nothing.
        with grpc.insecure_channel(self.addr) as plain:
            with self.assertRaises(grpc.RpcError):
                self.rpc.ModelsStub(plain).GetActiveModel(self.pb.GetActiveModelRequest(), timeout=5)
        # A client that does not trust the test CA (the system's roots only) refuses the server.
        with grpc.secure_channel(self.addr, grpc.ssl_channel_credentials()) as untrusting:
            with self.assertRaises(grpc.RpcError) as e:
                self.rpc.ModelsStub(untrusting).GetActiveModel(self.pb.GetActiveModelRequest(), timeout=5)
            self.assertEqual(e.exception.code(), grpc.StatusCode.UNAVAILABLE)

    def test_2_a_review_item_is_resolved_with_an_audit_trail(self):
        listed = self.review.ListReviewItems(self.pb.ListReviewItemsRequest(limit=10))
        self.assertGreater(listed.total, 0)
        priorities = [i.priority for i in listed.items]
        self.assertEqual(priorities, sorted(priorities, reverse=True))
        pid = listed.items[0].payment_id
        item = self.review.GetReviewItem(self.pb.GetReviewItemRequest(payment_id=pid))
        self.assertEqual(item.payment.payment_id, pid)
        self.assertTrue(item.decision.explanation)
        done = self.review.ResolveReviewItem(
            self.pb.ResolveReviewItemRequest(
                payment_id=pid,
                analyst="py-analyst",
                leave_unapplied=self.pb.LeaveUnapplied(),
                note="the customer will call back",
            )
        )
        self.assertEqual(done.resolution.analyst, "py-analyst")
        self.assertEqual(done.summary.state, self.pb.REVIEW_STATE_RESOLVED)
        trail = self.review.GetAuditTrail(self.pb.GetAuditTrailRequest(payment_id=pid))
        self.assertEqual([e.action for e in trail.events], ["resolve"])
        self.assertEqual(trail.events[0].actor, "py-analyst")
        labels = list(self.review.ExportLabels(self.pb.ExportLabelsRequest()))
        self.assertIn(pid, [x.payment_id for x in labels])
        # The cash the analyst left is journalled as theirs.
        mine = self.postings.ListPostings(self.pb.ListPostingsRequest(payment_id=pid)).postings
        self.assertEqual([(p.kind, p.actor) for p in mine], [(self.pb.POSTING_KIND_UNAPPLIED, "py-analyst")])
        self.assertEqual(Decimal(mine[0].amount), Decimal(item.payment.amount))
        type(self).resolved_sequence = mine[0].sequence

    def test_2b_the_journal_watched_while_matching_replays_to_the_open_amounts(self):
        # Every posting up to the resolution has arrived on the watch, in order, once.
        deadline = time.time() + 30
        while not self.journal or self.journal[-1].sequence < self.resolved_sequence:
            self.assertLess(time.time(), deadline, "the watch fell behind")
            time.sleep(0.05)
        seqs = [p.sequence for p in self.journal]
        self.assertEqual(seqs, list(range(1, len(seqs) + 1)), "a gap or a duplicate")
        kinds = {p.kind for p in self.journal}
        self.assertIn(self.pb.POSTING_KIND_APPLIED, kinds)
        # Replayed from zero: each invoice's amount less its postings is its open amount now.
        relieved = {}
        for p in self.journal:
            if p.HasField("invoice_id"):
                relieved[p.invoice_id] = relieved.get(p.invoice_id, Decimal(0)) + Decimal(p.amount)
        self.assertGreater(len(relieved), 0)
        for invoice_id, total in relieved.items():
            inv = self.ledger.GetInvoice(self.pb.GetInvoiceRequest(invoice_id=invoice_id))
            self.assertEqual(Decimal(inv.amount) - total, Decimal(inv.open_amount), invoice_id)
            self.assertGreaterEqual(Decimal(inv.open_amount), 0, invoice_id)
        # Resuming from the middle gives exactly the rest.
        mid = seqs[len(seqs) // 2]
        again = self.postings.WatchPostings(self.pb.WatchPostingsRequest(after_sequence=mid))
        rest = []
        for p in again:
            rest.append(p.sequence)
            if p.sequence == seqs[-1]:
                break
        again.cancel()
        self.assertEqual(rest, seqs[seqs.index(mid) + 1 :])

    def test_3_a_missing_field_is_invalid_argument_naming_it(self):
        bad = self.pb.MatchRequest(payment=self.pb.Payment(payment_id="PY-1", amount="10.00"))
        with self.assertRaises(grpc.RpcError) as ctx:
            self.matching.MatchPayment(bad)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertTrue(ctx.exception.details().startswith("payment.currency"), ctx.exception.details())

    def test_4_sigterm_drains_and_exits_cleanly(self):
        self.server.send_signal(signal.SIGTERM)
        self.assertEqual(self.server.wait(timeout=60), 0)
        self.watcher.join(timeout=30)
        self.assertFalse(self.watcher.is_alive(), "the watch outlived the server")

    def test_5_after_a_restart_the_watch_resumes_and_reversals_replay_to_the_open_amounts(self):
        # The ERP stored every posting it booked; the service comes back on the same store.
        booked = list(self.journal)
        last = booked[-1].sequence
        type(self).start(demo=False)
        type(self).journal = []
        type(self).watch = self.postings.WatchPostings(self.pb.WatchPostingsRequest(after_sequence=last))
        type(self).watcher = threading.Thread(target=type(self).follow, daemon=True)
        self.watcher.start()

        returned_id, unapplied_id = self.auto_applied[0], self.auto_applied[1]
        returned = self.reversals.ReversePayment(
            self.pb.ReversePaymentRequest(
                payment_id=returned_id, reason="insufficient funds", return_code="R01", actor="py-ar"
            )
        )
        self.assertEqual(returned.decision.status, self.pb.DECISION_STATUS_RETURNED)
        self.assertFalse(returned.replayed)
        self.assertGreater(len(returned.postings), 0)
        self.assertTrue(all(p.kind == self.pb.POSTING_KIND_REVERSAL for p in returned.postings))
        unapplied = self.reversals.UnapplyPayment(
            self.pb.UnapplyPaymentRequest(payment_id=unapplied_id, note="wrong invoice", actor="py-analyst")
        )
        self.assertEqual(unapplied.item.payment.payment_id, unapplied_id)
        self.assertGreater(len(unapplied.postings), 0)
        # The bank's return sent twice reverses once.
        again = self.reversals.ReversePayment(
            self.pb.ReversePaymentRequest(
                payment_id=returned_id, reason="insufficient funds", return_code="R01", actor="py-ar"
            )
        )
        self.assertTrue(again.replayed)
        # The replay answers with the postings the first return wrote, and writes none.
        self.assertEqual(
            [p.sequence for p in again.postings], [p.sequence for p in returned.postings]
        )

        newest = max(p.sequence for p in list(returned.postings) + list(unapplied.postings))
        deadline = time.time() + 30
        while not self.journal or self.journal[-1].sequence < newest:
            self.assertLess(time.time(), deadline, "the resumed watch fell behind")
            time.sleep(0.05)
        # Nothing missed, nothing twice: the resumed watch starts right after the last booked one.
        seqs = [p.sequence for p in booked + self.journal]
        self.assertEqual(seqs, list(range(1, len(seqs) + 1)), "a gap or a duplicate across the restart")
        # Each reversal undoes a posting booked before the restart.
        by_seq = {p.sequence: p for p in booked}
        for r in list(returned.postings) + list(unapplied.postings):
            original = by_seq[r.reverses]
            self.assertEqual(Decimal(r.amount), -Decimal(original.amount))
            self.assertEqual(r.invoice_id, original.invoice_id)
        # The whole journal replayed from zero, the reversals included, gives every touched
        # invoice's open amount now, never past zero or beyond the item.
        relieved = {}
        for p in booked + self.journal:
            if p.HasField("invoice_id"):
                relieved[p.invoice_id] = relieved.get(p.invoice_id, Decimal(0)) + Decimal(p.amount)
        for invoice_id, total in relieved.items():
            inv = self.ledger.GetInvoice(self.pb.GetInvoiceRequest(invoice_id=invoice_id))
            self.assertEqual(Decimal(inv.amount) - total, Decimal(inv.open_amount), invoice_id)
            # Between zero and the item's amount: a credit memo's amount is negative.
            low, high = sorted((Decimal(0), Decimal(inv.amount)))
            self.assertGreaterEqual(Decimal(inv.open_amount), low, invoice_id)
            self.assertLessEqual(Decimal(inv.open_amount), high, invoice_id)


if __name__ == "__main__":
    unittest.main(verbosity=2)
