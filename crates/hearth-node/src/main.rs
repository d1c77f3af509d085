#![doc = include_str!("../README.md")]

mod args;
mod p2p;

use std::{convert::Infallible, net::SocketAddr, process::ExitCode, sync::Arc, time::Duration};

use hearth_core::platform::BoxFuture;
use hearth_server::{Config, Runtime, Server, ServerError};
use hearth_store::Store;
use hearth_store_redb::RedbBackend;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Tokio lends the server its timers.
struct TokioRuntime;

impl Runtime for TokioRuntime {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }

    fn spawn(&self, task: BoxFuture<'static, ()>) {
        // Dropping the handle detaches the task.
        drop(tokio::spawn(task));
    }
}

fn main() -> ExitCode {
    let args = match args::Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("hearth-node: {message}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("hearth-node: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("hearth-node: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: args::Args) -> Result<(), String> {
    std::fs::create_dir_all(&args.data).map_err(|error| {
        format!("cannot create data directory {}: {error}", args.data.display())
    })?;
    let path = args.data.join("hearth.redb");
    let backend = RedbBackend::open(&path)
        .map_err(|error| format!("cannot open {}: {error}", path.display()))?;
    let store = Store::open(Arc::new(backend)).await.map_err(|error| error.to_string())?;
    let identity =
        hearth_server::load_or_create_identity(&store).await.map_err(|error| error.to_string())?;
    println!("server name: {}", identity.server_name());
    let config = Config {
        registration: args.registration,
        max_upload_bytes: args.max_upload_bytes.unwrap_or(Config::default().max_upload_bytes),
        ..Config::default()
    };
    let seed = identity.seed();
    let server = Server::new(store, identity, config, Arc::new(TokioRuntime));
    // Without --relay the server has no network: every other server is unreachable.
    if !args.relays.is_empty() {
        p2p::start(&server, seed, args.relays.clone()).await?;
    }

    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|error| format!("cannot listen on {}: {error}", args.listen))?;
    let address = listener.local_addr().map_err(|error| error.to_string())?;
    println!("listening on http://{address}");

    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => serve_connection(server.clone(), stream, peer),
                // Out of file descriptors and the like: keep serving the connections we have.
                Err(error) => eprintln!("hearth-node: accept failed: {error}"),
            },
            signal = &mut shutdown => {
                println!("shutting down ({signal})");
                break;
            }
        }
    }
    // Every write is its own committed transaction, so in-flight requests (long-polling syncs
    // above all) can simply be dropped: nothing half-written remains.
    Ok(())
}

fn serve_connection(server: Server, stream: tokio::net::TcpStream, _peer: SocketAddr) {
    tokio::spawn(async move {
        let service = service_fn(move |request: http::Request<Incoming>| {
            let server = server.clone();
            // Each request runs as its own task to the end, even if its client disconnects:
            // it may be storing other clients' sends along with its own (group commit).
            async move {
                let response =
                    match tokio::spawn(async move { handle(&server, request).await }).await {
                        Ok(response) => response,
                        Err(error) => {
                            hearth_server::error_response(&ServerError::Internal(error.to_string()))
                                .map(|body| Full::new(hyper::body::Bytes::from(body)))
                        }
                    };
                Ok::<_, Infallible>(response)
            }
        });
        // A client that goes away mid-request is not an error worth reporting.
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .await;
    });
}

async fn handle(
    server: &Server,
    request: http::Request<Incoming>,
) -> http::Response<Full<hyper::body::Bytes>> {
    let (parts, body) = request.into_parts();
    let limit = usize::try_from(server.max_body_bytes()).unwrap_or(usize::MAX);
    let response = match Limited::new(body, limit).collect().await {
        Ok(collected) => {
            server.handle(http::Request::from_parts(parts, collected.to_bytes().to_vec())).await
        }
        Err(error) => {
            let error = if error.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                ServerError::TooLarge(format!("request body exceeds {limit} bytes"))
            } else {
                ServerError::BadJson(format!("cannot read the request body: {error}"))
            };
            hearth_server::error_response(&error)
        }
    };
    response.map(|body| Full::new(hyper::body::Bytes::from(body)))
}

async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => return wait_for_ctrl_c().await,
            };
        tokio::select! {
            name = wait_for_ctrl_c() => name,
            _ = terminate.recv() => "SIGTERM",
        }
    }
    #[cfg(not(unix))]
    wait_for_ctrl_c().await
}

async fn wait_for_ctrl_c() -> &'static str {
    match tokio::signal::ctrl_c().await {
        Ok(()) => "SIGINT",
        // Without a signal handler the process is stopped by other means; wait forever.
        Err(_) => std::future::pending().await,
    }
}
