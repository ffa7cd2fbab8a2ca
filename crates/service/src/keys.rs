//! Key management (admin only): create a key (shown once), list keys, revoke one; and the first
//! admin key of an empty database.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;

use crate::audit::Note;
use crate::auth::Principal;
use crate::auth::{KEY_ACCOUNTS_MAX, KEYS_MAX, KeyRecord, Role, new_key_text, split_key};
use crate::dto::{CreateKey, CreatedKey, KeyView};
use crate::error::{Error, ErrorBody, ErrorKind};
use crate::model::Model;
use crate::state::{Plan, Scope, Service, unix_secs};
use crate::store::Op;
use crate::writes::{body_and_key, check_id, finish, json, parse};

/// Longest key label, characters.
const LABEL_CHARS_MAX: usize = 200;

/// The view of a stored key.
#[must_use]
pub fn key_view(record: &KeyRecord) -> KeyView {
    KeyView {
        id: record.id.clone(),
        role: record.role.name().to_owned(),
        accounts: record.accounts.iter().cloned().collect(),
        expires_at_secs: record.expires_at_secs,
        revoked: record.revoked,
        label: record.label.clone(),
    }
}

/// Creates an API key; the answer holds the whole key, which is never shown again.
#[utoipa::path(post, path = "/api/keys", request_body = CreateKey,
    params(("Idempotency-Key" = Option<String>, Header, description = "Optional")),
    responses((status = 201, body = CreatedKey), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create_key(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let run = async {
        let (bytes, key) = body_and_key(raw, &headers, &method, &uri, false)?;
        let request: CreateKey = parse(&bytes)?;
        let (id, text) = new_key_text()?;
        let subject = format!("{id}: {} {}", request.role, request.accounts.join(","));
        let note = Note::of(&principal.key, "key.create", subject, &bytes);
        let plan = |model: &Model| plan_key(model, &request, &id, &text, unix_secs());
        service.write_noted(key, Some(note), plan).await
    };
    finish(run.await)
}

/// The plan that stores key `text` (id `id`) as `request` asks.
///
/// # Errors
/// `Invalid` naming the refused field; `Conflict` for an id already stored.
pub fn plan_key(
    model: &Model,
    request: &CreateKey,
    id: &str,
    text: &str,
    now_secs: u64,
) -> Result<Plan, Error> {
    let role = Role::parse("role", &request.role)?;
    if model.keys.len() >= KEYS_MAX {
        return Err(Error::invalid("keys", format!("at most {KEYS_MAX} keys")));
    }
    if model.keys.contains_key(id) {
        return Err(Error::new("id", ErrorKind::Conflict("the key id exists".into())));
    }
    match (role, request.accounts.len()) {
        (Role::Account, 0) => return Err(Error::invalid("accounts", "an account key needs some")),
        (Role::Account, n) if n > KEY_ACCOUNTS_MAX => {
            return Err(Error::invalid("accounts", format!("at most {KEY_ACCOUNTS_MAX}")));
        }
        (Role::Account, _) | (_, 0) => {}
        _ => return Err(Error::invalid("accounts", "only an account key names accounts")),
    }
    for (i, account) in request.accounts.iter().enumerate() {
        check_id(&format!("accounts[{i}]"), account)?;
    }
    if request.label.chars().count() > LABEL_CHARS_MAX {
        return Err(Error::invalid("label", format!("at most {LABEL_CHARS_MAX} characters")));
    }
    let expires_at_secs = match request.expires_in_secs {
        Some(0) => return Err(Error::invalid("expires_in_secs", "must be above 0")),
        Some(secs) => Some(now_secs.saturating_add(secs)),
        None => None,
    };
    let (_, hash) = split_key(text)?;
    let record = KeyRecord {
        id: id.to_owned(),
        secret_hash: hash,
        role,
        accounts: request.accounts.iter().cloned().collect(),
        expires_at_secs,
        revoked: false,
        label: request.label.clone(),
    };
    let op = Op::Key {
        id: record.id.clone(),
        secret_hash: record.secret_hash.clone(),
        role: role.name().to_owned(),
        accounts: request.accounts.join(","),
        expires_at: expires_at_secs.map_or(0, |at| i64::try_from(at).unwrap_or(i64::MAX)),
        label: record.label.clone(),
    };
    let answer = CreatedKey { key: text.to_owned(), record: key_view(&record) };
    Ok(Plan {
        ops: vec![op],
        answer: json(StatusCode::CREATED, &answer),
        methodology: None,
        market: None,
        scope: Scope::Nothing,
    })
}

/// Every stored key, without secrets.
#[utoipa::path(get, path = "/api/keys",
    responses((status = 200, body = [KeyView]), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list_keys(State(service): State<Arc<Service>>) -> axum::Json<Vec<KeyView>> {
    axum::Json(service.model().keys.values().map(key_view).collect())
}

/// Revokes a key: refused from the next request on. The last admin key that still works cannot
/// be revoked (409): nobody could then make or revoke keys without the database.
#[utoipa::path(delete, path = "/api/keys/{id}", params(("id" = String, Path)),
    responses((status = 200, body = KeyView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn revoke_key(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    let note = Note::of(&principal.key, "key.revoke", id.clone(), b"");
    let run = service.write_noted(None, Some(note), |model| {
        let record = model.keys.get(&id).ok_or_else(|| Error::new("id", ErrorKind::NotFound))?;
        let now = crate::state::unix_secs();
        let works = |k: &KeyRecord| {
            k.role == Role::Admin && !k.revoked && k.expires_at_secs.is_none_or(|at| now < at)
        };
        if works(record) && model.keys.values().filter(|k| works(k)).count() == 1 {
            let why = "the last working admin key cannot be revoked: make another first";
            return Err(Error::new("id", ErrorKind::Conflict(why.into())));
        }
        let revoked = KeyRecord { revoked: true, ..record.clone() };
        Ok(Plan {
            ops: vec![Op::RevokeKey { id: id.clone() }],
            answer: json(StatusCode::OK, &key_view(&revoked)),
            methodology: None,
            market: None,
            scope: Scope::Nothing,
        })
    });
    finish(run.await)
}

/// On a database without keys, stores the first admin key: `given` (a deployment's own,
/// `bk_<id>_<secret>`) or a new one. Returns the key when it was created now, for the operator
/// to read once; `None` when keys exist already.
///
/// # Errors
/// `Invalid` for a malformed `given`; as the write otherwise.
pub async fn first_admin_key(
    service: &Arc<Service>,
    given: Option<&str>,
) -> Result<Option<String>, Error> {
    if !service.model().keys.is_empty() {
        return Ok(None);
    }
    let text = match given {
        Some(text) => text.to_owned(),
        None => new_key_text()?.1,
    };
    let (id, _) = split_key(&text).map_err(|e| Error::invalid("admin_key", e.to_string()))?;
    let request = CreateKey {
        role: "admin".into(),
        accounts: vec![],
        expires_in_secs: None,
        label: "first admin".into(),
    };
    let note = Note::of("start", "key.create", format!("{id}: admin, the first"), b"");
    let plan = |model: &Model| plan_key(model, &request, &id, &text, unix_secs());
    service.write_noted(None, Some(note), plan).await?;
    Ok(Some(text))
}
