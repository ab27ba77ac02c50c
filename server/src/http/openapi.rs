//! The OpenAPI document's frame: title, security scheme. Paths come from the router.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::Modify;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Concord API", description = "Team chat, files and co-edited documents with a compliance layer."),
    modifiers(&BearerAuth),
    components(schemas(
        super::error::ErrorBody,
        super::error::ErrorDetail,
        crate::hub::protocol::ServerFrame,
        crate::hub::protocol::LiveEvent,
        crate::hub::protocol::ClientFrame,
        crate::hub::protocol::PresenceStatus,
        crate::hub::protocol::MessageUpdate,
        crate::hub::protocol::ChannelUpdate,
    ))
)]
pub(super) struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
