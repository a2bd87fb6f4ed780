//! `cashmatch.v1.Ledger`: the AR system keeps the ledger in step.

use super::convert::{FieldError, decimal, required};
use super::pb::{self, ledger_server};
use super::{observe, principal};
use crate::domain::{Customer, Invoice};
use crate::metrics::Metrics;
use crate::service::{Service, UpsertOutcome};
use rust_decimal::Decimal;
use std::sync::Arc;
use tonic::{Request, Response, Status, Streaming};

/// Records stored per transaction during a streamed load.
const CHUNK: usize = 2_000;

pub(crate) struct LedgerApi {
    pub(crate) service: Arc<Service>,
    pub(crate) metrics: Arc<Metrics>,
}

fn response(o: UpsertOutcome) -> pb::UpsertResponse {
    let UpsertOutcome {
        accepted,
        rejected,
        rematched,
    } = o;
    pb::UpsertResponse {
        rematched,
        accepted,
        rejected: rejected
            .into_iter()
            .map(|r| pb::RecordError {
                index: r.index,
                id: r.id,
                message: r.message,
            })
            .collect(),
    }
}

/// Converts a list, naming a bad element by its place (`invoices[3].amount`).
fn convert_all<P, D>(list: Vec<P>, name: &str) -> Result<Vec<(u64, D)>, FieldError>
where
    D: TryFrom<P, Error = FieldError>,
{
    list.into_iter()
        .enumerate()
        .map(|(i, v)| {
            D::try_from(v)
                .map(|d| (i as u64, d))
                .map_err(|e| e.within(format!("{name}[{i}]")))
        })
        .collect()
}

#[tonic::async_trait]
impl ledger_server::Ledger for LedgerApi {
    async fn upsert_customers(
        &self,
        request: Request<pb::UpsertCustomersRequest>,
    ) -> Result<Response<pb::UpsertResponse>, Status> {
        observe(&self.metrics, "Ledger/UpsertCustomers", async {
            let pb::UpsertCustomersRequest { customers } = request.into_inner();
            let customers = convert_all::<_, Customer>(customers, "customers")?;
            Ok(response(self.service.upsert(customers, Vec::new()).await?))
        })
        .await
    }

    async fn upsert_invoices(
        &self,
        request: Request<pb::UpsertInvoicesRequest>,
    ) -> Result<Response<pb::UpsertResponse>, Status> {
        observe(&self.metrics, "Ledger/UpsertInvoices", async {
            let pb::UpsertInvoicesRequest { invoices } = request.into_inner();
            let invoices = convert_all::<_, Invoice>(invoices, "invoices")?;
            Ok(response(self.service.upsert(Vec::new(), invoices).await?))
        })
        .await
    }

    async fn load_ledger(
        &self,
        request: Request<Streaming<pb::LedgerRecord>>,
    ) -> Result<Response<pb::UpsertResponse>, Status> {
        observe(&self.metrics, "Ledger/LoadLedger", async {
            let mut stream = request.into_inner();
            let mut total = UpsertOutcome::default();
            let (mut customers, mut invoices) = (Vec::new(), Vec::new());
            let mut index: u64 = 0;
            loop {
                let next = stream.message().await?;
                let done = next.is_none();
                if let Some(pb::LedgerRecord { record }) = next {
                    let reject = |id: String, e: FieldError| crate::service::Rejected {
                        index,
                        id,
                        message: e.to_string(),
                    };
                    match record {
                        Some(pb::ledger_record::Record::Customer(c)) => {
                            let id = c.id.clone();
                            match Customer::try_from(c) {
                                Ok(c) => customers.push((index, c)),
                                Err(e) => total.rejected.push(reject(id, e.within("customer"))),
                            }
                        }
                        Some(pb::ledger_record::Record::Invoice(i)) => {
                            let id = i.id.clone();
                            match Invoice::try_from(i) {
                                Ok(i) => invoices.push((index, i)),
                                Err(e) => total.rejected.push(reject(id, e.within("invoice"))),
                            }
                        }
                        None => total.rejected.push(reject(
                            String::new(),
                            FieldError::new("record", "is required: a customer or an invoice"),
                        )),
                    }
                    index += 1;
                }
                if (done && (!customers.is_empty() || !invoices.is_empty()))
                    || customers.len() + invoices.len() >= CHUNK
                {
                    let o = self
                        .service
                        .upsert(
                            std::mem::take(&mut customers),
                            std::mem::take(&mut invoices),
                        )
                        .await?;
                    total.accepted += o.accepted;
                    total.rejected.extend(o.rejected);
                }
                if done {
                    break;
                }
            }
            total.rejected.sort_by_key(|r| r.index);
            Ok(response(total))
        })
        .await
    }

    async fn close_invoice(
        &self,
        request: Request<pb::CloseInvoiceRequest>,
    ) -> Result<Response<pb::Invoice>, Status> {
        observe(&self.metrics, "Ledger/CloseInvoice", async {
            let actor = principal(&request).name;
            let pb::CloseInvoiceRequest { invoice_id, reason } = request.into_inner();
            let id = required("invoice_id", invoice_id)?;
            let inv = self
                .service
                .set_open_amount(id, Decimal::ZERO, "close_invoice", reason, actor)
                .await?;
            Ok(inv.into())
        })
        .await
    }

    async fn adjust_invoice(
        &self,
        request: Request<pb::AdjustInvoiceRequest>,
    ) -> Result<Response<pb::Invoice>, Status> {
        observe(&self.metrics, "Ledger/AdjustInvoice", async {
            let actor = principal(&request).name;
            let pb::AdjustInvoiceRequest {
                invoice_id,
                open_amount,
                reason,
            } = request.into_inner();
            let id = required("invoice_id", invoice_id)?;
            let open = decimal("open_amount", &open_amount)?;
            let inv = self
                .service
                .set_open_amount(id, open, "adjust_invoice", reason, actor)
                .await?;
            Ok(inv.into())
        })
        .await
    }

    async fn get_invoice(
        &self,
        request: Request<pb::GetInvoiceRequest>,
    ) -> Result<Response<pb::Invoice>, Status> {
        observe(&self.metrics, "Ledger/GetInvoice", async {
            let pb::GetInvoiceRequest { invoice_id } = request.into_inner();
            let id = required("invoice_id", invoice_id)?;
            Ok(self.service.invoice(id).await?.into())
        })
        .await
    }
}
