//! Serving an actix app on a listener the caller bound, until a shutdown token fires.

use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use runtime::HttpSettings;
use std::net::TcpListener;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Binds `settings.addr` (port 0 picks a free port; read it back from the listener).
pub fn bind(settings: &HttpSettings) -> std::io::Result<TcpListener> {
    TcpListener::bind(settings.addr)
}

/// Serves the routes `configure` mounts on `listener` until `shutdown`, then stops accepting
/// and gives in-flight requests `settings.shutdown_timeout_secs` to finish. Every refusal the
/// app gives leaves in the spec's envelope ([`crate::failure_envelope`]); a path no route
/// matches is a 404 `NOT_FOUND`.
pub async fn serve<F>(
    listener: TcpListener,
    settings: &HttpSettings,
    shutdown: CancellationToken,
    configure: F,
) -> std::io::Result<()>
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    let workers = if settings.workers == 0 {
        std::thread::available_parallelism().map_or(2, usize::from)
    } else {
        settings.workers
    };
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(crate::failure_envelope))
            .configure(configure.clone())
            .default_service(web::to(crate::not_found))
    })
    .workers(workers)
    .disable_signals()
    .shutdown_timeout(settings.shutdown_timeout_secs)
    .client_request_timeout(Duration::from_secs(10))
    .listen(listener)?
    .run();
    let handle = server.handle();
    let stopper = tokio::spawn(async move {
        shutdown.cancelled().await;
        handle.stop(true).await;
    });
    let result = server.await;
    stopper.abort();
    result
}
