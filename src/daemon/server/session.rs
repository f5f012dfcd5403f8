//! Who may ask the daemon on TCP: a request with the daemon's token
//! (`Authorization: Bearer TOKEN`), or a browser signed in with it. Signing
//! in (`POST /api/v1/session` with the token) sets an HttpOnly,
//! SameSite=Strict cookie naming a session kept in memory (a restart signs
//! everyone out); the token itself never goes into a cookie.
//!
//! A request that changes something on the strength of the cookie alone
//! must also carry `X-Sluice-CSRF`, a header a page of another site cannot
//! make a browser send; without it the answer is 403 (the browser is signed
//! in, so not 401). Nothing here knows what a route does.

use super::{error, ui, ApiError, ErrorCode, Json, Shared};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use utoipa::ToSchema;

/// The cookie that names a session.
pub const COOKIE: &str = "sluice_session";
/// The header that cookie-signed state changes need.
pub const CSRF_HEADER: &str = "x-sluice-csrf";
/// How long a session lasts after it is made.
const LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// Sessions kept at most; the oldest go first.
const MOST: usize = 1000;

/// The daemon's token and the sessions signed in with it.
pub struct Auth {
    token: String,
    sessions: Mutex<HashMap<String, Instant>>,
}

impl Auth {
    pub fn new(token: String) -> Auth {
        Auth {
            token,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn is_token(&self, given: &str) -> bool {
        constant_time_eq::constant_time_eq(given.as_bytes(), self.token.as_bytes())
    }

    /// A new session's id: 244 random bits.
    fn open(&self) -> String {
        let id = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, made| made.elapsed() < LIFETIME);
        if sessions.len() >= MOST {
            if let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, made)| **made)
                .map(|(k, _)| k.clone())
            {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(id.clone(), Instant::now());
        id
    }

    fn is_session(&self, given: &str) -> bool {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        // Compared in constant time, as the token is.
        sessions.iter().any(|(id, made)| {
            constant_time_eq::constant_time_eq(id.as_bytes(), given.as_bytes())
                && made.elapsed() < LIFETIME
        })
    }

    fn close(&self, id: &str) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.remove(id);
    }
}

/// The session a request's cookie names, if it names one.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// The `Set-Cookie` of a session (`Max-Age=0` clears it). `Secure` when a
/// proxy in front says the browser came over https.
fn set_cookie(headers: &HeaderMap, value: &str, max_age: u64) -> HeaderValue {
    let https = headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let secure = if https { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}"
    ))
    .expect("a session id is ASCII")
}

/// What `POST /api/v1/session` takes.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SessionRequest {
    /// The daemon's token (`sluice daemon token`).
    pub token: String,
}

fn refused(message: &str) -> Response {
    let mut resp = error(ApiError::new(ErrorCode::Unauthorized, message.to_string()));
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

/// Whether a request is a load balancer's liveness probe, which cannot
/// send a token: `/healthz` says only that the daemon is alive and its
/// version (which every answer's header carries anyway).
fn is_probe(method: &Method, path: &str) -> bool {
    path == "/healthz" && matches!(*method, Method::GET | Method::HEAD)
}

/// The token check of TCP: the token in the header, or a session's cookie
/// (with the CSRF header for anything but a read). The UI's files, the
/// liveness probe, and signing in and out need neither.
pub async fn require(State(d): State<Shared>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path();
    if ui::is_public(&method, path) || is_probe(&method, path) || path == "/api/v1/session" {
        return next.run(req).await;
    }
    let headers = req.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    if let Some(given) = bearer {
        if d.auth.is_token(given) {
            return next.run(req).await;
        }
        return refused(
            "this daemon wants its token: `Authorization: Bearer TOKEN`, or sign in at /",
        );
    }
    match cookie(headers) {
        Some(id) if d.auth.is_session(id) => {
            let reads = matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
            if reads || headers.contains_key(CSRF_HEADER) {
                next.run(req).await
            } else {
                // Signed in, so not a 401: a 401 would send the UI to its
                // login page, and signing in again would not help.
                error(
                    ApiError::new(
                        ErrorCode::Forbidden,
                        "the `X-Sluice-CSRF` header is missing: a change asked by a \
                         signed-in browser must carry it",
                    )
                    .hint("send `X-Sluice-CSRF: 1` with the session cookie, or use the token"),
                )
            }
        }
        _ => refused("this daemon wants its token: `Authorization: Bearer TOKEN`, or sign in at /"),
    }
}

/// The token of an `Authorization` value: the scheme's name in any case
/// (RFC 9110 makes it case-insensitive), then the token.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start())
}

/// Signs a browser in with the daemon's token: the answer sets an
/// HttpOnly, SameSite=Strict session cookie that stands for the token
/// (with `X-Sluice-CSRF` on changes) until it expires, the browser signs
/// out or the daemon restarts.
#[utoipa::path(post, path = "/api/v1/session", tag = "daemon", request_body = SessionRequest, security(()), responses((status = 200, description = "Signed in: the `Set-Cookie` header holds the session.", body = super::openapi::Null, headers(("set-cookie" = String, description = "`sluice_session=...; HttpOnly; SameSite=Strict; Path=/`")))))]
pub(super) async fn sign_in(
    State(d): State<Shared>,
    headers: HeaderMap,
    body: Json<SessionRequest>,
) -> Response {
    if !d.auth.is_token(&body.0.token) {
        return refused("that is not this daemon's token; `sluice daemon token` prints it");
    }
    let id = d.auth.open();
    let mut resp = axum::Json(None::<()>).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(&headers, &id, LIFETIME.as_secs()),
    );
    resp
}

/// Signs a browser out: its session ends and its cookie is cleared.
#[utoipa::path(delete, path = "/api/v1/session", tag = "daemon", security(()), responses((status = 200, description = "Signed out.", body = super::openapi::Null)))]
pub(super) async fn sign_out(State(d): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(id) = cookie(&headers) {
        d.auth.close(id);
    }
    let mut resp = axum::Json(None::<()>).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&headers, "", 0));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_read_in_any_case() {
        for value in ["Bearer t0k", "bearer t0k", "BEARER  t0k"] {
            assert_eq!(bearer_token(value), Some("t0k"), "{value}");
        }
        assert_eq!(bearer_token("Basic dTpw"), None);
        assert_eq!(bearer_token("Bearer"), None);
    }

    #[test]
    fn a_session_is_known_until_it_is_closed() {
        let auth = Auth::new("t".into());
        let id = auth.open();
        assert_eq!(id.len(), 64);
        assert!(auth.is_session(&id));
        assert!(!auth.is_session("nope"));
        assert!(auth.is_token("t") && !auth.is_token("u"));
        auth.close(&id);
        assert!(!auth.is_session(&id));
    }

    #[test]
    fn only_the_liveness_probe_is_asked_without_the_token() {
        assert!(is_probe(&Method::GET, "/healthz"));
        assert!(is_probe(&Method::HEAD, "/healthz"));
        assert!(!is_probe(&Method::POST, "/healthz"));
        for path in ["/readyz", "/metrics", "/api/v1/daemon", "/healthz/x"] {
            assert!(!is_probe(&Method::GET, path), "{path}");
        }
    }

    #[test]
    fn the_cookie_is_read_among_others_and_set_strict() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; sluice_session=abc; b=2"),
        );
        assert_eq!(cookie(&h), Some("abc"));
        let set = set_cookie(&h, "abc", 10);
        let set = set.to_str().unwrap();
        assert!(set.contains("HttpOnly; SameSite=Strict; Path=/"), "{set}");
        assert!(!set.contains("Secure"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(set_cookie(&h, "abc", 10)
            .to_str()
            .unwrap()
            .ends_with("; Secure"));
    }
}
