//! Receipts and advices that arrive apart (docs/advices.md, "In the service").
//!
//! With holding on ([`AdviceSettings::hold_receipts`]), a bank payment without remittance lines
//! (`advice::is_receipt`) is not decided when it arrives: it is stored as a held receipt and
//! waits for its advice; an advice submitted on its own waits for its money. Every arrival, and
//! every [`Service::advance_holds`], runs the engine's linking (`crate::advice::link`, whose
//! rules this module never second-guesses) over everything waiting:
//!
//! - a link is stored (items linked, the link, its audit event) *before* its payments are
//!   decided, so that a crash in between leaves an active link whose receipt is undecided, which
//!   the next settling decides (nothing accepted is lost; nothing is decided twice, since the
//!   receipt's payment id is the decision's);
//! - the linked payments (the receipt's money, the advice's detail: `advice::merge`) go through
//!   the matcher like any payment: decision, postings, audit, outbox as usual;
//! - a receipt whose hold is over is decided alone, its explanation naming what it could have
//!   been linked to; an advice whose hold is over waits for a person, with its candidates.
//!
//! Held items and links are kept in the store, and in memory under one async lock (a bank's and a
//! person's pace, not the matcher's). Several replicas on one PostgreSQL database share them:
//!
//! - every operation on them reads the book again from the store under the lock (`reload`)
//!   rather than following the change feed. The feed would have to carry held items and links
//!   and still be behind by its poll, so a receipt at replica A and its advice at replica B
//!   could settle on two books that each miss the other; read under the lock, the book is what
//!   every replica has committed. It is a bank's pace, so a read per arrival costs little;
//! - every write of them names what it expects the store to hold (`AdviceWrite::expect`):
//!   an item to link or expire still waiting, an item received not stored yet. The store
//!   checks it in the write's transaction, so of two replicas settling at once one links and
//!   the other is refused with a conflict, reads the book again and settles on what the first
//!   did (never stopping: after `MAX_REDECIDE` refused rounds it leaves the rest to the next
//!   settling). A receipt is decided under its own payment id, which the store refuses twice,
//!   so two replicas deciding one stored link leave one decision.

use super::Service;
use super::api::*;
use super::conflict::{MAX_REDECIDE, is_conflict};
use super::remittance;
use crate::advice::{self, Hold, Link, LinkConfig, Unlinked};
use crate::domain::{Decision, Payment, Status};
use crate::formats::{Format, FormatError, Position};
use crate::store::{
    AdviceBook, AdviceLink, AdviceWrite, AuditRecord, HeldExpect, HeldItem, HeldSide, HeldState,
    ReviewState, Unlink, now,
};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// How the service holds and links receipts and advices (the `[advices]` config).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AdviceSettings {
    /// Whether a bank payment without remittance lines waits for its advice. Off, it is decided
    /// when it arrives, as before; advices submitted on their own are still kept and linked.
    pub hold_receipts: bool,
    /// The linking rules and the hold. `as_of` fixes the day the hold is reckoned at (tests, a
    /// replay of old files); `None` is today (UTC) at each settling.
    pub link: LinkConfig,
}

/// Held items and links, in memory (see the module doc).
#[derive(Debug, Default)]
pub(super) struct Book {
    items: Vec<HeldItem>,
    links: Vec<AdviceLink>,
}

impl Book {
    pub(super) fn restore(b: AdviceBook) -> Book {
        Book {
            items: b.items,
            links: b.links,
        }
    }

    fn find(&self, side: HeldSide, id: &str) -> Option<&HeldItem> {
        self.items
            .iter()
            .find(|i| i.side == side && i.payment.payment_id == id)
    }

    fn find_mut(&mut self, side: HeldSide, id: &str) -> Option<&mut HeldItem> {
        self.items
            .iter_mut()
            .find(|i| i.side == side && i.payment.payment_id == id)
    }

    fn waiting(&self, side: HeldSide) -> Vec<&HeldItem> {
        self.items
            .iter()
            .filter(|i| i.side == side && i.state == HeldState::Waiting)
            .collect()
    }

    fn put(&mut self, item: HeldItem) {
        match self.find_mut(item.side, &item.payment.payment_id) {
            Some(i) => *i = item,
            None => self.items.push(item),
        }
    }

    /// The expectation that `side`/`id` is still stored as this book holds it (absent when it
    /// holds no such item).
    fn expect(&self, side: HeldSide, id: &str) -> HeldExpect {
        HeldExpect {
            side,
            payment_id: id.to_string(),
            states: self
                .find(side, id)
                .map(|i| vec![i.state])
                .unwrap_or_default(),
        }
    }

    fn put_link(&mut self, link: AdviceLink) {
        match self.links.iter_mut().find(|l| l.id == link.id) {
            Some(l) => *l = link,
            None => self.links.push(link),
        }
    }
}

/// Where a submitted advice stands.
#[derive(Clone, Debug)]
pub struct AdviceStanding {
    pub advice_id: String,
    pub state: HeldState,
    /// The link it is part of.
    pub link: Option<AdviceLink>,
    /// The decisions of the link's payments (one per receipt), when it was linked by this call.
    pub decisions: Vec<Matched>,
    /// The receipts it could be linked to, best first.
    pub candidates: Vec<String>,
}

/// What a submission of advices did.
#[derive(Clone, Debug, Default)]
pub struct AdvicesSubmitted {
    pub advices: Vec<AdviceStanding>,
    /// Parts of a file that could not be read, and advices refused (an id already held for a
    /// different advice).
    pub errors: Vec<FormatError>,
}

/// A receipt or advice waiting, as an analyst sees it.
#[derive(Clone, Debug)]
pub struct UnlinkedItem {
    pub item: HeldItem,
    /// Why it is not linked; `None` when the engine would link it at the next settling.
    pub reason: Option<Unlinked>,
    pub hold: Hold,
    /// Its last day of waiting.
    pub hold_until: Option<NaiveDate>,
    /// Ids on the other side it could be linked to, best first.
    pub candidates: Vec<String>,
}

/// A link the engine would make now among the waiting items.
#[derive(Clone, Debug, PartialEq)]
pub struct ProposedLink {
    pub receipts: Vec<String>,
    pub advices: Vec<String>,
    pub fee: Decimal,
    pub evidence: Vec<String>,
}

/// Receipts and advices waiting, side by side.
#[derive(Clone, Debug, Default)]
pub struct UnlinkedView {
    pub as_of: Option<NaiveDate>,
    pub receipts: Vec<UnlinkedItem>,
    /// Waiting advices, then those whose hold ended (for a person).
    pub advices: Vec<UnlinkedItem>,
    pub proposals: Vec<ProposedLink>,
    /// Links in force, most recent first, for undoing.
    pub links: Vec<AdviceLink>,
}

/// An analyst's link: the link and its payments' decisions.
#[derive(Clone, Debug)]
pub struct Linked {
    pub link: AdviceLink,
    pub decisions: Vec<Matched>,
}

/// An undone link: the link as it now stands and the payments whose postings were reversed.
#[derive(Clone, Debug)]
pub struct LinkUndone {
    pub link: AdviceLink,
    pub unapplied: Vec<String>,
}

/// What one settling did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HoldsAdvanced {
    pub links: usize,
    pub receipts_alone: usize,
    pub advices_to_review: usize,
}

/// Who acts when nobody does by hand.
const ENGINE: &str = "engine";

/// What a settling decided, by receipt payment id.
type Decided = HashMap<String, Result<Matched, ServiceError>>;

impl Service {
    /// Puts new settings in force.
    pub fn set_advice_settings(&self, settings: AdviceSettings) {
        *super::state::lock(&self.advice_settings) = settings;
    }

    /// The settings in force.
    pub fn advice_settings(&self) -> AdviceSettings {
        super::state::lock(&self.advice_settings).clone()
    }

    /// The day holds are reckoned at: the settings' fixed day, else today (UTC).
    fn hold_day(&self) -> NaiveDate {
        self.advice_settings()
            .link
            .as_of
            .unwrap_or_else(|| now().date_naive())
    }

    /// Whether `p` is to be held rather than decided now.
    pub(super) fn holds(&self, p: &Payment) -> bool {
        p.returned.is_none()
            && advice::is_receipt(p)
            && super::state::lock(&self.advice_settings).hold_receipts
    }

    /// Reads the book again from the store: what every replica has committed (module doc).
    async fn reload(&self, book: &mut Book) -> Result<(), ServiceError> {
        *book = Book::restore(self.store.advice_book().await?);
        Ok(())
    }

    /// Receipts arriving (see `match_all`): each is held, or answered from what it became (a
    /// link, a decision alone, a replay), in order.
    pub(super) async fn receive_receipts(
        self: &Arc<Self>,
        receipts: Vec<Payment>,
        by: &str,
    ) -> Result<Vec<Result<Matched, ServiceError>>, ServiceError> {
        // Another replica may store one of them first: then they are answered from the book as
        // it is then (a receipt received twice gets the same answer).
        again_after_conflicts("held receipts received", || {
            self.receive_receipts_once(&receipts, by)
        })
        .await
    }

    async fn receive_receipts_once(
        self: &Arc<Self>,
        receipts: &[Payment],
        by: &str,
    ) -> Result<Vec<Result<Matched, ServiceError>>, ServiceError> {
        let mut book = self.advices.lock().await;
        self.reload(&mut book).await?;
        // Per receipt: answered now, decided before it could be held (holding was off then: a
        // replay through the matcher), or newly held.
        enum Answer {
            Now(Box<Result<Matched, ServiceError>>),
            Replay,
            New,
        }
        let mut answers = Vec::with_capacity(receipts.len());
        let mut new_items = Vec::new();
        for p in receipts {
            let known = book.find(HeldSide::Receipt, &p.payment_id).cloned();
            answers.push(match known {
                Some(item) if item.payment != *p => {
                    Answer::Now(Box::new(Err(ServiceError::AlreadyExists(format!(
                        "payment_id {} was already received for a different payment",
                        p.payment_id
                    )))))
                }
                Some(item) if item.state == HeldState::Waiting => {
                    Answer::Now(Box::new(Ok(self.held_answer(&item, true))))
                }
                Some(_) => Answer::Now(Box::new(self.replay_decided(&p.payment_id).await)),
                None if self.is_decided(&p.payment_id) => Answer::Replay,
                None if new_items
                    .iter()
                    .any(|i: &HeldItem| i.payment.payment_id == p.payment_id) =>
                {
                    Answer::Now(Box::new(Err(ServiceError::invalid(
                        "payment.payment_id",
                        format!("{} comes twice in one request", p.payment_id),
                    ))))
                }
                None => {
                    new_items.push(HeldItem {
                        side: HeldSide::Receipt,
                        payment: p.clone(),
                        received_at: now(),
                        received_by: by.to_string(),
                        state: HeldState::Waiting,
                        link_id: None,
                        candidates: Vec::new(),
                    });
                    Answer::New
                }
            });
        }
        let replays: Vec<Payment> = receipts
            .iter()
            .zip(&answers)
            .filter(|(_, a)| matches!(a, Answer::Replay))
            .map(|(p, _)| p.clone())
            .collect();
        let mut replayed = if replays.is_empty() {
            Vec::new()
        } else {
            self.match_now(replays, HashMap::new()).await?
        }
        .into_iter();
        if !new_items.is_empty() {
            self.check_writable()?;
            self.store
                .write_advice(AdviceWrite {
                    expect: new_items
                        .iter()
                        .map(|i| book.expect(i.side, &i.payment.payment_id))
                        .collect(),
                    items: new_items.clone(),
                    ..AdviceWrite::default()
                })
                .await?;
            for item in &new_items {
                book.put(item.clone());
            }
        }
        let (mut decided, _) = self.settle(&mut book).await?;
        let mut out = Vec::with_capacity(receipts.len());
        for (p, a) in receipts.iter().zip(answers) {
            out.push(match a {
                Answer::Now(r) => *r,
                Answer::Replay => replayed.next().unwrap_or_else(|| {
                    Err(ServiceError::Internal("a replay went unanswered".into()))
                }),
                Answer::New => match decided.remove(&p.payment_id) {
                    Some(r) => r,
                    None => match book.find(HeldSide::Receipt, &p.payment_id) {
                        Some(item) => Ok(self.held_answer(item, false)),
                        None => Err(ServiceError::Internal(format!(
                            "receipt {} went missing",
                            p.payment_id
                        ))),
                    },
                },
            });
        }
        Ok(out)
    }

    /// The answer for a receipt held: no decision yet, the day it waits until.
    fn held_answer(&self, item: &HeldItem, replayed: bool) -> Matched {
        let link = self.advice_settings().link;
        let until = hold_until(item, link.hold_business_days);
        let p = &item.payment;
        let (model_version, rules_version) = {
            let core = self.read();
            (
                core.engine.model().version.clone(),
                core.engine.rules().version().to_string(),
            )
        };
        Matched {
            decision: Decision {
                payment_id: p.payment_id.clone(),
                status: Status::Review,
                confidence: 0.0,
                customer_id: None,
                allocations: Vec::new(),
                unapplied: p.amount,
                suggestions: Vec::new(),
                explanation: vec![format!(
                    "held: a bank receipt without remittance detail waits for its advice until {until} ({} business days)",
                    link.hold_business_days
                )],
                review_reason: None,
                model_version,
                rules_version,
                by_rules: Default::default(),
            },
            replayed,
            held: Some(Held { until }),
        }
    }

    async fn replay_decided(&self, payment_id: &str) -> Result<Matched, ServiceError> {
        let d = self.decision(payment_id.to_string()).await?;
        Ok(Matched {
            decision: d,
            replayed: true,
            held: None,
        })
    }

    /// Advices submitted on their own: kept, linked with waiting receipts where the evidence is
    /// clear, and answered with where each stands.
    pub async fn submit_advices(
        self: &Arc<Self>,
        advices: Vec<Payment>,
        by: &str,
    ) -> Result<AdvicesSubmitted, ServiceError> {
        // As for receipts: stored first by another replica, they are answered from the book.
        again_after_conflicts("advices submitted", || {
            self.submit_advices_once(&advices, by)
        })
        .await
    }

    async fn submit_advices_once(
        self: &Arc<Self>,
        advices: &[Payment],
        by: &str,
    ) -> Result<AdvicesSubmitted, ServiceError> {
        let max = self.limits.max_lines_per_remittance;
        let mut out = AdvicesSubmitted::default();
        let mut book = self.advices.lock().await;
        self.reload(&mut book).await?;
        let mut new_items = Vec::new();
        let mut ids = Vec::new();
        for p in advices {
            let refuse = |why: String| {
                FormatError::new(
                    &p.format,
                    Position::File,
                    format!("advice {}: {why}", p.payment_id),
                )
            };
            if p.payment_id.trim().is_empty() {
                out.errors.push(refuse("payment_id is required".into()));
                continue;
            }
            if p.lines.len() > max {
                out.errors.push(refuse(format!(
                    "{} remittance lines exceed the limit of {max}",
                    p.lines.len()
                )));
                continue;
            }
            match book.find(HeldSide::Advice, &p.payment_id) {
                Some(item) if item.payment != *p => {
                    out.errors.push(refuse(
                        "this id was already received for a different advice".into(),
                    ));
                    continue;
                }
                Some(_) => {}
                None if new_items
                    .iter()
                    .any(|i: &HeldItem| i.payment.payment_id == p.payment_id) =>
                {
                    out.errors
                        .push(refuse("the id comes twice in one request".into()));
                    continue;
                }
                None => new_items.push(HeldItem {
                    side: HeldSide::Advice,
                    payment: p.clone(),
                    received_at: now(),
                    received_by: by.to_string(),
                    state: HeldState::Waiting,
                    link_id: None,
                    candidates: Vec::new(),
                }),
            }
            ids.push(p.payment_id.clone());
        }
        if !new_items.is_empty() {
            self.check_writable()?;
            self.store
                .write_advice(AdviceWrite {
                    expect: new_items
                        .iter()
                        .map(|i| book.expect(i.side, &i.payment.payment_id))
                        .collect(),
                    items: new_items.clone(),
                    ..AdviceWrite::default()
                })
                .await?;
            for item in new_items {
                book.put(item);
            }
        }
        let (mut decided, _) = self.settle(&mut book).await?;
        for id in ids {
            let Some(item) = book.find(HeldSide::Advice, &id) else {
                continue;
            };
            let link = item
                .link_id
                .as_ref()
                .and_then(|l| book.links.iter().find(|k| k.id == *l))
                .cloned();
            let mut decisions = Vec::new();
            if let Some(l) = &link {
                for r in &l.receipts {
                    if let Some(d) = decided.remove(r) {
                        decisions.push(d?);
                    }
                }
            }
            out.advices.push(AdviceStanding {
                advice_id: id,
                state: item.state,
                link,
                decisions,
                candidates: item.candidates.clone(),
            });
        }
        Ok(out)
    }

    /// Reads an advice file (any format the service reads, .eml included) and submits each
    /// advice in it.
    pub async fn submit_advice_file(
        self: &Arc<Self>,
        bytes: Vec<u8>,
        file: String,
        format: Option<Format>,
        by: &str,
    ) -> Result<AdvicesSubmitted, ServiceError> {
        let limits = self.limits;
        let parsed = tokio::task::spawn_blocking(move || {
            let parsed = remittance::parse_remittance(&bytes, &file, format)?;
            if parsed.payments.len() > limits.max_payments_per_request {
                return Err(FormatError::new(
                    &file,
                    Position::File,
                    format!(
                        "{} advices exceed the limit of {} per request",
                        parsed.payments.len(),
                        limits.max_payments_per_request
                    ),
                ));
            }
            Ok(parsed)
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?
        .map_err(ServiceError::Input)?;
        let mut out = self.submit_advices(parsed.payments, by).await?;
        let mut errors = parsed.errors;
        errors.append(&mut out.errors);
        out.errors = errors;
        Ok(out)
    }

    /// Settles holds at the day of the settings (today unless fixed): links what the evidence
    /// links, decides receipts whose hold is over alone, and sends advices whose hold is over to
    /// a person. The periodic task of `cashmatch serve` calls it; tests call it after moving the
    /// settings' day.
    pub async fn advance_holds(self: &Arc<Self>) -> Result<HoldsAdvanced, ServiceError> {
        let mut book = self.advices.lock().await;
        let (decided, counts) = self.settle(&mut book).await?;
        for (id, r) in decided {
            if let Err(e) = r {
                tracing::warn!(payment_id = %id, error = %e, "a payment of a settled hold was not decided");
            }
        }
        Ok(counts)
    }

    /// Links and expires over everything waiting (see the module doc); the decisions made, by
    /// receipt payment id. A round refused because another replica linked or expired some of
    /// the same items first is settled again on the book as it then is; after `MAX_REDECIDE`
    /// refused rounds what is left waits for the next settling (the service never stops for a
    /// conflict).
    async fn settle(
        self: &Arc<Self>,
        book: &mut Book,
    ) -> Result<(Decided, HoldsAdvanced), ServiceError> {
        for _ in 0..MAX_REDECIDE {
            self.reload(book).await?;
            match self.settle_once(book).await {
                Err(e) if is_conflict(&e) => {
                    tracing::debug!(error = %e, "held items settled again after a conflict")
                }
                r => return r,
            }
        }
        tracing::warn!("held items left for the next settling after repeated conflicts");
        self.reload(book).await?;
        Ok((HashMap::new(), HoldsAdvanced::default()))
    }

    async fn settle_once(
        self: &Arc<Self>,
        book: &mut Book,
    ) -> Result<(Decided, HoldsAdvanced), ServiceError> {
        let mut config = self.advice_settings().link;
        let today = self.hold_day();
        config.as_of = Some(today);
        let receipts: Vec<Payment> = book
            .waiting(HeldSide::Receipt)
            .into_iter()
            .map(|i| i.payment.clone())
            .collect();
        let advices: Vec<Payment> = book
            .waiting(HeldSide::Advice)
            .into_iter()
            .map(|i| i.payment.clone())
            .collect();
        // Links stored before a crash let their receipts be decided.
        let mut to_decide: Vec<Payment> = Vec::new();
        for l in book.links.iter().filter(|l| l.unlinked.is_none()) {
            if l.receipts.iter().any(|r| !self.is_decided(r)) {
                let (rs, as_) = link_members(book, l)?;
                to_decide.extend(
                    merged(l, &rs, &as_)
                        .into_iter()
                        .filter(|p| !self.is_decided(&p.payment_id)),
                );
            }
        }
        if receipts.is_empty() && advices.is_empty() && to_decide.is_empty() {
            return Ok((HashMap::new(), HoldsAdvanced::default()));
        }
        let linking = {
            let core = self.read();
            advice::link(core.engine.ledger(), &receipts, &advices, &config)
        };
        let at = now();
        let mut write = AdviceWrite::default();
        let mut counts = HoldsAdvanced::default();
        for l in &linking.links {
            let rs: Vec<&Payment> = l.receipts.iter().map(|&i| &receipts[i]).collect();
            let as_: Vec<&Payment> = l.advices.iter().map(|&i| &advices[i]).collect();
            let link = AdviceLink {
                id: link_id(&rs),
                receipts: rs.iter().map(|p| p.payment_id.clone()).collect(),
                advices: as_.iter().map(|p| p.payment_id.clone()).collect(),
                fee: l.fee,
                evidence: l.evidence.clone(),
                linked_by: ENGINE.into(),
                linked_at: at,
                unlinked: None,
            };
            to_decide.extend(advice::merge(l, &receipts, &advices));
            self.record_link(book, &mut write, link, ENGINE);
            counts.links += 1;
        }
        let mut notes: HashMap<String, String> = HashMap::new();
        for p in linking.receipts.iter().filter(|p| p.hold == Hold::Expired) {
            let r = &receipts[p.index];
            let candidates: Vec<String> = p
                .candidates
                .iter()
                .map(|&a| advices[a].payment_id.clone())
                .collect();
            notes.insert(r.payment_id.clone(), alone_note(&candidates, p.reason));
            write
                .expect
                .push(book.expect(HeldSide::Receipt, &r.payment_id));
            if let Some(item) = book.find_mut(HeldSide::Receipt, &r.payment_id) {
                item.state = HeldState::Alone;
                item.candidates = candidates;
                write.items.push(item.clone());
            }
            let mut alone = r.clone();
            advice::mark_alone(&mut alone, &config);
            to_decide.push(alone);
            counts.receipts_alone += 1;
        }
        for p in linking.advices.iter().filter(|p| p.hold == Hold::Expired) {
            let a = &advices[p.index];
            let candidates: Vec<String> = p
                .candidates
                .iter()
                .map(|&r| receipts[r].payment_id.clone())
                .collect();
            write
                .expect
                .push(book.expect(HeldSide::Advice, &a.payment_id));
            if let Some(item) = book.find_mut(HeldSide::Advice, &a.payment_id) {
                item.state = HeldState::Review;
                item.candidates = candidates.clone();
                write.items.push(item.clone());
            }
            write.audit.push(AuditRecord {
                at,
                actor: ENGINE.into(),
                action: "advice_to_review".into(),
                subject: a.payment_id.clone(),
                before: json!({ "state": "waiting" }),
                after: json!({ "state": "review", "candidates": candidates,
                               "reason": p.reason }),
            });
            counts.advices_to_review += 1;
        }
        if !write.items.is_empty() || !write.links.is_empty() {
            self.check_writable()?;
            self.store.write_advice(write).await?;
        }
        let ids: Vec<String> = to_decide.iter().map(|p| p.payment_id.clone()).collect();
        let results = if to_decide.is_empty() {
            Vec::new()
        } else {
            self.match_now(to_decide, notes).await?
        };
        Ok((ids.into_iter().zip(results).collect(), counts))
    }

    /// Marks a link's items linked and queues the link and its audit event in `write`.
    fn record_link(&self, book: &mut Book, write: &mut AdviceWrite, link: AdviceLink, by: &str) {
        let mut before = Vec::new();
        for (side, ids) in [
            (HeldSide::Receipt, &link.receipts),
            (HeldSide::Advice, &link.advices),
        ] {
            for id in ids {
                // As this replica saw it: linked or expired by another meanwhile, the write is
                // refused.
                write.expect.push(book.expect(side, id));
                if let Some(item) = book.find_mut(side, id) {
                    before
                        .push(json!({ "side": side.name(), "id": id, "state": item.state.name() }));
                    item.state = HeldState::Linked;
                    item.link_id = Some(link.id.clone());
                    write.items.push(item.clone());
                }
            }
        }
        write.audit.push(AuditRecord {
            at: link.linked_at,
            actor: by.to_string(),
            action: "link_advice".into(),
            subject: link.id.clone(),
            before: json!({ "items": before }),
            after: serde_json::to_value(&link).unwrap_or_default(),
        });
        book.put_link(link.clone());
        write.links.push(link);
    }

    /// Receipts and advices waiting, with what each could be linked to and the links the engine
    /// would make now.
    pub async fn unlinked(&self) -> Result<UnlinkedView, ServiceError> {
        let mut book = self.advices.lock().await;
        self.reload(&mut book).await?;
        let mut config = self.advice_settings().link;
        config.as_of = Some(self.hold_day());
        let receipts: Vec<&HeldItem> = book.waiting(HeldSide::Receipt);
        let advices: Vec<&HeldItem> = book.waiting(HeldSide::Advice);
        let rp: Vec<Payment> = receipts.iter().map(|i| i.payment.clone()).collect();
        let ap: Vec<Payment> = advices.iter().map(|i| i.payment.clone()).collect();
        let linking = {
            let core = self.read();
            advice::link(core.engine.ledger(), &rp, &ap, &config)
        };
        let hold = config.hold_business_days;
        let item =
            |i: &HeldItem, pending: Option<&advice::Pending>, other: &[Payment]| UnlinkedItem {
                item: i.clone(),
                reason: pending.map(|p| p.reason),
                hold: pending.map_or(Hold::Waiting, |p| p.hold),
                hold_until: Some(hold_until(i, hold)),
                candidates: pending.map_or_else(Vec::new, |p| {
                    p.candidates
                        .iter()
                        .map(|&k| other[k].payment_id.clone())
                        .collect()
                }),
            };
        let mut view = UnlinkedView {
            as_of: config.as_of,
            ..UnlinkedView::default()
        };
        for (k, i) in receipts.iter().enumerate() {
            let p = linking.receipts.iter().find(|p| p.index == k);
            view.receipts.push(item(i, p, &ap));
        }
        for (k, i) in advices.iter().enumerate() {
            let p = linking.advices.iter().find(|p| p.index == k);
            view.advices.push(item(i, p, &rp));
        }
        for i in book
            .items
            .iter()
            .filter(|i| i.side == HeldSide::Advice && i.state == HeldState::Review)
        {
            view.advices.push(UnlinkedItem {
                item: i.clone(),
                reason: None,
                hold: Hold::Expired,
                hold_until: Some(hold_until(i, hold)),
                candidates: i.candidates.clone(),
            });
        }
        view.proposals = linking
            .links
            .iter()
            .map(|l| ProposedLink {
                receipts: l
                    .receipts
                    .iter()
                    .map(|&k| rp[k].payment_id.clone())
                    .collect(),
                advices: l
                    .advices
                    .iter()
                    .map(|&k| ap[k].payment_id.clone())
                    .collect(),
                fee: l.fee,
                evidence: l.evidence.clone(),
            })
            .collect();
        view.links = book
            .links
            .iter()
            .rev()
            .filter(|l| l.unlinked.is_none())
            .cloned()
            .collect();
        Ok(view)
    }

    /// An analyst links waiting receipts and advices by hand. One side must be a single item;
    /// the amounts must add up: equal, or the one receipt short of its advices by no more than
    /// the fee limit (a bank fee). The linked payments are decided as any link's.
    pub async fn link_by_hand(
        self: &Arc<Self>,
        receipt_ids: Vec<String>,
        advice_ids: Vec<String>,
        note: String,
        analyst: &str,
    ) -> Result<Linked, ServiceError> {
        let note = note.trim().to_string();
        if receipt_ids.is_empty() {
            return Err(ServiceError::invalid(
                "receipt_ids",
                "is required: the receipts to link",
            ));
        }
        if advice_ids.is_empty() {
            return Err(ServiceError::invalid(
                "advice_ids",
                "is required: the advices to link",
            ));
        }
        if receipt_ids.len() > 1 && advice_ids.len() > 1 {
            return Err(ServiceError::invalid(
                "receipt_ids",
                "several receipts link to one advice, or one receipt to several advices, not many to many",
            ));
        }
        let config = self.advice_settings().link;
        let mut book = self.advices.lock().await;
        self.reload(&mut book).await?;
        let mut rs = Vec::new();
        for (k, id) in receipt_ids.iter().enumerate() {
            let item = book.find(HeldSide::Receipt, id).ok_or_else(|| {
                ServiceError::NotFound(format!("receipt_ids[{k}]: no held receipt {id}"))
            })?;
            if item.state != HeldState::Waiting {
                return Err(ServiceError::FailedPrecondition(format!(
                    "receipt {id} is {}, not waiting: only a waiting receipt can be linked",
                    item.state.name()
                )));
            }
            if rs.iter().any(|p: &Payment| p.payment_id == *id) {
                return Err(ServiceError::invalid(
                    format!("receipt_ids[{k}]"),
                    format!("{id} is named twice"),
                ));
            }
            rs.push(item.payment.clone());
        }
        let mut as_ = Vec::new();
        for (k, id) in advice_ids.iter().enumerate() {
            let item = book.find(HeldSide::Advice, id).ok_or_else(|| {
                ServiceError::NotFound(format!("advice_ids[{k}]: no held advice {id}"))
            })?;
            if !matches!(item.state, HeldState::Waiting | HeldState::Review) {
                return Err(ServiceError::FailedPrecondition(format!(
                    "advice {id} is {}: only a waiting advice, or one whose hold ended, can be linked",
                    item.state.name()
                )));
            }
            if as_.iter().any(|p: &Payment| p.payment_id == *id) {
                return Err(ServiceError::invalid(
                    format!("advice_ids[{k}]"),
                    format!("{id} is named twice"),
                ));
            }
            as_.push(item.payment.clone());
        }
        let fee = amounts_add_up(&rs, &as_, config.fee_limit)?;
        let at = now();
        let mut evidence = vec![format!("linked by hand by {analyst}")];
        if !note.is_empty() {
            evidence.push(note);
        }
        let l = Link {
            receipts: (0..rs.len()).collect(),
            advices: (0..as_.len()).collect(),
            fee,
            evidence: evidence.clone(),
        };
        let link = AdviceLink {
            id: link_id(&rs.iter().collect::<Vec<_>>()),
            receipts: receipt_ids,
            advices: advice_ids,
            fee,
            evidence,
            linked_by: analyst.to_string(),
            linked_at: at,
            unlinked: None,
        };
        let mut write = AdviceWrite::default();
        self.record_link(&mut book, &mut write, link.clone(), analyst);
        self.check_writable()?;
        self.store.write_advice(write).await?;
        let payments = advice::merge(&l, &rs, &as_);
        let decisions = self
            .match_now(payments, HashMap::new())
            .await?
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Linked { link, decisions })
    }

    /// An analyst undoes a link. Each linked payment whose cash was applied (automatically or by
    /// a resolution) is unapplied through the reversal path (`Service::unapply_payment`): its
    /// postings reversed, the payment back in the review queue. One still waiting in the queue
    /// stays there. The advices wait again; the receipts, decided, are for a person.
    ///
    /// Two replicas undoing the same link at once: one writes first, the other's write is
    /// refused as a conflict, and its second round reads the link undone and answers so, as for
    /// a link undone earlier (FAILED_PRECONDITION naming who undid it), not with the conflict.
    pub async fn unlink(
        self: &Arc<Self>,
        link_id: String,
        note: String,
        by: Actor,
    ) -> Result<LinkUndone, ServiceError> {
        let note = note.trim().to_string();
        if note.is_empty() {
            return Err(ServiceError::invalid(
                "note",
                "is required: say why the link is undone",
            ));
        }
        again_after_conflicts("link undone", || self.unlink_once(&link_id, &note, &by)).await
    }

    async fn unlink_once(
        self: &Arc<Self>,
        link_id: &str,
        note: &str,
        by: &Actor,
    ) -> Result<LinkUndone, ServiceError> {
        let mut book = self.advices.lock().await;
        self.reload(&mut book).await?;
        let link = book
            .links
            .iter()
            .find(|l| l.id == link_id)
            .cloned()
            .ok_or_else(|| ServiceError::NotFound(format!("no advice link {link_id}")))?;
        if let Some(u) = &link.unlinked {
            return Err(ServiceError::FailedPrecondition(format!(
                "link {link_id} was undone already by {} at {}",
                u.by,
                u.at.to_rfc3339()
            )));
        }
        let mut unapplied = Vec::new();
        for r in &link.receipts {
            if !self.is_decided(r) {
                continue;
            }
            let stored = self.decision(r.clone()).await?;
            let state = self
                .store
                .review_item(r.clone())
                .await?
                .map(|i| i.summary.state);
            let applied = matches!(
                (stored.status, state),
                (Status::Auto, None) | (Status::Review, Some(ReviewState::Resolved))
            );
            if applied {
                self.unapply_payment(UnapplyRequest {
                    payment_id: r.clone(),
                    note: format!("unlinked from advice {}: {note}", link.advices.join(", ")),
                    by: by.clone(),
                })
                .await?;
                unapplied.push(r.clone());
            }
        }
        let at = now();
        let mut done = link.clone();
        done.unlinked = Some(Unlink {
            by: by.name.clone(),
            at,
            note: note.to_string(),
        });
        let mut write = AdviceWrite::default();
        for (side, ids, state) in [
            (HeldSide::Receipt, &link.receipts, HeldState::Review),
            (HeldSide::Advice, &link.advices, HeldState::Waiting),
        ] {
            for id in ids {
                write.expect.push(book.expect(side, id));
                if let Some(item) = book.find_mut(side, id) {
                    // A receipt that was never decided (a crash before) waits again too.
                    item.state = if side == HeldSide::Receipt && !self.is_decided(id) {
                        HeldState::Waiting
                    } else {
                        state
                    };
                    item.link_id = None;
                    write.items.push(item.clone());
                }
            }
        }
        write.audit.push(AuditRecord {
            at,
            actor: by.name.clone(),
            action: "unlink_advice".into(),
            subject: link.id.clone(),
            before: serde_json::to_value(&link).unwrap_or_default(),
            after: json!({ "unlinked": done.unlinked, "unapplied": unapplied,
                           "receipts": "review", "advices": "waiting" }),
        });
        write.links.push(done.clone());
        self.check_writable()?;
        self.store.write_advice(write).await?;
        book.put_link(done.clone());
        Ok(LinkUndone {
            link: done,
            unapplied,
        })
    }

    fn check_writable(&self) -> Result<(), ServiceError> {
        if self.stopped.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(ServiceError::Stopped);
        }
        Ok(())
    }
}

/// The last day an item waits: its date (or the day it arrived) plus the hold.
fn hold_until(item: &HeldItem, hold: u32) -> NaiveDate {
    let from = item
        .payment
        .payment_date
        .unwrap_or_else(|| item.received_at.date_naive());
    advice::add_business_days(from, hold)
}

fn link_id(receipts: &[&Payment]) -> String {
    let ids: Vec<&str> = receipts.iter().map(|p| p.payment_id.as_str()).collect();
    format!("link:{}", ids.join("+"))
}

/// The receipts and advices of a stored link, as held.
fn link_members(book: &Book, l: &AdviceLink) -> Result<(Vec<Payment>, Vec<Payment>), ServiceError> {
    let get = |side: HeldSide, id: &String| {
        book.find(side, id)
            .map(|i| i.payment.clone())
            .ok_or_else(|| {
                ServiceError::Internal(format!(
                    "link {}: its {} {id} is not held",
                    l.id,
                    side.name()
                ))
            })
    };
    Ok((
        l.receipts
            .iter()
            .map(|r| get(HeldSide::Receipt, r))
            .collect::<Result<_, _>>()?,
        l.advices
            .iter()
            .map(|a| get(HeldSide::Advice, a))
            .collect::<Result<_, _>>()?,
    ))
}

/// A stored link's payments, made again as when it was linked.
fn merged(l: &AdviceLink, receipts: &[Payment], advices: &[Payment]) -> Vec<Payment> {
    advice::merge(
        &Link {
            receipts: (0..receipts.len()).collect(),
            advices: (0..advices.len()).collect(),
            fee: l.fee,
            evidence: l.evidence.clone(),
        },
        receipts,
        advices,
    )
}

/// Why a receipt is decided alone, for its explanation.
fn alone_note(candidates: &[String], reason: Unlinked) -> String {
    match (candidates.is_empty(), reason) {
        (true, _) => {
            "advice: no remittance advice came within the hold; decided on the bank's data alone"
                .into()
        }
        (false, Unlinked::Ambiguous) => format!(
            "advice: the hold ended with several advices that fit equally well ({}); decided on the bank's data alone",
            candidates.join(", ")
        ),
        (false, Unlinked::NoCandidate) => format!(
            "advice: the hold ended unlinked; it could have been linked to {}; decided on the bank's data alone",
            candidates.join(", ")
        ),
    }
}

/// The fee of a link by hand, or why its amounts do not add up.
fn amounts_add_up(
    receipts: &[Payment],
    advices: &[Payment],
    fee_limit: Decimal,
) -> Result<Decimal, ServiceError> {
    let currency = receipts[0].currency;
    if let Some(p) = receipts
        .iter()
        .chain(advices)
        .find(|p| p.currency != currency)
    {
        return Err(ServiceError::FailedPrecondition(format!(
            "{} is in {}, {} in {}: a link is in one currency",
            receipts[0].payment_id, currency, p.payment_id, p.currency
        )));
    }
    let sum = |ps: &[Payment]| -> Result<Decimal, ServiceError> {
        ps.iter().try_fold(Decimal::ZERO, |s, p| {
            s.checked_add(p.amount).ok_or_else(|| {
                ServiceError::invalid("amount", format!("{} overflows the sum", p.payment_id))
            })
        })
    };
    let (r, a) = (sum(receipts)?, sum(advices)?);
    let fee = a - r;
    let names = |ps: &[Payment]| {
        ps.iter()
            .map(|p| format!("{} ({} {})", p.payment_id, p.amount, p.currency))
            .collect::<Vec<_>>()
            .join(" + ")
    };
    if fee.is_zero() || (receipts.len() == 1 && fee > Decimal::ZERO && fee <= fee_limit) {
        return Ok(fee);
    }
    Err(ServiceError::FailedPrecondition(format!(
        "the amounts do not add up: receipts {} = {r} {currency}, advices {} = {a} {currency}; \
         they must be equal, or one receipt short of its advices by a bank fee of at most {fee_limit}",
        names(receipts),
        names(advices)
    )))
}

/// Runs `once` until it is not refused as a conflict, at most [`MAX_REDECIDE`] times: each run
/// reads the held book again, so a conflict (another replica stored the same item first) ends
/// with an answer from what is stored.
async fn again_after_conflicts<T, F, Fut>(what: &str, mut once: F) -> Result<T, ServiceError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ServiceError>>,
{
    let mut round = 0;
    loop {
        round += 1;
        match once().await {
            Err(e) if is_conflict(&e) && round < MAX_REDECIDE => {
                tracing::debug!(error = %e, "{what} again after a conflict")
            }
            r => return r,
        }
    }
}
