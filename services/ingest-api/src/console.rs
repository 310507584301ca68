//! The admin console (`/console/`) and the end-user inbox demo (`/console/inbox/`): static
//! files compiled into the binary (`include_str!`), so `cargo run -p herald` serves them with no
//! Node.js and nothing to deploy beside the image. The pages are ES modules over the REST API
//! (the inbox over the JavaScript SDK, served at `/console/sdk.js` from `sdk/js`); every answer
//! carries a strict Content-Security-Policy: scripts, styles and connections to this origin
//! only, no inline script, no framing.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

/// What every console file is served with.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self' ws: wss:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Path, content type, body.
const FILES: [(&str, &str, &str); 7] = [
    ("/console/", HTML, include_str!("../console/index.html")),
    ("/console/app.js", JS, include_str!("../console/app.js")),
    ("/console/style.css", CSS, include_str!("../console/style.css")),
    ("/console/inbox/", HTML, include_str!("../console/inbox/index.html")),
    ("/console/inbox/inbox.js", JS, include_str!("../console/inbox/inbox.js")),
    // The inbox's service worker (Web Push); its scope is /console/inbox/.
    ("/console/inbox/sw.js", JS, include_str!("../console/inbox/sw.js")),
    ("/console/sdk.js", JS, include_str!("../../../sdk/js/src/index.js")),
];

/// Mounts the console's files, and redirects `/console` and `/console/inbox` to their pages.
pub(crate) fn mount(cfg: &mut web::ServiceConfig) {
    for (path, kind, body) in FILES {
        cfg.route(
            path,
            web::get().to(move || async move {
                HttpResponse::Ok()
                    .content_type(kind)
                    .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
                    .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                    .insert_header((header::REFERRER_POLICY, "no-referrer"))
                    .insert_header((header::CACHE_CONTROL, "no-cache"))
                    .body(body)
            }),
        );
    }
    for (from, to) in [("/console", "/console/"), ("/console/inbox", "/console/inbox/")] {
        cfg.route(
            from,
            web::get().to(move || async move {
                HttpResponse::PermanentRedirect().insert_header((header::LOCATION, to)).finish()
            }),
        );
    }
}
