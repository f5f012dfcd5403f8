//! The daemon's OpenAPI document, served at `/api/v1/openapi.json`: made
//! by utoipa from the handlers' `#[utoipa::path]` annotations and the wire
//! types' `ToSchema` derives, never written by hand. What every route
//! shares is added here once: the bearer token, the version header and
//! the `{"error": ApiError}` body of every 4xx and 5xx.
//!
//! Nothing here answers anything but the document.

use super::*;
use crate::api::{AirbyteCatalog, CheckResult, ConnectorInfo, ConnectorSpecification, SyncAnswer};
use std::sync::OnceLock;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, RefOr};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sluice",
        description = "The sluice daemon's API: sources, destinations, connections, jobs and \
            syncs, as JSON. A long operation answers with its answer once it ends, or, when \
            asked with `Accept: application/x-ndjson`, with JSON lines as it runs: its events, \
            then its answer or its error (`RunLine`). On TCP every request needs the daemon's \
            token (`sluice daemon token`) as `Authorization: Bearer TOKEN`, or the session \
            cookie `POST /api/v1/session` sets (a change asked with the cookie also needs the \
            `X-Sluice-CSRF` header); the Unix socket needs none.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        healthz,
        readyz,
        metrics,
        serve,
        daemon_status,
        db_status,
        sync,
        cancel,
        connector_list,
        connector_run,
        sweep,
        source_list,
        source_create,
        source_get,
        source_update,
        source_delete,
        source_check,
        source_discover,
        destination_list,
        destination_create,
        destination_get,
        destination_update,
        destination_delete,
        destination_check,
        connection_list,
        connection_create,
        connection_get,
        connection_update,
        connection_delete,
        connection_enable,
        connection_disable,
        connection_job,
        state_get,
        state_set,
        state_reset,
        job_list,
        job_get,
        job_cancel,
        job_logs,
        apply,
        export,
        super::session::sign_in,
        super::session::sign_out,
    ),
    components(schemas(ErrorBody, RunLine<SyncAnswer>)),
    modifiers(&Shared),
    tags(
        (name = "daemon", description = "The daemon itself and its store."),
        (name = "syncs", description = "Syncs run inline, and runs under way."),
        (name = "connectors", description = "Connectors by reference, without saving anything."),
        (name = "sources"),
        (name = "destinations"),
        (name = "connections"),
        (name = "jobs"),
        (name = "setup", description = "Everything at once, as in a setup file."),
    ),
)]
pub struct ApiDoc;

/// The document, made once.
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").into();
        doc.to_pretty_json().expect("the OpenAPI document encodes")
    })
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "daemon",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API.", body = Object)),
)]
pub(super) async fn serve() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document()).into_response()
}

/// JSON `null`: done, with nothing to say.
pub struct Null;

impl PartialSchema for Null {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().schema_type(Type::Null).into()
    }
}

impl ToSchema for Null {}

/// What `POST /connectors/{verb}` answers, by verb: a spec, a check's
/// result, a catalog, or the connector installed or pulled.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Only its schema is used.
pub enum ConnectorAnswer {
    Spec(ConnectorSpecification),
    Check(CheckResult),
    Catalog(AirbyteCatalog),
    Installed(ConnectorInfo),
}

/// What every operation shares.
struct Shared;

impl Modify for Shared {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("`sluice daemon token`; TCP only."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                super::session::COOKIE,
                "A browser's session, from `POST /api/v1/session`; a change also needs \
                 the `X-Sluice-CSRF` header.",
            ))),
        );
        doc.security = Some(
            ["token", "session"]
                .into_iter()
                .map(|scheme| {
                    utoipa::openapi::security::SecurityRequirement::new(
                        scheme,
                        Vec::<String>::new(),
                    )
                })
                .collect(),
        );
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                            ErrorBody::name(),
                        ))))
                        .build(),
                )
                .build()
        };
        let version = HeaderBuilder::new()
            .schema(String::schema())
            .description(Some("The daemon's version."))
            .build();
        for item in doc.paths.paths.values_mut() {
            let operations: [&mut Option<Operation>; 5] = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in operations.into_iter().flatten() {
                let responses = &mut op.responses.responses;
                responses.insert(
                    "4XX".into(),
                    RefOr::T(error(
                        "The request cannot be answered: bad input, a name that names \
                         nothing, a clash, no token (401), a signed-in browser's change without \
                         `X-Sluice-CSRF` (403), too large, or it ran and failed.",
                    )),
                );
                responses.insert(
                    "5XX".into(),
                    RefOr::T(error(
                        "The daemon failed inside, or its store is not ready.",
                    )),
                );
                for response in responses.values_mut() {
                    if let RefOr::T(r) = response {
                        r.headers
                            .insert(crate::api::remote::VERSION_HEADER.into(), version.clone());
                    }
                }
            }
        }
    }
}
