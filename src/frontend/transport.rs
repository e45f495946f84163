//! The gateway connection: BuildKit starts the frontend with the gRPC
//! connection on stdin/stdout (HTTP/2 prior knowledge, no TLS).

use std::io;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::unix::pipe;
use tonic::transport::{Channel, Endpoint, Uri};

/// stdin + stdout as one duplex stream. Both are pipes, so tokio can poll
/// them without blocking threads.
pub struct Stdio {
    rx: pipe::Receiver,
    tx: pipe::Sender,
}

impl Stdio {
    fn open() -> io::Result<Self> {
        let rx = pipe::Receiver::from_owned_fd(io::stdin().as_fd().try_clone_to_owned()?)?;
        let tx = pipe::Sender::from_owned_fd(io::stdout().as_fd().try_clone_to_owned()?)?;
        Ok(Stdio { rx, tx })
    }
}

impl AsyncRead for Stdio {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.rx).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stdio {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tx).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tx).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tx).poll_shutdown(cx)
    }
}

/// A channel over stdio. The stream exists once, so the connector hands it
/// out once and fails any reconnect attempt.
pub async fn connect() -> Result<Channel, Box<dyn std::error::Error + Send + Sync>> {
    let stdio = Mutex::new(Some(Stdio::open()?));
    let connector = tower::service_fn(move |_: Uri| {
        let taken = stdio.lock().ok().and_then(|mut s| s.take());
        async move {
            match taken {
                Some(s) => Ok(TokioIo::new(s)),
                None => Err(io::Error::new(io::ErrorKind::NotConnected, "the stdio gateway connection can only be opened once")),
            }
        }
    });
    let channel = Endpoint::from_static("http://localhost").connect_with_connector(connector).await?;
    Ok(channel)
}
