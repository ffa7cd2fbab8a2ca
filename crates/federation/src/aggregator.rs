//! The aggregator: asks every node for its signed report of an epoch, groups the answers by
//! EIP-712 digest, and publishes the one report that at least `threshold` distinct signers
//! signed, with their signatures in ascending signer order, ready for `submitRoot`.
//!
//! A node that computed from other market data, another methodology or wrong results signs a
//! different digest and lands in a different group; a node that answers for another epoch or
//! window, signs with a key outside the set, or claims a signer its signature does not recover
//! to, is discarded. Only a threshold of honest, up-to-date nodes can publish.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use oracle::limits::SIGNERS_MAX;
use oracle::signer::recover_signer;
use oracle::{Address, B256, Bytes, RejectionCode, Report, SignedReport, Verifier};
use tokio::task::JoinSet;

use crate::wire::{AUTH_HEADER, EPOCHS_PATH, EpochRequest, NodeAnswer, NodeRefusal, tag};
use crate::{Error, ErrorKind};

/// Nodes one aggregator asks; each holds one key of the signer set.
pub const NODES_MAX: usize = SIGNERS_MAX;
/// Bytes of one node answer; a signed answer is under 1 KiB.
pub const ANSWER_BYTES_MAX: usize = 64 * 1024;
/// Body chunks read from one node answer before giving up on it.
const ANSWER_CHUNKS_MAX: usize = 1_024;

/// Where the nodes are and what to trust.
#[derive(Debug, Clone)]
pub struct AggregatorConfig {
    /// Base URLs of the nodes, e.g. `http://127.0.0.1:8545`.
    pub nodes: Vec<String>,
    /// The deployment and signer set reports must be valid for.
    pub verifier: Verifier,
    /// How long to wait for one node's answer, computation included.
    pub answer_timeout: Duration,
    /// The secret shared with the nodes; every request carries its tag ([`AUTH_HEADER`]).
    pub secret: Vec<u8>,
}

/// What became of one node's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeStatus {
    /// Signed the published report.
    Agreed,
    /// Validly signed a report, but no report reached the threshold.
    Signed {
        /// The digest it signed.
        digest: B256,
    },
    /// Validly signed a different report (other inputs or a faulty computation).
    Dissented {
        /// The digest it signed.
        digest: B256,
    },
    /// The answer was discarded; `code` is set when a verifier rule names the reason.
    Invalid {
        /// The stable code, when one applies.
        code: Option<RejectionCode>,
        /// Why the answer was discarded.
        reason: String,
    },
    /// The node refused to sign.
    Refused(NodeRefusal),
    /// No answer: connection failure or timeout.
    Unreachable(String),
}

impl std::fmt::Display for NodeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeStatus::Agreed => f.write_str("agreed"),
            NodeStatus::Signed { digest } => write!(f, "signed {digest}, short of a quorum"),
            NodeStatus::Dissented { digest } => write!(f, "signed another report, {digest}"),
            NodeStatus::Invalid { code: Some(code), reason } => {
                write!(f, "invalid: {reason}, {code}")
            }
            NodeStatus::Invalid { code: None, reason } => write!(f, "invalid: {reason}"),
            NodeStatus::Refused(NodeRefusal { code: Some(code), message }) => {
                write!(f, "refused, {code}: {message}")
            }
            NodeStatus::Refused(NodeRefusal { code: None, message }) => {
                write!(f, "refused: {message}")
            }
            NodeStatus::Unreachable(why) => write!(f, "unreachable: {why}"),
        }
    }
}

/// One node's outcome, in the order of [`AggregatorConfig::nodes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeOutcome {
    /// The node's base URL.
    pub node: String,
    /// The signer the node claimed, when it answered.
    pub signer: Option<Address>,
    /// What became of its answer.
    pub status: NodeStatus,
}

/// A published report with the fate of every node's answer.
#[derive(Debug, Clone)]
pub struct Published {
    /// The report and its quorum of signatures, ascending by signer.
    pub signed: SignedReport,
    /// The EIP-712 digest the signatures cover.
    pub digest: B256,
    /// The signers whose signatures are included, ascending.
    pub signers: Vec<Address>,
    /// Every node's outcome, in configuration order.
    pub outcomes: Vec<NodeOutcome>,
}

/// An aggregator that remembers the last epoch it published and never goes back.
#[derive(Debug)]
pub struct Aggregator {
    config: AggregatorConfig,
    client: reqwest::Client,
    last_published_epoch: u64,
}

/// A valid, signed answer.
struct Vote {
    signer: Address,
    digest: B256,
    report: Report,
    signature: Bytes,
}

impl Aggregator {
    /// An aggregator that has already published up to `last_published_epoch` (0 for none).
    ///
    /// # Errors
    /// `Config` for no nodes, more than [`NODES_MAX`], or a zero timeout.
    pub fn new(config: AggregatorConfig, last_published_epoch: u64) -> Result<Aggregator, Error> {
        if config.nodes.is_empty() || config.nodes.len() > NODES_MAX {
            let count = config.nodes.len();
            return Err(Error::config(format!("nodes: 1..={NODES_MAX} base URLs, got {count}")));
        }
        if config.answer_timeout.is_zero() {
            return Err(Error::config("answer_timeout: must be above zero"));
        }
        if config.secret.len() < crate::node::AGGREGATOR_SECRET_BYTES_MIN {
            let why = format!("at least {} bytes", crate::node::AGGREGATOR_SECRET_BYTES_MIN);
            return Err(Error::config(format!("secret: {why}")));
        }
        let client = reqwest::Client::builder()
            .timeout(config.answer_timeout)
            .build()
            .map_err(|error| Error::config(format!("http client: {error}")))?;
        Ok(Aggregator { config, client, last_published_epoch })
    }

    /// The highest epoch published so far.
    #[must_use]
    pub fn last_published_epoch(&self) -> u64 {
        self.last_published_epoch
    }

    /// Asks every node for `request`, and publishes when a quorum agrees. `now_secs` is the
    /// current time, checked against the report's window exactly as the contract will.
    ///
    /// # Errors
    /// `Rejected(StaleEpoch)` for an epoch not above the last published one, `Rejected(EpochJump)`
    /// or `Rejected(ValidityTooLong)` beyond the deployment's bounds (nothing is sent then);
    /// `Config` for an empty window; `NoQuorum` (with every node's refusal and code) or
    /// `ConflictingQuorums` when the answers do not single out one report; `Rejected(code)` when
    /// the agreed report fails verification.
    pub async fn publish(
        &mut self,
        request: EpochRequest,
        now_secs: u64,
    ) -> Result<Published, Error> {
        if request.epoch <= self.last_published_epoch {
            return Err(RejectionCode::StaleEpoch.into());
        }
        let bounds = self.config.verifier.bounds;
        if request.epoch - self.last_published_epoch > bounds.epoch_jump_max {
            return Err(RejectionCode::EpochJump.into());
        }
        if request.valid_until_secs < request.as_of_secs {
            return Err(Error::config("request: valid_until_secs is before as_of_secs"));
        }
        if request.valid_until_secs - request.as_of_secs > bounds.validity_secs_max {
            return Err(RejectionCode::ValidityTooLong.into());
        }
        let answers = self.ask_all(request).await;
        let (mut outcomes, votes) = self.check_answers(&request, answers);
        let published = self.tally(votes, &mut outcomes, now_secs)?;
        self.last_published_epoch = request.epoch;
        Ok(Published { outcomes, ..published })
    }

    /// Sends the request to every node at once; answers come back in configuration order.
    async fn ask_all(&self, request: EpochRequest) -> Vec<Result<NodeAnswer, NodeStatus>> {
        let mut tasks = JoinSet::new();
        let Ok(body) = serde_json::to_vec(&request) else {
            panic!("Invariant: an epoch request serialises");
        };
        let authentication = tag(&self.config.secret, &body);
        for (index, node) in self.config.nodes.iter().enumerate() {
            let client = self.client.clone();
            let url = format!("{}{EPOCHS_PATH}", node.trim_end_matches('/'));
            let (body, authentication) = (body.clone(), authentication.clone());
            tasks.spawn(async move { (index, ask(&client, &url, body, &authentication).await) });
        }
        let mut answers: Vec<Result<NodeAnswer, NodeStatus>> = (0..self.config.nodes.len())
            .map(|_| Err(NodeStatus::Unreachable("no answer".into())))
            .collect();
        // One iteration per spawned task.
        for _ in 0..self.config.nodes.len() {
            let Some(joined) = tasks.join_next().await else { break };
            if let Ok((index, answer)) = joined {
                answers[index] = answer;
            }
        }
        answers
    }

    /// Discards answers that break a rule; the rest become votes.
    fn check_answers(
        &self,
        request: &EpochRequest,
        answers: Vec<Result<NodeAnswer, NodeStatus>>,
    ) -> (Vec<NodeOutcome>, Vec<(usize, Vote)>) {
        let mut outcomes = Vec::with_capacity(answers.len());
        let mut votes = Vec::new();
        for (index, (node, answer)) in self.config.nodes.iter().zip(answers).enumerate() {
            let signer = answer.as_ref().ok().map(|answer| answer.signer);
            let status = match answer.and_then(|answer| self.check_answer(request, answer)) {
                Ok(vote) => {
                    // Becomes Agreed or Dissented once the tally picks a report.
                    let status = NodeStatus::Signed { digest: vote.digest };
                    votes.push((index, vote));
                    status
                }
                Err(status) => status,
            };
            outcomes.push(NodeOutcome { node: node.clone(), signer, status });
        }
        (outcomes, votes)
    }

    fn check_answer(&self, request: &EpochRequest, answer: NodeAnswer) -> Result<Vote, NodeStatus> {
        let invalid = |code: Option<RejectionCode>, reason: &str| NodeStatus::Invalid {
            code,
            reason: reason.to_owned(),
        };
        let report = answer.report;
        if report.epoch != request.epoch {
            let code = (report.epoch < request.epoch).then_some(RejectionCode::StaleEpoch);
            return Err(invalid(code, "answer for another epoch"));
        }
        if (report.as_of_secs, report.valid_until_secs)
            != (request.as_of_secs, request.valid_until_secs)
        {
            return Err(invalid(None, "answer for another validity window"));
        }
        let set = &self.config.verifier.signer_set;
        if report.signer_set_digest != set.digest() {
            return Err(invalid(Some(RejectionCode::SignerSetMismatch), "another signer set"));
        }
        let digest = report.signing_hash(&self.config.verifier.domain);
        let recovered = recover_signer(&digest, &answer.signature)
            .map_err(|code| invalid(Some(code), "unusable signature"))?;
        if recovered != answer.signer {
            let reason = "signature does not recover to the claimed signer";
            return Err(invalid(Some(RejectionCode::UnknownSigner), reason));
        }
        if !set.contains(&recovered) {
            return Err(invalid(Some(RejectionCode::UnknownSigner), "signer not in the set"));
        }
        Ok(Vote { signer: recovered, digest, report, signature: answer.signature })
    }

    /// Groups votes by digest and picks the single group with a quorum.
    fn tally(
        &self,
        votes: Vec<(usize, Vote)>,
        outcomes: &mut [NodeOutcome],
        now_secs: u64,
    ) -> Result<Published, Error> {
        let votes = drop_equivocators(votes, outcomes);
        let mut groups: BTreeMap<B256, BTreeMap<Address, Bytes>> = BTreeMap::new();
        let mut reports: BTreeMap<B256, Report> = BTreeMap::new();
        for (_, vote) in &votes {
            groups.entry(vote.digest).or_default().insert(vote.signer, vote.signature.clone());
            reports.insert(vote.digest, vote.report);
        }
        let verifier = &self.config.verifier;
        let threshold = usize::from(verifier.signer_set.threshold());
        let quorate: Vec<B256> = groups
            .iter()
            .filter(|(_, signers)| signers.len() >= threshold)
            .map(|(d, _)| *d)
            .collect();
        let winner = match quorate.as_slice() {
            [winner] => *winner,
            [] => return Err(no_quorum(&groups, verifier, outcomes)),
            _ => return Err(Error::new(ErrorKind::ConflictingQuorums(quorate))),
        };
        for (index, vote) in &votes {
            outcomes[*index].status = if vote.digest == winner {
                NodeStatus::Agreed
            } else {
                NodeStatus::Dissented { digest: vote.digest }
            };
        }
        let report = reports[&winner];
        let (signers, signatures): (Vec<Address>, Vec<Bytes>) =
            groups.remove(&winner).unwrap_or_default().into_iter().unzip();
        let last = self.last_published_epoch;
        let accepted = verifier.verify_report(&report, &signatures, last, now_secs)?;
        assert!(
            accepted.signers == signers,
            "Invariant: the verifier recovers the tallied signers"
        );
        let signed = SignedReport {
            domain: verifier.domain,
            signer_set: verifier.signer_set.clone(),
            report,
            signatures,
        };
        Ok(Published { signed, digest: winner, signers, outcomes: Vec::new() })
    }
}

/// Removes every vote of a signer that signed two different digests for one epoch, and marks
/// its answers invalid: an equivocating key must not count towards any quorum.
fn drop_equivocators(
    votes: Vec<(usize, Vote)>,
    outcomes: &mut [NodeOutcome],
) -> Vec<(usize, Vote)> {
    let mut digests_by_signer: BTreeMap<Address, BTreeSet<B256>> = BTreeMap::new();
    for (_, vote) in &votes {
        digests_by_signer.entry(vote.signer).or_default().insert(vote.digest);
    }
    let (kept, dropped): (Vec<_>, Vec<_>) =
        votes.into_iter().partition(|(_, vote)| digests_by_signer[&vote.signer].len() == 1);
    for (index, _) in dropped {
        let reason = "signer signed two different reports for this epoch".to_owned();
        outcomes[index].status = NodeStatus::Invalid { code: None, reason };
    }
    kept
}

fn no_quorum(
    groups: &BTreeMap<B256, BTreeMap<Address, Bytes>>,
    verifier: &Verifier,
    outcomes: &[NodeOutcome],
) -> Error {
    let mut seen: Vec<(B256, usize)> =
        groups.iter().map(|(digest, signers)| (*digest, signers.len())).collect();
    seen.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let threshold = verifier.signer_set.threshold();
    Error::new(ErrorKind::NoQuorum { threshold, groups: seen, outcomes: outcomes.to_vec() })
}

/// Posts the request to one node and reads its answer or refusal, bounded in size and time.
async fn ask(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    authentication: &str,
) -> Result<NodeAnswer, NodeStatus> {
    let unreachable = |error: reqwest::Error| NodeStatus::Unreachable(error.to_string());
    let request = (client.post(url))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(AUTH_HEADER, authentication)
        .body(body);
    let response = request.send().await.map_err(unreachable)?;
    let status = response.status();
    let body = read_bounded(response, ANSWER_BYTES_MAX).await?;
    if status.is_success() {
        return serde_json::from_slice::<NodeAnswer>(&body).map_err(|error| NodeStatus::Invalid {
            code: None,
            reason: format!("malformed answer: {error}"),
        });
    }
    match serde_json::from_slice::<NodeRefusal>(&body) {
        Ok(refusal) => Err(NodeStatus::Refused(refusal)),
        Err(_) => Err(NodeStatus::Invalid { code: None, reason: format!("HTTP {status}") }),
    }
}

/// Reads a response body of at most `bytes_max` bytes.
pub(crate) async fn read_bounded(
    mut response: reqwest::Response,
    bytes_max: usize,
) -> Result<Vec<u8>, NodeStatus> {
    let mut body = Vec::new();
    for _ in 0..ANSWER_CHUNKS_MAX.max(bytes_max / 1024) {
        match response.chunk().await {
            Ok(Some(chunk)) if body.len() + chunk.len() <= bytes_max => {
                body.extend_from_slice(&chunk);
            }
            Ok(Some(_)) => {
                let reason = format!("body larger than {bytes_max} bytes");
                return Err(NodeStatus::Invalid { code: None, reason });
            }
            Ok(None) => return Ok(body),
            Err(error) => return Err(NodeStatus::Unreachable(error.to_string())),
        }
    }
    Err(NodeStatus::Invalid { code: None, reason: "body in too many pieces".to_owned() })
}
