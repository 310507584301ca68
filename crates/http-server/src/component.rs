//! A process is a list of components served together ([`serve`]): each service exposes one or
//! more (routes, what `/readyz` checks for it; its background tasks already running until the
//! process's shutdown), and the binary picks the ones its roles name.

use crate::{Readiness, health_routes};
use actix_http::HttpService;
use actix_service::{IntoServiceFactory, ServiceFactoryExt, fn_factory, fn_service, map_config};
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{App, web};
use model::TimeFormat;
use runtime::{HttpSettings, JwtVerifier};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::TcpListener;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

type Routes = Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

/// One part of a process: its routes, if it serves any, and its readiness checks.
#[derive(Clone)]
pub struct Component {
    name: &'static str,
    routes: Option<Routes>,
    readiness: Readiness,
}

impl Component {
    /// A component with no routes and no checks yet.
    pub fn new(name: &'static str) -> Self {
        Self { name, routes: None, readiness: Readiness::default() }
    }

    /// Mounts these routes (the function runs once per HTTP worker).
    pub fn routes(mut self, routes: impl Fn(&mut web::ServiceConfig) + Send + Sync + 'static) -> Self {
        self.routes = Some(Arc::new(routes));
        self
    }

    /// What `/readyz` checks for this component.
    pub fn readiness(mut self, readiness: Readiness) -> Self {
        self.readiness = self.readiness.merge(readiness);
        self
    }

    /// Whether every check of this component passes right now.
    pub fn is_ready(&self) -> bool {
        self.readiness.is_ready()
    }

    /// The component's name, for logs.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// What every handler of a process may ask for, whichever component mounted it: registered once
/// by [`serve`] as app data, so that any route can take `AdminClaims`, `BearerClaims` or the time
/// format without a component having to provide them.
#[derive(Clone)]
pub struct Shared {
    /// Verifies bearer tokens.
    pub verifier: JwtVerifier,
    /// How times are rendered.
    pub time: TimeFormat,
    /// The process's metrics, served at `/metrics`.
    pub metrics: crate::Registry,
}

/// Binds `settings.addr` and listens with `settings.backlog` (port 0 picks a free port; read it
/// back from the listener). The standard library's `TcpListener::bind` would listen with a
/// backlog of 128, which a burst of reconnecting clients overflows.
pub fn bind(settings: &HttpSettings) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(settings.addr), Type::STREAM, Some(Protocol::TCP))?;
    // As the standard library does: a restarted process can bind while old connections linger.
    socket.set_reuse_address(true)?;
    socket.bind(&settings.addr.into())?;
    // At most 65535 (validated); the kernel caps it at net.core.somaxconn.
    socket.listen(i32::try_from(settings.backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}

/// Serves `components` on `listener` until `shutdown`, then stops accepting and gives in-flight
/// requests `settings.shutdown_timeout_secs` to finish. Beside the components' routes: `/healthz`,
/// and `/readyz` with every component's checks. Every refusal the app gives leaves in the spec's
/// envelope ([`crate::failure_envelope`]); a path no route matches is a 404 `NOT_FOUND`.
///
/// Built from actix-server and actix-http rather than actix-web's `HttpServer`, the same way it
/// builds itself, for one addition: the upgrade service of [`crate::takeover`], through which a
/// route may take a WebSocket connection over once it answered 101.
pub async fn serve(
    listener: TcpListener,
    settings: &HttpSettings,
    shared: Shared,
    components: Vec<Component>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let workers = if settings.workers == 0 {
        std::thread::available_parallelism().map_or(2, usize::from)
    } else {
        settings.workers
    };
    // Accepted sockets inherit TCP_NODELAY: frames and answers go out as they are written, and no
    // connection needs a system call to say so.
    socket2::SockRef::from(&listener).set_tcp_nodelay(true)?;
    let readiness = components.iter().fold(Readiness::default(), |all, c| all.merge(c.readiness.clone()));
    let routes: Vec<Routes> = components.iter().filter_map(|c| c.routes.clone()).collect();
    shared.metrics.start_upkeep(shutdown.clone());
    let app = AppBuilder {
        verifier: web::Data::new(shared.verifier),
        time: web::Data::new(shared.time),
        metrics: web::Data::new(shared.metrics),
        readiness,
        routes,
    };
    let builder = actix_server::Server::build();
    let graceful = builder.graceful_shutdown_signal();
    let server = builder
        .workers(workers)
        .disable_signals()
        .shutdown_timeout(settings.shutdown_timeout_secs)
        .listen("herald-http", listener, move || {
            let (app, graceful) = (app.clone(), graceful.clone());
            let upgrade_app = app.clone();
            let upgrade = fn_factory(move || {
                let app = upgrade_app.clone().build();
                async move {
                    let service = app.into_factory().new_service(AppConfig::default()).await?;
                    let service = Rc::new(service);
                    Ok::<_, ()>(fn_service(move |upgrade| crate::takeover::serve_upgrade(service.clone(), upgrade)))
                }
            });
            let application = app.build().into_factory().map_err(|err: actix_web::Error| err.error_response());
            HttpService::build()
                .graceful_shutdown_signal(move || {
                    let signal = graceful.clone();
                    async move { signal.notified().await }
                })
                .client_request_timeout(Duration::from_secs(10))
                .client_disconnect_timeout(Duration::from_secs(1))
                .h1_allow_half_closed(true)
                .upgrade(upgrade)
                .finish(map_config(application, |_| AppConfig::default()))
                .tcp()
        })?
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

/// What every worker's app is built from: the shared app data, `/healthz` and `/readyz`, and
/// each component's routes.
#[derive(Clone)]
struct AppBuilder {
    verifier: web::Data<JwtVerifier>,
    time: web::Data<TimeFormat>,
    metrics: web::Data<crate::Registry>,
    readiness: Readiness,
    routes: Vec<Routes>,
}

impl AppBuilder {
    /// One app: built for each worker, and once more for its upgrade service.
    fn build(
        self,
    ) -> App<
        impl ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<impl MessageBody + 'static>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    > {
        let mut app = App::new()
            .wrap(from_fn(crate::failure_envelope))
            .app_data(self.verifier)
            .app_data(self.time)
            .app_data(self.metrics)
            .route("/metrics", web::get().to(crate::metrics::serve_metrics))
            .configure(health_routes(self.readiness));
        for mount in &self.routes {
            app = app.configure(|cfg| mount(cfg));
        }
        app.default_service(web::to(crate::not_found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The backlog the kernel reports for a listening socket: `ss`'s Send-Q column.
    fn listen_backlog(port: u16) -> u32 {
        let out = std::process::Command::new("ss")
            .args(["-ltnH", &format!("sport = :{port}")])
            .output()
            .expect("ss (iproute2) reports listening sockets");
        let text = String::from_utf8_lossy(&out.stdout);
        let fields: Vec<&str> = text.split_whitespace().collect();
        fields.get(2).and_then(|q| q.parse().ok()).unwrap_or_else(|| panic!("no listening socket in {text:?}"))
    }

    #[test]
    fn the_listener_listens_with_the_configured_backlog() {
        let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(4096);
        for backlog in [64, 1000] {
            let settings = HttpSettings { addr: ([127, 0, 0, 1], 0).into(), backlog, ..HttpSettings::default() };
            let listener = bind(&settings).unwrap();
            let port = listener.local_addr().unwrap().port();
            assert_eq!(listen_backlog(port), backlog.min(somaxconn), "backlog {backlog}");
        }
    }
}
