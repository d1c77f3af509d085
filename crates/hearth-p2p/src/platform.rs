//! The one place native and wasm differ: transports, timers and the driver's future type.
//!
//! Native: tokio, TCP and WebSocket (with DNS). Browser (`target_family = "wasm"`): the
//! browser's WebSocket, `setTimeout` timers; futures need not be `Send` there.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::{Swarm, noise, yamux};

use crate::P2pError;
use crate::behaviour::Behaviour;

/// The driver future the host spawns: `Send` natively, where hosts spawn on a thread pool.
#[cfg(not(target_family = "wasm"))]
pub type Driver = Pin<Box<dyn Future<Output = ()> + Send>>;
/// The driver future the host spawns (`wasm_bindgen_futures::spawn_local` in a browser).
#[cfg(target_family = "wasm")]
pub type Driver = Pin<Box<dyn Future<Output = ()>>>;

/// A boxed future the driver keeps: `Send` natively.
#[cfg(not(target_family = "wasm"))]
pub(crate) type BoxFuture<T> = futures::future::BoxFuture<'static, T>;
/// A boxed future the driver keeps.
#[cfg(target_family = "wasm")]
pub(crate) type BoxFuture<T> = futures::future::LocalBoxFuture<'static, T>;

/// Completes after `duration`.
#[cfg(not(target_family = "wasm"))]
pub(crate) async fn sleep(duration: Duration) {
    tokio::time::sleep(duration).await;
}

/// Completes after `duration`.
#[cfg(target_family = "wasm")]
pub(crate) async fn sleep(duration: Duration) {
    futures_timer::Delay::new(duration).await;
}

/// The swarm's settings. Substreams negotiate their protocol lazily (`V1Lazy`): the dialer
/// proposes its one protocol and writes at once instead of waiting a round trip for the
/// listener's agreement. Every federation request opens a substream through the relay, so this
/// takes one relayed round trip off each; all our peers and our relay speak what we propose.
fn swarm_config(
    idle_timeout: Duration,
) -> impl FnOnce(libp2p::swarm::Config) -> libp2p::swarm::Config {
    move |config| {
        config
            .with_idle_connection_timeout(idle_timeout)
            .with_substream_upgrade_protocol_override(libp2p::core::upgrade::Version::V1Lazy)
    }
}

fn setup_error(e: impl std::fmt::Display) -> P2pError {
    P2pError::Setup(e.to_string())
}

/// TCP (for native peers and relays) and WebSocket, each with noise and yamux, plus the relay
/// client transport; in the builder order libp2p requires.
#[cfg(not(target_family = "wasm"))]
pub(crate) async fn build_swarm(
    keypair: Keypair,
    behaviour: impl FnOnce(&Keypair, libp2p::relay::client::Behaviour) -> Behaviour,
    idle_timeout: Duration,
) -> Result<Swarm<Behaviour>, P2pError> {
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(setup_error)?
        .with_dns()
        .map_err(setup_error)?
        .with_websocket(noise::Config::new, yamux::Config::default)
        .await
        .map_err(setup_error)?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(setup_error)?
        .with_behaviour(|key, relay| behaviour(key, relay))
        .map_err(setup_error)?
        .with_swarm_config(swarm_config(idle_timeout))
        .build();
    Ok(swarm)
}

/// The browser's WebSocket with noise and yamux, plus the relay client transport.
#[cfg(target_family = "wasm")]
pub(crate) async fn build_swarm(
    keypair: Keypair,
    behaviour: impl FnOnce(&Keypair, libp2p::relay::client::Behaviour) -> Behaviour,
    idle_timeout: Duration,
) -> Result<Swarm<Behaviour>, P2pError> {
    use libp2p::Transport;
    use libp2p::core::upgrade::Version;

    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_wasm_bindgen()
        .with_other_transport(|key| {
            let noise = noise::Config::new(key)
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?;
            Ok(libp2p::websocket_websys::Transport::default()
                .map(|connection, _| FlushOnSend(connection))
                .upgrade(Version::V1)
                .authenticate(noise)
                .multiplex(yamux::Config::default()))
        })
        .map_err(setup_error)?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(setup_error)?
        .with_behaviour(|key, relay| behaviour(key, relay))
        .map_err(setup_error)?
        .with_swarm_config(swarm_config(idle_timeout))
        .build();
    Ok(swarm)
}

/// The browser's WebSocket connection, whose flush completes once the bytes are handed to the
/// browser. libp2p-websocket-websys (0.6) flushes only when the socket's `bufferedAmount` is 0,
/// which it never is right after `send` (the browser transmits on a later task), and it checks
/// again on a 100 ms interval: a writer that flushes (yamux, noise, the request-response codec)
/// waited up to 100 ms. (In the browser-to-browser delivery benchmark the median went from
/// about 45 to 40 ms, within the run-to-run noise of a loaded machine.) `send` already queues
/// the bytes for transmission in order, so nothing is lost by not waiting; writes still stop at
/// the transport's own buffer limit (its `poll_write`), so backpressure stays.
#[cfg(target_family = "wasm")]
struct FlushOnSend<C>(C);

#[cfg(target_family = "wasm")]
impl<C: futures::AsyncRead + Unpin> futures::AsyncRead for FlushOnSend<C> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

#[cfg(target_family = "wasm")]
impl<C: futures::AsyncWrite + Unpin> futures::AsyncWrite for FlushOnSend<C> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        // An error (a closed socket) still surfaces; only the wait for the browser's buffer
        // to drain is skipped.
        match std::pin::Pin::new(&mut self.0).poll_flush(cx) {
            std::task::Poll::Pending => std::task::Poll::Ready(Ok(())),
            ready => ready,
        }
    }

    fn poll_close(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_close(cx)
    }
}
