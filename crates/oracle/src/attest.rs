//! Signing an epoch: from a built tree and the local keys to a report ready for `submitRoot`.

use alloy_primitives::Bytes;

use crate::epoch::EpochTree;
use crate::report::SignedReport;
use crate::signer::Signer;
use crate::verify::Verifier;
use crate::{Error, ErrorKind};

/// Signs `epoch` with every key in `signers` and orders the signatures by signer address, as
/// the contract requires.
///
/// The result is checked with [`Verifier::verify_report`] at the report's own `asOf` before it
/// is returned, so a report this function hands out is one the contract accepts then.
///
/// # Errors
/// `NotFound` for a key outside the signer set; `Duplicate` for a key given twice;
/// `OutOfRange` for fewer keys than the threshold.
pub fn attest(
    epoch: &EpochTree,
    verifier: &Verifier,
    signers: &[Signer],
) -> Result<SignedReport, Error> {
    let set = &verifier.signer_set;
    let mut ordered: Vec<&Signer> = signers.iter().collect();
    ordered.sort_by_key(|signer| signer.address());
    for pair in ordered.windows(2) {
        if pair[0].address() == pair[1].address() {
            let what = format!("signer {}", pair[0].address());
            return Err(Error::new("signers", ErrorKind::Duplicate(what)));
        }
    }
    if let Some(outsider) = ordered.iter().find(|signer| !set.contains(&signer.address())) {
        let what = format!("signer {} in the signer set", outsider.address());
        return Err(Error::new("signers", ErrorKind::NotFound(what)));
    }
    if ordered.len() < usize::from(set.threshold()) {
        let rule = format!("at least {} keys, got {}", set.threshold(), ordered.len());
        return Err(Error::range("signers", rule));
    }
    let report = epoch.report(set);
    let signatures: Vec<Bytes> = ordered
        .iter()
        .map(|signer| {
            Bytes::copy_from_slice(signer.sign_report(&report, &verifier.domain).as_bytes())
        })
        .collect();
    let accepted =
        verifier.verify_report(&report, &signatures, report.epoch - 1, report.as_of_secs);
    assert!(accepted.is_ok(), "Invariant: a fresh attestation is accepted at its asOf");
    let signer_set = set.clone();
    Ok(SignedReport { domain: verifier.domain, signer_set, report, signatures })
}
