//! AdminService: every admin action, for the web UI's gateway and for
//! automation alike. Each mutation runs in one write transaction that also
//! recompiles the snapshot; an invalid result rolls the change back, a valid
//! one is published right after the commit, so data planes see the change
//! before the call returns (and within a second in practice).

pub mod client_keys;
pub mod pricing;
pub mod providers;
pub mod validate;

use std::sync::{Arc, Mutex, PoisonError};

use aigw_proto::pb::admin::admin_service_server::AdminService;
use aigw_proto::pb::admin::{
    ClientKeyList, ClientKeySpec, DeleteResult, ListRequest, NameRequest, NodeList, PriceList,
    PriceSpec, ProviderList, ProviderSpec, UpsertResult,
};
use tonic::{Request, Response, Status};

use crate::auth;
use crate::compile::compile;
use crate::crypto::MasterKey;
use crate::db::config::{self, load_all};
use crate::db::{AnyConnection, Db, write_tx};
use crate::error::Result;
use crate::push::{Publisher, Registry};

#[derive(Clone)]
pub struct AdminSvc {
    pub db: Db,
    pub master: MasterKey,
    pub publisher: Publisher,
    pub registry: Registry,
    pub admin_tokens: Arc<[[u8; 32]]>,
    /// Serializes mutations so snapshots are published in commit order. A
    /// std mutex, held on the blocking thread, because that thread finishes
    /// commit and publish even if the caller goes away mid-request.
    pub write_lock: Arc<Mutex<()>>,
}

impl AdminSvc {
    fn authorize<T>(&self, req: &Request<T>) -> Result<(), Status> {
        auth::check(req.metadata(), &self.admin_tokens).map_err(Status::from)
    }

    /// Runs `change` in a write transaction; when it reports a change, the
    /// snapshot is recompiled (validated) in the same transaction and
    /// published after the commit.
    pub async fn mutate<T, F>(&self, change: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection, &MasterKey) -> Result<(T, bool)> + Send + 'static,
    {
        let master = self.master.clone();
        let publisher = self.publisher.clone();
        let lock = self.write_lock.clone();
        self.db
            .run(move |conn| {
                let _serial = lock.lock().unwrap_or_else(PoisonError::into_inner);
                let (out, snapshot) = write_tx(conn, |conn| {
                    let (out, changed) = change(conn, &master)?;
                    let snapshot = if changed {
                        Some(compile(&load_all(conn)?, &master)?)
                    } else {
                        None
                    };
                    Ok((out, snapshot))
                })?;
                if let Some(s) = snapshot {
                    publisher.publish(s);
                }
                Ok(out)
            })
            .await
    }

    async fn read<T, F>(&self, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T> + Send + 'static,
    {
        self.db.run(f).await.map_err(Status::from)
    }
}

fn deleted(what: &str, name: &str, deleted: bool) -> (DeleteResult, bool) {
    if deleted {
        tracing::info!(what, name, "deleted");
    }
    (DeleteResult { deleted }, deleted)
}

fn log_upsert(what: &str, name: &str, r: &UpsertResult) {
    if r.changed {
        tracing::info!(what, name, created = r.created, "upserted");
    }
}

#[tonic::async_trait]
impl AdminService for AdminSvc {
    async fn upsert_provider(
        &self,
        request: Request<ProviderSpec>,
    ) -> Result<Response<UpsertResult>, Status> {
        self.authorize(&request)?;
        let input = providers::validate(request.into_inner())?;
        let name = input.name().to_string();
        let r = self
            .mutate(move |conn, master| providers::upsert(conn, master, &input))
            .await?;
        log_upsert("provider", &name, &r);
        Ok(Response::new(r))
    }

    async fn delete_provider(
        &self,
        request: Request<NameRequest>,
    ) -> Result<Response<DeleteResult>, Status> {
        self.authorize(&request)?;
        let name = request.into_inner().name;
        let n = name.clone();
        let r = self
            .mutate(move |conn, _| Ok(deleted("provider", &n, config::delete_provider(conn, &n)?)))
            .await?;
        Ok(Response::new(r))
    }

    async fn list_providers(
        &self,
        request: Request<ListRequest>,
    ) -> Result<Response<ProviderList>, Status> {
        self.authorize(&request)?;
        let providers = self.read(providers::list).await?;
        Ok(Response::new(ProviderList { providers }))
    }

    async fn upsert_price(
        &self,
        request: Request<PriceSpec>,
    ) -> Result<Response<UpsertResult>, Status> {
        self.authorize(&request)?;
        let spec = request.into_inner();
        pricing::validate(&spec)?;
        let model = spec.model.clone();
        let r = self
            .mutate(move |conn, _| pricing::upsert(conn, &spec))
            .await?;
        log_upsert("price", &model, &r);
        Ok(Response::new(r))
    }

    async fn delete_price(
        &self,
        request: Request<NameRequest>,
    ) -> Result<Response<DeleteResult>, Status> {
        self.authorize(&request)?;
        let model = request.into_inner().name;
        let r = self
            .mutate(move |conn, _| {
                Ok(deleted(
                    "price",
                    &model,
                    config::delete_price(conn, &model)?,
                ))
            })
            .await?;
        Ok(Response::new(r))
    }

    async fn list_pricing(
        &self,
        request: Request<ListRequest>,
    ) -> Result<Response<PriceList>, Status> {
        self.authorize(&request)?;
        let pricing = self.read(pricing::list).await?;
        Ok(Response::new(PriceList { pricing }))
    }

    async fn upsert_client_key(
        &self,
        request: Request<ClientKeySpec>,
    ) -> Result<Response<UpsertResult>, Status> {
        self.authorize(&request)?;
        let spec = request.into_inner();
        let name = spec.name.clone();
        let input = client_keys::validate(spec)?;
        let r = self
            .mutate(move |conn, _| client_keys::upsert(conn, &input))
            .await?;
        log_upsert("client_key", &name, &r);
        Ok(Response::new(r))
    }

    async fn delete_client_key(
        &self,
        request: Request<NameRequest>,
    ) -> Result<Response<DeleteResult>, Status> {
        self.authorize(&request)?;
        let name = request.into_inner().name;
        let r = self
            .mutate(move |conn, _| {
                Ok(deleted(
                    "client_key",
                    &name,
                    config::delete_client_key(conn, &name)?,
                ))
            })
            .await?;
        Ok(Response::new(r))
    }

    async fn list_client_keys(
        &self,
        request: Request<ListRequest>,
    ) -> Result<Response<ClientKeyList>, Status> {
        self.authorize(&request)?;
        let client_keys = self.read(client_keys::list).await?;
        Ok(Response::new(ClientKeyList { client_keys }))
    }

    async fn list_nodes(
        &self,
        request: Request<ListRequest>,
    ) -> Result<Response<NodeList>, Status> {
        self.authorize(&request)?;
        Ok(Response::new(NodeList {
            nodes: self.registry.list(),
            current_version: self.publisher.current().version.clone(),
        }))
    }
}

#[cfg(test)]
mod tests;
