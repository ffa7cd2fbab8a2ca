//! What travels on the bus, and how it is checked on arrival. Every format is versioned: JSON
//! messages carry a `format` field, binary ones a four-byte magic. A message that does not decode
//! is an [`Error::Wire`] naming the subject, the field and the reason; a worker logs it and goes
//! on (one bad message must not stop a shard).

use basics::{Currency, Money};
use epoch::AccountKey;
use formats::portfolio::PortfolioDocument;
use oracle::{AccountResult, B256};
use product::Portfolio;
use serde::{Deserialize, Serialize};

use crate::Error;

/// The format of an account write.
pub const WRITE_FORMAT: &str = "ballast.bus.write.v1";
/// The format of an epoch request.
pub const REQUEST_FORMAT: &str = "ballast.bus.epoch-request.v1";
/// The format of a shard's commit.
pub const DONE_FORMAT: &str = "ballast.bus.shard-done.v1";
/// The magic of a chunk of results (header: magic, request, shard, chunk, rows; little end).
pub const CHUNK_MAGIC: [u8; 4] = *b"BLR1";
/// Bytes of an account id on the bus: a chunk stores the length in 16 bits.
pub const ID_BYTES_MAX: usize = 1_024;
/// Bytes of a result row besides its id: account, portfolio hash, three amounts, scenario.
const ROW_FIXED_BYTES: usize = 2 + 32 + 32 + 16 * 3 + 2;
/// Bytes of a chunk's header: magic, epoch, shard, chunk, rows.
const CHUNK_HEADER_BYTES: usize = 4 + 8 + 4 + 4 + 4;

/// The error of a message on `subject` whose `field` is refused for `reason`.
pub(crate) fn wire(subject: &str, field: &str, reason: impl std::fmt::Display) -> Error {
    Error::Wire { subject: subject.to_owned(), field: field.to_owned(), reason: reason.to_string() }
}

/// One account write: the account's whole portfolio, or its removal. A put replaces what the
/// account held, so applying a write twice, or an older one after a newer, is harmless once
/// writes are ordered by their stream sequence ([`crate::ShardBook`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    /// The account id.
    pub id: String,
    /// The new portfolio; `None` removes the account.
    pub portfolio: Option<Portfolio>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteDocument {
    format: String,
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    portfolio: Option<PortfolioDocument>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    delete: bool,
}

impl Write {
    /// The message body.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        encode_write(&self.id, self.portfolio.as_ref())
    }

    /// Decodes and validates a write that came on `subject`.
    ///
    /// # Errors
    /// `Wire` for malformed JSON, another format, an empty id, an invalid portfolio (its field
    /// named), or neither or both of a portfolio and a delete.
    pub fn decode(subject: &str, body: &[u8]) -> Result<Write, Error> {
        let document: WriteDocument =
            serde_json::from_slice(body).map_err(|e| wire(subject, "body", e))?;
        if document.format != WRITE_FORMAT {
            return Err(wire(
                subject,
                "format",
                format!("{:?} is not {WRITE_FORMAT}", document.format),
            ));
        }
        if !valid_id(&document.id) {
            return Err(wire(subject, "id", format!("must be 1 to {ID_BYTES_MAX} bytes")));
        }
        let portfolio = match (document.portfolio, document.delete) {
            (Some(p), false) => Some(p.to_portfolio().map_err(|e| {
                wire(subject, &format!("portfolio.{}", e.location), e.kind.to_string())
            })?),
            (None, true) => None,
            _ => return Err(wire(subject, "portfolio", "exactly one of portfolio and delete")),
        };
        Ok(Write { id: document.id, portfolio })
    }
}

/// Whether an account id can travel on the bus: 1 to [`ID_BYTES_MAX`] bytes.
#[must_use]
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= ID_BYTES_MAX
}

/// The body of a write of account `id`: `portfolio`, or its removal for `None`. It borrows
/// what it encodes, so a writer sends a book without copying its portfolios.
#[must_use]
pub fn encode_write(id: &str, portfolio: Option<&Portfolio>) -> Vec<u8> {
    let document = WriteDocument {
        format: WRITE_FORMAT.to_owned(),
        id: id.to_owned(),
        portfolio: portfolio.map(PortfolioDocument::from_portfolio),
        delete: portfolio.is_none(),
    };
    crate::invariant(serde_json::to_vec(&document), "a write document serialises")
}

/// An epoch request: which book cut, on which market, under which methodology.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochRequest {
    /// The epoch number (at least 1).
    pub epoch: u64,
    /// The shard count the request was made for.
    pub shards: u32,
    /// The market snapshot's sequence in the market stream.
    pub market_seq: u64,
    /// The book's cut: every write at or below this sequence of the book stream, none above.
    pub book_seq: u64,
    /// The methodology, as its TOML.
    pub methodology: String,
    /// The methodology's profile hash (workers check the TOML against it).
    pub methodology_hash: B256,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestDocument {
    format: String,
    epoch: u64,
    shards: u32,
    market_seq: u64,
    book_seq: u64,
    methodology: String,
    methodology_hash: B256,
}

impl EpochRequest {
    /// The message body.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let document = RequestDocument {
            format: REQUEST_FORMAT.to_owned(),
            epoch: self.epoch,
            shards: self.shards,
            market_seq: self.market_seq,
            book_seq: self.book_seq,
            methodology: self.methodology.clone(),
            methodology_hash: self.methodology_hash,
        };
        crate::invariant(serde_json::to_vec(&document), "a request document serialises")
    }

    /// Decodes a request that came on `subject`.
    ///
    /// # Errors
    /// `Wire` for malformed JSON, another format, epoch 0 or zero shards.
    pub fn decode(subject: &str, body: &[u8]) -> Result<EpochRequest, Error> {
        let d: RequestDocument =
            serde_json::from_slice(body).map_err(|e| wire(subject, "body", e))?;
        if d.format != REQUEST_FORMAT {
            return Err(wire(subject, "format", format!("{:?} is not {REQUEST_FORMAT}", d.format)));
        }
        if d.epoch == 0 {
            return Err(wire(subject, "epoch", "epochs start at 1"));
        }
        if d.shards == 0 {
            return Err(wire(subject, "shards", "must be at least 1"));
        }
        Ok(EpochRequest {
            epoch: d.epoch,
            shards: d.shards,
            market_seq: d.market_seq,
            book_seq: d.book_seq,
            methodology: d.methodology,
            methodology_hash: d.methodology_hash,
        })
    }
}

/// A shard's commit for one epoch: how many chunks hold its results and what they were computed
/// on, or why the shard could not be computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardDone {
    /// Always [`DONE_FORMAT`].
    pub format: String,
    /// The epoch.
    pub epoch: u64,
    /// The shard.
    pub shard: u32,
    /// Chunks published before this commit (0 to `chunks - 1`).
    pub chunks: u32,
    /// Accounts in those chunks.
    pub accounts: u64,
    /// The market's hash as the worker computed it.
    pub market_data_hash: B256,
    /// The methodology hash.
    pub methodology_hash: B256,
    /// The market's valuation time in Unix seconds.
    pub as_of_secs: u64,
    /// The book cut it was computed at.
    pub book_seq: u64,
    /// Why the shard has no results, when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ShardDone {
    /// Decodes a commit that came on `subject`.
    ///
    /// # Errors
    /// `Wire` for malformed JSON or another format.
    pub fn decode(subject: &str, body: &[u8]) -> Result<ShardDone, Error> {
        let done: ShardDone = serde_json::from_slice(body).map_err(|e| wire(subject, "body", e))?;
        if done.format != DONE_FORMAT {
            return Err(wire(subject, "format", format!("{:?} is not {DONE_FORMAT}", done.format)));
        }
        Ok(done)
    }
}

/// Where a chunk belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkHead {
    /// The request's sequence in the epoch stream.
    pub request: u64,
    /// The shard.
    pub shard: u32,
    /// The chunk's index within the shard.
    pub chunk: u32,
}

/// Encodes result rows (key and result of each account) as one chunk; amounts are USD raw
/// units, integers, so the chunk carries the attested figures exactly.
#[must_use]
pub fn encode_chunk(head: ChunkHead, rows: &[(&AccountKey, &AccountResult)]) -> Vec<u8> {
    let size = rows.iter().map(|(k, _)| ROW_FIXED_BYTES + k.id.len()).sum::<usize>();
    let mut out = Vec::with_capacity(CHUNK_HEADER_BYTES + size);
    out.extend_from_slice(&CHUNK_MAGIC);
    out.extend_from_slice(&head.request.to_le_bytes());
    out.extend_from_slice(&head.shard.to_le_bytes());
    out.extend_from_slice(&head.chunk.to_le_bytes());
    let count = crate::invariant(u32::try_from(rows.len()), "a chunk holds fewer than 2^32 rows");
    out.extend_from_slice(&count.to_le_bytes());
    for (key, result) in rows {
        let id = crate::invariant(u16::try_from(key.id.len()), "ids are at most ID_BYTES_MAX");
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(key.id.as_bytes());
        out.extend_from_slice(result.account.as_slice());
        out.extend_from_slice(result.portfolio_hash.as_slice());
        for amount in [result.initial_margin, result.maintenance_margin, result.mark_to_market] {
            out.extend_from_slice(&amount.raw().to_le_bytes());
        }
        out.extend_from_slice(&result.worst_scenario.to_le_bytes());
    }
    out
}

/// The bytes a row of `id` takes in a chunk.
#[must_use]
pub fn row_bytes(id: &str) -> usize {
    ROW_FIXED_BYTES + id.len()
}

/// Reads a chunk's header: where it belongs and how many rows it holds.
///
/// # Errors
/// `Wire` for a body shorter than the header or another magic.
pub fn chunk_head(subject: &str, body: &[u8]) -> Result<(ChunkHead, usize), Error> {
    let mut reader = Reader { body, at: 0, subject };
    let head = read_head(&mut reader)?;
    Ok((head, reader.u32()? as usize))
}

fn read_head(reader: &mut Reader<'_>) -> Result<ChunkHead, Error> {
    if reader.take(4)? != CHUNK_MAGIC {
        return Err(wire(reader.subject, "magic", "not a result chunk (BLR1)"));
    }
    Ok(ChunkHead { request: reader.u64()?, shard: reader.u32()?, chunk: reader.u32()? })
}

/// Reads a chunk, appending its rows to `keys` and `results`.
///
/// # Errors
/// `Wire` for a short or over-long body, another magic, an id that is not UTF-8, or an account
/// field that is not keccak-256 of the id (bus epochs are unsalted); the vectors may then hold
/// part of the chunk.
pub fn decode_chunk_into(
    subject: &str,
    body: &[u8],
    keys: &mut Vec<AccountKey>,
    results: &mut Vec<AccountResult>,
) -> Result<ChunkHead, Error> {
    let mut reader = Reader { body, at: 0, subject };
    let head = read_head(&mut reader)?;
    let count = reader.u32()? as usize;
    let room = count.min(body.len() / ROW_FIXED_BYTES);
    keys.reserve(room);
    results.reserve(room);
    for _ in 0..count {
        let id_len = usize::from(reader.u16()?);
        let id = std::str::from_utf8(reader.take(id_len)?)
            .map_err(|e| wire(subject, "id", e))?
            .to_owned();
        let account = B256::from_slice(reader.take(32)?);
        if account != epoch::account_id(&id) {
            return Err(wire(subject, "account", format!("not keccak-256 of {id:?}")));
        }
        let portfolio_hash = B256::from_slice(reader.take(32)?);
        let mut amount = || Ok::<_, Error>(Money::from_raw(reader.i128()?, Currency::USD));
        let (im, mm, mtm) = (amount()?, amount()?, amount()?);
        let worst = reader.u16()?;
        keys.push(AccountKey { id, account, salt: None, portfolio_hash });
        results.push(AccountResult {
            account,
            initial_margin: im,
            maintenance_margin: mm,
            mark_to_market: mtm,
            worst_scenario: worst,
            portfolio_hash,
        });
    }
    if reader.at != body.len() {
        return Err(wire(
            subject,
            "body",
            format!("{} bytes after the rows", body.len() - reader.at),
        ));
    }
    Ok(head)
}

/// Reads fixed-width fields off a body, naming the subject when it runs short.
struct Reader<'a> {
    body: &'a [u8],
    at: usize,
    subject: &'a str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.at.checked_add(n).filter(|end| *end <= self.body.len());
        let Some(end) = end else {
            return Err(wire(self.subject, "body", format!("ends at byte {}", self.body.len())));
        };
        let bytes = &self.body[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        Ok(crate::invariant(self.take(N)?.try_into(), "take returns N bytes"))
    }

    fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn i128(&mut self) -> Result<i128, Error> {
        Ok(i128::from_le_bytes(self.array()?))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use basics::{Currency, Money};
    use epoch::AccountKey;
    use oracle::AccountResult;
    use product::Portfolio;

    use super::{ChunkHead, EpochRequest, Write, chunk_head, decode_chunk_into, encode_chunk};

    fn row(id: &str, im: i128) -> (AccountKey, AccountResult) {
        let portfolio = Portfolio::new(Vec::new(), &[]).unwrap();
        let key = AccountKey::new(id, &portfolio);
        let result = AccountResult {
            account: key.account,
            initial_margin: Money::from_raw(im, Currency::USD),
            maintenance_margin: Money::from_raw(im / 2, Currency::USD),
            mark_to_market: Money::from_raw(-im, Currency::USD),
            worst_scenario: 7,
            portfolio_hash: key.portfolio_hash,
        };
        (key, result)
    }

    /// A chunk reads back to its rows and header; a truncated chunk, a byte too many, another
    /// magic and an account field that does not hash its id are refused by field.
    #[test]
    fn chunks_round_trip_and_bad_ones_are_refused() {
        let rows = [row("alice", i128::MAX), row("bob", 12_345), row("", 0)];
        let refs: Vec<_> = rows.iter().map(|(k, r)| (k, r)).collect();
        let head = ChunkHead { request: 9, shard: 3, chunk: 1 };
        let body = encode_chunk(head, &refs);
        assert_eq!(chunk_head("s", &body).unwrap(), (head, 3));
        let (mut keys, mut results) = (Vec::new(), Vec::new());
        assert_eq!(decode_chunk_into("s", &body, &mut keys, &mut results).unwrap(), head);
        assert_eq!(keys, rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>());
        assert_eq!(results, rows.iter().map(|r| r.1).collect::<Vec<_>>());
        let error = |body: &[u8]| {
            let (mut k, mut r) = (Vec::new(), Vec::new());
            decode_chunk_into("s", body, &mut k, &mut r).unwrap_err().to_string()
        };
        assert_eq!(
            error(&body[..body.len() - 1]),
            format!("message s: body: ends at byte {}", body.len() - 1)
        );
        assert_eq!(error(&[&body[..], &[0]].concat()), "message s: body: 1 bytes after the rows");
        assert_eq!(error(b"BLR2 and more"), "message s: magic: not a result chunk (BLR1)");
        let mut forged = body.clone();
        forged[24 + 2 + 5] ^= 1;
        assert_eq!(error(&forged), "message s: account: not keccak-256 of \"alice\"");
    }

    /// Writes and requests read back; bad ones name their field.
    #[test]
    fn writes_and_requests_round_trip() {
        let write =
            Write { id: "a".to_owned(), portfolio: Some(Portfolio::new(Vec::new(), &[]).unwrap()) };
        assert_eq!(Write::decode("s", &write.encode()).unwrap(), write);
        let gone = Write { id: "a".to_owned(), portfolio: None };
        assert_eq!(Write::decode("s", &gone.encode()).unwrap(), gone);
        let both = br#"{"format":"ballast.bus.write.v1","id":"a","portfolio":{},"delete":true}"#;
        assert_eq!(
            Write::decode("s", both).unwrap_err().to_string(),
            "message s: portfolio: exactly one of portfolio and delete"
        );
        let long = format!(
            r#"{{"format":"ballast.bus.write.v1","id":"{}","delete":true}}"#,
            "x".repeat(1_025)
        );
        assert_eq!(
            Write::decode("s", long.as_bytes()).unwrap_err().to_string(),
            "message s: id: must be 1 to 1024 bytes"
        );
        let position = |p: &str| {
            format!(
                r#"{{"format":"ballast.bus.write.v1","id":"a","portfolio":{{"positions":[{p}]}}}}"#
            )
        };
        let bad_size = position(r#"{"instrument":"BTC-PERPETUAL","size":1e400}"#);
        let bad_size = bad_size.as_bytes();
        assert!(
            Write::decode("s", bad_size).unwrap_err().to_string().starts_with("message s: body:")
        );
        let bad_name = position(r#"{"instrument":"BTC-NOPE","size":1}"#);
        let bad_name = bad_name.as_bytes();
        assert!(
            Write::decode("s", bad_name)
                .unwrap_err()
                .to_string()
                .starts_with("message s: portfolio.positions[0].instrument:")
        );
        let request = EpochRequest {
            epoch: 4,
            shards: 8,
            market_seq: 2,
            book_seq: 100,
            methodology: "name = \"x\"".to_owned(),
            methodology_hash: oracle::B256::repeat_byte(7),
        };
        assert_eq!(EpochRequest::decode("r", &request.encode()).unwrap(), request);
        let zero = EpochRequest { epoch: 0, ..request };
        assert_eq!(
            EpochRequest::decode("r", &zero.encode()).unwrap_err().to_string(),
            "message r: epoch: epochs start at 1"
        );
    }
}
