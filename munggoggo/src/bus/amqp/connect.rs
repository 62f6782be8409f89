//! Opens a lapin connection whose inbound bytes pass through the
//! [`guard`](super::guard) before lapin parses them.
//!
//! lapin runs a connection over whatever stream the connect function of
//! [`Connection::connector`] returns, typed by the runtime kit's reactor.
//! The kit here is tokio's executor with a reactor that delegates
//! everything to tokio's but names the guarded stream as its TCP stream.
//! The connect function opens TCP (and TLS for `amqps://`, as lapin does
//! by default: rustls with the native certificates, plus a CA file if the
//! bus has one) with
//! amq-protocol's own helper on plain tokio, then wraps the result, so the
//! guard sees plaintext frames. lapin calls it on its I/O thread for the
//! first connection and for every reconnection.

use std::fmt;
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use async_rs::traits::Reactor;
use async_rs::util::RuntimeParts;
use async_rs::{Runtime, Tokio};
use futures_util::Stream;
use lapin::tcp::{AMQPUriTcpExt, AsyncTcpStream, OwnedTLSConfig};
use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties};

use super::guard::Guarded;
use super::quiet::{self, Handshake, QuietExecutor};

/// tokio's TCP stream as async-rs types it.
type Plain = <Tokio as Reactor>::TcpStream;

/// The stream lapin reads: TCP or TLS, guarded.
pub(super) type GuardedStream = Guarded<AsyncTcpStream<Plain>>;

/// tokio's reactor, with the guarded stream as its TCP stream.
#[derive(Clone)]
pub(super) struct GuardedReactor {
    tokio: Tokio,
}

impl fmt::Debug for GuardedReactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedReactor").finish_non_exhaustive()
    }
}

impl Reactor for GuardedReactor {
    type TcpStream = GuardedStream;
    type Sleep = <Tokio as Reactor>::Sleep;

    /// Not used by lapin: registering raw handles is not supported.
    fn register<H: Read + Write + Send + 'static>(
        &self,
        _socket: H,
    ) -> io::Result<impl futures_io::AsyncRead + futures_io::AsyncWrite + Send + Unpin + 'static> {
        Err::<GuardedStream, _>(io::Error::new(
            io::ErrorKind::Unsupported,
            "the guarded reactor does not register raw handles",
        ))
    }

    fn sleep(&self, dur: Duration) -> Self::Sleep {
        self.tokio.sleep(dur)
    }

    fn interval(&self, dur: Duration) -> impl Stream<Item = Instant> + Send + 'static {
        self.tokio.interval(dur)
    }

    fn tcp_connect_addr(
        &self,
        addr: SocketAddr,
    ) -> impl Future<Output = io::Result<Self::TcpStream>> + Send + 'static {
        let connecting = self.tokio.tcp_connect_addr(addr);
        async move { Ok(Guarded::new(AsyncTcpStream::Plain(connecting.await?), "amqp")) }
    }
}

/// The runtime kit lapin runs the guarded connection on: tokio, with the
/// guarded stream, and quiet during the handshake (see `quiet.rs`).
pub(super) type GuardedKit = RuntimeParts<QuietExecutor, GuardedReactor>;

/// Errors of a connection's TCP or TLS set-up, which lapin would retry
/// quietly: the first connection fails at once with the reason instead.
#[derive(Default)]
pub(super) struct SetupErrors {
    last: std::sync::Mutex<Option<String>>,
    raised: tokio::sync::Notify,
}

impl SetupErrors {
    fn record(&self, error: Option<String>) {
        let raised = error.is_some();
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = error;
        if raised {
            self.raised.notify_one();
        }
    }

    /// Waits for a set-up error and returns it.
    pub(super) async fn next(&self) -> String {
        loop {
            self.raised.notified().await;
            if let Some(error) = self.last.lock().unwrap_or_else(|e| e.into_inner()).clone() {
                return error;
            }
        }
    }
}

/// Opens a connection to `uri` whose inbound frames are guarded; `role`
/// names it in the guard's log lines. Needs a tokio runtime.
pub(super) async fn connector(
    uri: AMQPUri,
    properties: ConnectionProperties,
    role: &'static str,
    tls: OwnedTLSConfig,
    errors: std::sync::Arc<SetupErrors>,
) -> lapin::Result<Connection> {
    let tokio = Tokio::current();
    let handshake = Handshake::default();
    let executor = QuietExecutor {
        tokio: tokio.clone(),
        handshake: handshake.clone(),
    };
    let runtime: Runtime<GuardedKit> = Runtime::new(RuntimeParts::new(
        executor,
        GuardedReactor { tokio: tokio.clone() },
    ));
    let plain: Runtime<Tokio> = Runtime::new(tokio);
    let on_io_thread = handshake.clone();
    let connect = async move |uri: AMQPUri, _runtime: Runtime<GuardedKit>| {
        quiet::on_io_thread(&on_io_thread);
        match AMQPUriTcpExt::connect_with_config_async(&uri, tls.as_ref(), &plain).await {
            Ok(stream) => {
                errors.record(None);
                Ok(AsyncTcpStream::Plain(Guarded::new(stream, role)))
            }
            Err(e) => {
                errors.record(Some(e.to_string()));
                Err(lapin::Error::from(e))
            }
        }
    };
    let connection = Connection::connector(uri, runtime, connect, properties).await?;
    handshake.done();
    Ok(connection)
}
