//! `cashmatch.v1.Models`: which model decides, and switching it without a restart.

use super::convert::required;
use super::pb::{self, models_server};
use super::{observe, principal};
use crate::metrics::Metrics;
use crate::service::Service;
use std::path::PathBuf;
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub(crate) struct ModelsApi {
    pub(crate) service: Arc<Service>,
    pub(crate) metrics: Arc<Metrics>,
}

#[tonic::async_trait]
impl models_server::Models for ModelsApi {
    async fn get_active_model(
        &self,
        request: Request<pb::GetActiveModelRequest>,
    ) -> Result<Response<pb::ModelInfo>, Status> {
        observe(&self.metrics, "Models/GetActiveModel", async {
            let pb::GetActiveModelRequest {} = request.into_inner();
            Ok(self.service.model_info().into())
        })
        .await
    }

    async fn activate_model(
        &self,
        request: Request<pb::ActivateModelRequest>,
    ) -> Result<Response<pb::ModelInfo>, Status> {
        observe(&self.metrics, "Models/ActivateModel", async {
            let actor = principal(&request).name;
            let pb::ActivateModelRequest { directory } = request.into_inner();
            let dir = PathBuf::from(required("directory", directory)?);
            Ok(self.service.activate_model(dir, actor).await?.into())
        })
        .await
    }
}
