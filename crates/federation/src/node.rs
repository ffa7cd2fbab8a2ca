//! An oracle node: its own key and HTTP endpoint. Given an epoch request it runs the margin
//! computation it was built with, builds the tree, signs the report, and keeps the epoch so that
//! consumers can fetch leaves and proofs.
//!
//! A node signs only what it agrees with, whoever asks: the request must carry the aggregator's
//! authentication tag ([`crate::wire::AUTH_HEADER`]); its epoch must follow the node's own last
//! signed epoch by at most the deployment's jump bound; its as-of time must be within the
//! node's skew bound of the node's own clock; and its window must not be over nor longer than
//! the deployment's validity bound. The last signed request and its digest are persisted before
//! the signature leaves the node, so a restarted node never signs one epoch twice with
//! different contents, nor an older one.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path as FilePath, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes as Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use basics::Currency;
use oracle::json::{write_account_proof, write_leaves};
use oracle::{AccountResult, Address, B256, Bytes, EpochHeader, EpochTree, RejectionCode};
use oracle::{Signer, Verifier};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::wire::{
    AUTH_HEADER, EPOCHS_PATH, EpochRequest, IDENTITY_PATH, NodeAnswer, NodeIdentity, NodeRefusal,
    is_authentic,
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

/// The node's clock: the current time in Unix seconds (the system clock in the binary, a fixed
/// one in tests).
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Everything a node needs.
#[derive(Clone)]
pub struct NodeConfig {
    /// The node's key; its address must be in the signer set.
    pub signer: Signer,
    /// The deployment, signer set and bounds the node signs for: it refuses an epoch jump or a
    /// window the deployment's contract would refuse.
    pub verifier: Verifier,
    /// The margin computation.
    pub compute: ComputeFn,
    /// Largest distance, seconds, between a request's as-of time and the node's clock.
    pub as_of_skew_secs_max: u64,
    /// The node's clock.
    pub clock: Clock,
    /// The file that keeps the last request signed and its digest across restarts; `None`
    /// keeps them in memory only (a node that must never be restarted: tests).
    pub state_path: Option<PathBuf>,
    /// The secret the aggregator authenticates its requests with (at least 16 bytes).
    pub aggregator_secret: Vec<u8>,
}

/// Bytes of the shortest aggregator secret accepted.
pub const AGGREGATOR_SECRET_BYTES_MIN: usize = 16;

/// What a node persists: the last request it signed and the digest it signed for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LastSigned {
    request: EpochRequest,
    digest: B256,
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
    as_of_skew_secs_max: u64,
    clock: Clock,
    state_path: Option<PathBuf>,
    aggregator_secret: Vec<u8>,
    /// Taken for a whole signing request: one epoch at a time, and no race between two
    /// requests for the same epoch.
    signing: tokio::sync::Mutex<()>,
    /// Held only for short reads and writes, so leaf and proof requests are served while an
    /// epoch is being computed.
    state: std::sync::Mutex<NodeState>,
}

#[derive(Default)]
struct NodeState {
    /// The last request signed and its digest, as persisted: a node never signs two different
    /// reports for one epoch, nor goes back to an older epoch.
    last: Option<LastSigned>,
    epochs: BTreeMap<u64, Arc<SignedEpoch>>,
}

struct SignedEpoch {
    tree: EpochTree,
    answer: NodeAnswer,
}

impl Node {
    /// A node for `config`, resuming from its state file when there is one.
    ///
    /// # Errors
    /// `Config` when the key is not in the signer set, the aggregator secret is shorter than
    /// [`AGGREGATOR_SECRET_BYTES_MIN`], or the state file cannot be read back.
    pub fn new(config: NodeConfig) -> Result<Node, Error> {
        let address = config.signer.address();
        if !config.verifier.signer_set.contains(&address) {
            return Err(Error::config(format!("signer {address} is not in the signer set")));
        }
        if config.aggregator_secret.len() < AGGREGATOR_SECRET_BYTES_MIN {
            let why = format!("at least {AGGREGATOR_SECRET_BYTES_MIN} bytes");
            return Err(Error::config(format!("aggregator_secret: {why}")));
        }
        let last = match &config.state_path {
            Some(path) => read_state(path)?,
            None => None,
        };
        let inner = Inner {
            signer: config.signer,
            verifier: config.verifier,
            compute: config.compute,
            as_of_skew_secs_max: config.as_of_skew_secs_max,
            clock: config.clock,
            state_path: config.state_path,
            aggregator_secret: config.aggregator_secret,
            signing: tokio::sync::Mutex::new(()),
            state: std::sync::Mutex::new(NodeState { last, ..NodeState::default() }),
        };
        Ok(Node { inner: Arc::new(inner) })
    }

    /// The node's signing address.
    #[must_use]
    pub fn address(&self) -> Address {
        self.inner.signer.address()
    }

    /// Computes, builds and signs epoch `request.epoch`, or returns the earlier answer when the
    /// same request comes again (retries are safe, across a restart too: the node recomputes and
    /// signs again only if the digest is the one it persisted).
    ///
    /// # Errors
    /// `Rejected(StaleEpoch)` for an epoch not above the last one signed (or the same epoch
    /// with other contents); `Rejected(EpochJump)` beyond the deployment's jump bound;
    /// `Rejected(NotYetValid)` or `Rejected(Expired)` for an as-of time beyond the skew bound of
    /// the node's clock, or a window already over; `Rejected(ValidityTooLong)` beyond the
    /// validity bound; `Compute` when the computation fails; `Oracle` for results the oracle
    /// refuses; `Io` when the state cannot be persisted (nothing is signed then).
    pub async fn sign_epoch(&self, request: EpochRequest) -> Result<NodeAnswer, Error> {
        let _turn = self.inner.signing.lock().await;
        // Copied out in its own statement, so the state lock is released before the next one.
        let last = self.state().last;
        if let Some(last) = last
            && request == last.request
        {
            if let Some(signed) = self.retained(request.epoch) {
                return Ok(signed.answer.clone());
            }
            // Restarted since it signed this request: the same digest, or nothing.
            let signed = self.compute_and_sign(request).await?;
            if signed.answer.digest != last.digest {
                return Err(RejectionCode::StaleEpoch.into());
            }
            return Ok(self.keep(request, signed));
        }
        self.check(&request, last.map_or(0, |l| l.request.epoch))?;
        let signed = self.compute_and_sign(request).await?;
        let last = LastSigned { request, digest: signed.answer.digest };
        if let Some(path) = &self.inner.state_path {
            write_state(path, &last)?;
        }
        self.state().last = Some(last);
        Ok(self.keep(request, signed))
    }

    /// The node's own rules for a new request, after the last epoch it signed.
    fn check(&self, request: &EpochRequest, last_epoch: u64) -> Result<(), Error> {
        let bounds = self.inner.verifier.bounds;
        if request.epoch <= last_epoch {
            return Err(RejectionCode::StaleEpoch.into());
        }
        if request.epoch - last_epoch > bounds.epoch_jump_max {
            return Err(RejectionCode::EpochJump.into());
        }
        let now = (self.inner.clock)();
        let skew = self.inner.as_of_skew_secs_max;
        if request.as_of_secs > now.saturating_add(skew) {
            return Err(RejectionCode::NotYetValid.into());
        }
        if now > request.as_of_secs.saturating_add(skew) || now > request.valid_until_secs {
            return Err(RejectionCode::Expired.into());
        }
        if request.valid_until_secs.saturating_sub(request.as_of_secs) > bounds.validity_secs_max {
            return Err(RejectionCode::ValidityTooLong.into());
        }
        Ok(())
    }

    /// Retains a signed epoch for leaf and proof requests and returns its answer.
    fn keep(&self, request: EpochRequest, signed: SignedEpoch) -> NodeAnswer {
        let answer = signed.answer.clone();
        let mut state = self.state();
        state.epochs.insert(request.epoch, Arc::new(signed));
        if state.epochs.len() > EPOCHS_RETAINED_MAX {
            state.epochs.pop_first();
        }
        assert!(state.epochs.len() <= EPOCHS_RETAINED_MAX, "Invariant: retained epochs bounded");
        answer
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
        let last_signed_epoch = self.state().last.map_or(0, |last| last.request.epoch);
        NodeIdentity { signer: self.address(), last_signed_epoch }
    }

    fn retained(&self, epoch: u64) -> Option<Arc<SignedEpoch>> {
        self.state().epochs.get(&epoch).cloned()
    }
}

/// The persisted last request, if the file exists.
fn read_state(path: &FilePath) -> Result<Option<LastSigned>, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(Error::config(format!("state {}: {error}", path.display()))),
    };
    let last = serde_json::from_str(&text)
        .map_err(|error| Error::config(format!("state {}: {error}", path.display())))?;
    Ok(Some(last))
}

/// Persists `last` durably: written to a sibling file, synced, renamed over the state file,
/// and the folder synced, so a crash leaves the old state or the new one, never a torn file.
fn write_state(path: &FilePath, last: &LastSigned) -> Result<(), Error> {
    let text =
        serde_json::to_string(last).map_err(|error| Error::config(format!("state: {error}")))?;
    let mut staged = path.as_os_str().to_owned();
    staged.push(".new");
    let staged = PathBuf::from(staged);
    let mut file = std::fs::File::create(&staged)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&staged, path)?;
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(folder)?.sync_all()?;
    }
    Ok(())
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

async fn sign_handler(State(node): State<Node>, headers: HeaderMap, body: Body) -> Response {
    let refuse = |status: StatusCode, message: String| {
        (status, axum::Json(NodeRefusal { code: None, message })).into_response()
    };
    let tag = headers.get(AUTH_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !is_authentic(&node.inner.aggregator_secret, &body, tag) {
        let why = format!("{AUTH_HEADER}: missing or not the aggregator's tag of this body");
        return refuse(StatusCode::UNAUTHORIZED, why);
    }
    let request: EpochRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => return refuse(StatusCode::BAD_REQUEST, format!("body: {error}")),
    };
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
