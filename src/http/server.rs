//! The accept loop of `qrpark serve` and `qrpark demo`: HTTP/1.1 through hyper with a
//! deadline on request headers (a slow client cannot hold a connection by trickling them),
//! a cap on open connections, the peer's address for the rate limits, and a graceful
//! shutdown that lets requests in flight finish. `axum::serve` has no header deadline.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// How the server treats connections.
#[derive(Clone, Copy, Debug)]
pub struct ServerLimits {
    /// Time a client has to send a request's headers (also the longest idle keep-alive).
    pub header_timeout: Duration,
    /// Most connections open at once; the next client waits in the listen backlog.
    pub max_connections: usize,
}

impl ServerLimits {
    /// The limits `config` asks for.
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            header_timeout: Duration::from_secs(config.header_timeout_secs),
            max_connections: usize::try_from(config.max_connections).unwrap_or(usize::MAX),
        }
    }
}

/// Longest wait for requests in flight once shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting and waits
/// (up to 30 s) for the connections' requests in flight to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A permit first: at the cap, new clients wait in the kernel's backlog, not here.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service =
            router
                .clone()
                .map_request(move |mut request: axum::http::Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request
                });
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                // Header deadlines, resets and malformed requests: the client's doing.
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {},
        () = tokio::time::sleep(DRAIN_TIMEOUT) => {
            tracing::warn!("requests still in flight after {DRAIN_TIMEOUT:?}; stopping anyway");
        }
    }
}
