//! An oracle node: its own key and HTTP endpoint. Given an epoch request it runs the margin
//! computation it was built with, builds the tree, signs the report, and keeps the epoch so that
//! consumers can fetch leaves and proofs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use basics::Currency;
use oracle::json::{write_account_proof, write_leaves};
use oracle::{AccountResult, Address, B256, Bytes, EpochHeader, EpochTree, RejectionCode};
use oracle::{Signer, Verifier};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::wire::{
    EPOCHS_PATH, EpochRequest, IDENTITY_PATH, NodeAnswer, NodeIdentity, NodeRefusal,
};
use crate::{Error, ErrorKind};

/// Epochs a node keeps in memory for leaf and proof requests; older ones are dropped.
pub const EPOCHS_RETAINED_MAX: usize = 8;
/// Bytes of one request body; an epoch request is a few dozen.
pub const REQUEST_BODY_BYTES_MAX: usize = 64 * 1024;

/// What the margin computation returns for one epoch request: the inputs it used (as hashes)
/// and one quantised result per account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochInput {
    /// Hash of the market snapshot the computation used.
    pub market_data_hash: B256,
    /// Hash of the methodology and parameters.
    pub methodology_hash: B256,
    /// Reporting currency of every amount.
    pub currency: Currency,
    /// One result per account.
    pub results: Vec<AccountResult>,
}

/// The margin computation a node runs, supplied by the caller (the margin engine in the CLI, a
/// synthetic one in tests). It runs on a blocking thread and must be deterministic: honest nodes
/// agree only if it returns identical results for identical inputs.
pub type ComputeFn = Arc<dyn Fn(&EpochRequest) -> Result<EpochInput, String> + Send + Sync>;

/// Everything a node needs.
#[derive(Clone)]
pub struct NodeConfig {
    /// The node's key; its address must be in the signer set.
    pub signer: Signer,
    /// The deployment and signer set the node signs for.
    pub verifier: Verifier,
    /// The margin computation.
    pub compute: ComputeFn,
}

/// A node, cheap to clone (state is shared).
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

struct Inner {
    signer: Signer,
    verifier: Verifier,
    compute: ComputeFn,
    /// Taken for a whole signing request: one epoch at a time, and no race between two
    /// requests for the same epoch.
    signing: tokio::sync::Mutex<()>,
    /// Held only for short reads and writes, so leaf and proof requests are served while an
    /// epoch is being computed.
    state: std::sync::Mutex<NodeState>,
}

#[derive(Default)]
struct NodeState {
    /// The last request signed: a node never signs two different reports for one epoch, nor
    /// goes back to an older epoch.
    last_request: Option<EpochRequest>,
    epochs: BTreeMap<u64, Arc<SignedEpoch>>,
}

struct SignedEpoch {
    tree: EpochTree,
    answer: NodeAnswer,
}

impl Node {
    /// A node for `config`.
    ///
    /// # Errors
    /// `Config` when the key is not in the signer set.
    pub fn new(config: NodeConfig) -> Result<Node, Error> {
        let address = config.signer.address();
        if !config.verifier.signer_set.contains(&address) {
            return Err(Error::config(format!("signer {address} is not in the signer set")));
        }
        let inner = Inner {
            signer: config.signer,
            verifier: config.verifier,
            compute: config.compute,
            signing: tokio::sync::Mutex::new(()),
            state: std::sync::Mutex::new(NodeState::default()),
        };
        Ok(Node { inner: Arc::new(inner) })
    }

    /// The node's signing address.
    #[must_use]
    pub fn address(&self) -> Address {
        self.inner.signer.address()
    }

    /// Computes, builds and signs epoch `request.epoch`, or returns the earlier answer when the
    /// same request comes again (retries are safe).
    ///
    /// # Errors
    /// `Rejected(StaleEpoch)` for an epoch below the last one signed, or the same epoch with a
    /// different window; `Compute` when the computation fails; `Oracle` for results the oracle
    /// refuses (negative requirements, duplicate accounts, a bad window).
    pub async fn sign_epoch(&self, request: EpochRequest) -> Result<NodeAnswer, Error> {
        let _turn = self.inner.signing.lock().await;
        // Copied out in its own statement, so the state lock is released before the next one.
        let last_request = self.state().last_request;
        if let Some(last) = last_request {
            if request == last
                && let Some(signed) = self.retained(request.epoch)
            {
                return Ok(signed.answer.clone());
            }
            if request.epoch <= last.epoch {
                return Err(RejectionCode::StaleEpoch.into());
            }
        }
        let signed = Arc::new(self.compute_and_sign(request).await?);
        let answer = signed.answer.clone();
        let mut state = self.state();
        state.epochs.insert(request.epoch, signed);
        if state.epochs.len() > EPOCHS_RETAINED_MAX {
            state.epochs.pop_first();
        }
        state.last_request = Some(request);
        assert!(state.epochs.len() <= EPOCHS_RETAINED_MAX, "Invariant: retained epochs bounded");
        Ok(answer)
    }

    /// The shared state. A panic while it was held cannot leave it half-written (every write
    /// is a single insert or assignment), so a poisoned lock is still safe to use.
    fn state(&self) -> std::sync::MutexGuard<'_, NodeState> {
        self.inner.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn compute_and_sign(&self, request: EpochRequest) -> Result<SignedEpoch, Error> {
        let inner = Arc::clone(&self.inner);
        let joined = tokio::task::spawn_blocking(move || -> Result<SignedEpoch, Error> {
            let input = (inner.compute)(&request).map_err(|e| Error::new(ErrorKind::Compute(e)))?;
            let header = EpochHeader {
                epoch: request.epoch,
                as_of_secs: request.as_of_secs,
                valid_until_secs: request.valid_until_secs,
                market_data_hash: input.market_data_hash,
                methodology_hash: input.methodology_hash,
                currency: input.currency,
            };
            let tree = EpochTree::build(&header, &input.results)?;
            let report = tree.report(&inner.verifier.signer_set);
            let digest = report.signing_hash(&inner.verifier.domain);
            let signature = inner.signer.sign_digest(&digest);
            let signer = inner.signer.address();
            let signature = Bytes::copy_from_slice(signature.as_bytes());
            Ok(SignedEpoch { tree, answer: NodeAnswer { signer, report, digest, signature } })
        })
        .await;
        joined.map_err(|error| Error::new(ErrorKind::Compute(format!("task failed: {error}"))))?
    }

    /// The leaves file of a retained epoch, as `oracle::json::write_leaves` writes it. Runs in
    /// the caller's thread and takes time proportional to the number of accounts.
    #[must_use]
    pub fn leaves(&self, epoch: u64) -> Option<String> {
        let signed = self.retained(epoch)?;
        Some(write_leaves(&signed.tree))
    }

    /// One account's proof file from a retained epoch.
    #[must_use]
    pub fn account_proof(&self, epoch: u64, account: &B256) -> Option<String> {
        let signed = self.retained(epoch)?;
        write_account_proof(&signed.tree, account).ok()
    }

    /// The node's address and the last epoch it signed.
    #[must_use]
    pub fn identity(&self) -> NodeIdentity {
        let last_signed_epoch = self.state().last_request.map_or(0, |request| request.epoch);
        NodeIdentity { signer: self.address(), last_signed_epoch }
    }

    fn retained(&self, epoch: u64) -> Option<Arc<SignedEpoch>> {
        self.state().epochs.get(&epoch).cloned()
    }
}

/// The node's HTTP routes:
/// `POST /v1/epochs` (sign), `GET /v1/epochs/{epoch}/leaves`,
/// `GET /v1/epochs/{epoch}/accounts/{account}`, `GET /v1/identity`.
pub fn router(node: Node) -> Router {
    Router::new()
        .route(EPOCHS_PATH, post(sign_handler))
        .route(&format!("{EPOCHS_PATH}/{{epoch}}/leaves"), get(leaves_handler))
        .route(&format!("{EPOCHS_PATH}/{{epoch}}/accounts/{{account}}"), get(account_handler))
        .route(IDENTITY_PATH, get(identity_handler))
        .layer(DefaultBodyLimit::max(REQUEST_BODY_BYTES_MAX))
        .with_state(node)
}

async fn sign_handler(
    State(node): State<Node>,
    axum::Json(request): axum::Json<EpochRequest>,
) -> Response {
    match node.sign_epoch(request).await {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(error) => {
            let (status, code) = match &error.kind {
                ErrorKind::Rejected(code) => (StatusCode::CONFLICT, Some(*code)),
                ErrorKind::Oracle(_) => (StatusCode::UNPROCESSABLE_ENTITY, None),
                _ => (StatusCode::INTERNAL_SERVER_ERROR, None),
            };
            (status, axum::Json(NodeRefusal { code, message: error.to_string() })).into_response()
        }
    }
}

async fn leaves_handler(State(node): State<Node>, Path(epoch): Path<u64>) -> Response {
    // Writing a large epoch's leaves is CPU work; keep it off the async workers.
    let text = tokio::task::spawn_blocking(move || node.leaves(epoch)).await;
    json_or_not_found(text.ok().flatten())
}

async fn account_handler(
    State(node): State<Node>,
    Path((epoch, account)): Path<(u64, String)>,
) -> Response {
    let Ok(account) = account.parse::<B256>() else {
        return (StatusCode::BAD_REQUEST, "account: expected 0x and 64 hex digits").into_response();
    };
    json_or_not_found(node.account_proof(epoch, &account))
}

async fn identity_handler(State(node): State<Node>) -> Response {
    axum::Json(node.identity()).into_response()
}

fn json_or_not_found(body: Option<String>) -> Response {
    match body {
        Some(text) => ([(header::CONTENT_TYPE, "application/json")], text).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A node serving on a socket, until [`NodeHandle::shutdown`].
pub struct NodeHandle {
    local_addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl NodeHandle {
    /// The bound address (the real port when `listen` asked for port 0).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The base URL of the node, e.g. `http://127.0.0.1:8545`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// Stops accepting connections, lets requests in flight finish, and waits for the server.
    ///
    /// # Errors
    /// `Io` when the server failed.
    pub async fn shutdown(self) -> Result<(), Error> {
        // The server may already have stopped on its own; its result is what matters.
        let _ = self.shutdown.send(());
        join_server(self.task).await
    }

    /// Waits until the server stops (for a binary that serves until killed).
    ///
    /// # Errors
    /// `Io` when the server failed.
    pub async fn wait(self) -> Result<(), Error> {
        // Keeping the sender alive keeps the server running.
        let _shutdown = self.shutdown;
        join_server(self.task).await
    }
}

async fn join_server(task: JoinHandle<std::io::Result<()>>) -> Result<(), Error> {
    let joined = task.await.map_err(|error| std::io::Error::other(error.to_string()))?;
    Ok(joined?)
}

/// Binds `listen` and serves `node` on a spawned task. Call from inside a tokio runtime.
///
/// # Errors
/// `Io` when the address cannot be bound.
pub async fn spawn_node(node: Node, listen: SocketAddr) -> Result<NodeHandle, Error> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let local_addr = listener.local_addr()?;
    let (shutdown, stop) = oneshot::channel::<()>();
    let app = router(node);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                // A dropped sender also means stop.
                let _ = stop.await;
            })
            .await
    });
    Ok(NodeHandle { local_addr, shutdown, task })
}
