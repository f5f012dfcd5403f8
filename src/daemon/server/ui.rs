//! The web UI's built files (`web/dist`, made by `scripts/build-web` and
//! committed), embedded in the binary and served at `/`: `index.html` for
//! every UI route (the app routes in the browser), the script and style
//! under `/assets/`, gzipped when the browser takes it.
//!
//! Every answer here carries a Content-Security-Policy that allows only
//! this daemon's own scripts, styles and API, never inline script. Nothing
//! here is an API route and nothing here reads the store: the UI is a
//! client of `/api/v1` like any other.

use axum::http::{header, HeaderMap, HeaderValue, Method, Uri};
use axum::response::{IntoResponse, Response};

/// One built file: its bytes, and the same gzipped at build time.
struct Asset {
    content_type: &'static str,
    body: &'static [u8],
    gzip: &'static [u8],
}

macro_rules! asset {
    ($file:literal, $type:literal) => {
        Asset {
            content_type: $type,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/dist/", $file)),
            gzip: include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/web/dist/",
                $file,
                ".gz"
            )),
        }
    };
}

const INDEX: Asset = asset!("index.html", "text/html; charset=utf-8");

/// `/assets/NAME` by name.
fn asset(name: &str) -> Option<Asset> {
    match name {
        "app.js" => Some(asset!("app.js", "text/javascript; charset=utf-8")),
        "app.css" => Some(asset!("app.css", "text/css; charset=utf-8")),
        _ => None,
    }
}

/// Only this origin's scripts, styles, images and API; no inline script,
/// no framing, no plugins, forms only to here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The paths that are the daemon's own, never the UI's.
fn is_api(path: &str) -> bool {
    path == "/api"
        || path.starts_with("/api/")
        || matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// Whether a request may be answered without the token on TCP: the UI's
/// files (they hold nothing secret; the login page is among them).
pub fn is_public(method: &Method, path: &str) -> bool {
    (method == Method::GET || method == Method::HEAD) && !is_api(path)
}

/// The UI's answer to a request no route took, or `None` when it is not
/// the UI's (an API path, another method, a file that is not there).
pub fn answer(method: &Method, uri: &Uri, headers: &HeaderMap) -> Option<Response> {
    if !is_public(method, uri.path()) {
        return None;
    }
    let path = uri.path();
    let (file, cache) = match path.strip_prefix("/assets/") {
        // The index names each file with its build's hash (`?v=`), so a
        // new build is a new URL.
        Some(name) => (asset(name)?, "public, max-age=31536000, immutable"),
        // A UI route (`/connections/x`): the app decides what it shows.
        // A file name that is not an asset is not one.
        None if path
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains('.')) =>
        {
            return None
        }
        None => (INDEX, "no-cache"),
    };
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(accepts_gzip);
    let mut resp = if gzip {
        let mut r = file.gzip.into_response();
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        file.body.into_response()
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(file.content_type),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    // The other security headers go on every answer (`with_headers` in
    // server.rs).
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    Some(resp)
}

/// Whether an `Accept-Encoding` takes gzip (`gzip;q=0` refuses it).
fn accepts_gzip(accept: &str) -> bool {
    accept.split(',').any(|coding| {
        let mut parts = coding.split(';').map(str::trim);
        let name = parts.next().unwrap_or("");
        let refused = parts.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q == 0.0)
        });
        (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, encoding: Option<&str>) -> Option<Response> {
        let mut headers = HeaderMap::new();
        if let Some(e) = encoding {
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(e).unwrap());
        }
        answer(&Method::GET, &path.parse().unwrap(), &headers)
    }

    #[test]
    fn ui_routes_get_the_index_and_api_paths_never_do() {
        for path in ["/", "/connections", "/connections/a-b/jobs", "/login"] {
            let resp = get(path, None).unwrap_or_else(|| panic!("{path}"));
            assert_eq!(resp.headers()[header::CONTENT_TYPE], INDEX.content_type);
            assert!(resp.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("script-src 'self'"));
        }
        for path in [
            "/api/v1/nope",
            "/api",
            "/metrics",
            "/healthz",
            "/favicon.ico",
            "/assets/nope.js",
        ] {
            assert!(get(path, None).is_none(), "{path}");
        }
        let post = answer(&Method::POST, &"/".parse().unwrap(), &HeaderMap::new());
        assert!(post.is_none());
    }

    #[test]
    fn assets_are_gzipped_only_for_browsers_that_take_it() {
        let plain = get("/assets/app.js", Some("br")).unwrap();
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        let gz = get("/assets/app.js", Some("gzip, deflate, br")).unwrap();
        assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip");
        assert!(get("/assets/app.css", Some("gzip;q=0"))
            .unwrap()
            .headers()
            .get(header::CONTENT_ENCODING)
            .is_none());
    }
}
