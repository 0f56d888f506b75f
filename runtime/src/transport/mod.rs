//! Transports: how bytes get between two processes.
//!
//! A transport produces [`Connection`]s: a byte stream already split into a read half
//! and a write half, a process-unique [`ConnectionId`] for logs and bookkeeping, and the
//! peer's credentials where the operating system reports them. The framing codecs and
//! the server and client layers above see only `Connection`s, never a socket type, so
//! they are written once for every transport.
//!
//! Today there is one transport, [`unix`]: Unix domain stream sockets (a
//! [`unix::Listener`] bound to a path, [`unix::connect`], and [`unix::socketpair`] for a
//! connected pair within one process or to hand to a child).
//!
//! # Adding a transport
//!
//! A transport needs only two things from this module:
//!
//! - A stream implementing [`AsyncStream`] (`AsyncRead + AsyncWrite + Send + Unpin +
//!   'static`). A stream with owned halves of its own (as tokio's `UnixStream` has with
//!   `into_split`) uses [`Connection::from_halves`]; any other stream uses
//!   [`Connection::from_stream`], which splits it with [`tokio::io::split`].
//! - An [`Accept`] implementation for its listening side, so a server accepts from any
//!   transport with the same loop.
//!
//! **Windows named pipes are the next transport.** `tokio::net::windows::named_pipe`'s
//! `NamedPipeServer` and `NamedPipeClient` are `AsyncRead + AsyncWrite`, so they become
//! `Connection`s through [`Connection::from_stream`]; the pipe listener keeps the next
//! server instance and implements [`Accept`] by awaiting `connect()` on it and creating
//! the following instance before returning (the pattern tokio documents). The peer's
//! process id comes from `GetNamedPipeClientProcessId` and has no uid or gid, which is
//! why [`PeerCredentials`] has optional fields. No Windows code ships until it can be
//! compiled and tested on the machines this project is built on.
//!
//! **File-descriptor passing** (`SCM_RIGHTS`) is the next step for Unix sockets: a socket
//! end received from another process is a `UnixStream` and becomes a `Connection`
//! exactly as [`unix::socketpair`]'s ends do.
//!
//! <!-- Absolute link targets: this text is joined to the doc comment on `pub mod
//! transport` in lib.rs, and rustdoc then resolves bare names from the crate root. -->
//!
//! [`Connection`]: crate::transport::Connection
//! [`ConnectionId`]: crate::transport::ConnectionId
//! [`unix`]: crate::transport::unix
//! [`unix::Listener`]: crate::transport::unix::Listener
//! [`unix::connect`]: crate::transport::unix::connect()
//! [`unix::socketpair`]: crate::transport::unix::socketpair()
//! [`AsyncStream`]: crate::transport::AsyncStream
//! [`Connection::from_halves`]: crate::transport::Connection::from_halves
//! [`Connection::from_stream`]: crate::transport::Connection::from_stream
//! [`Accept`]: crate::transport::Accept
//! [`PeerCredentials`]: crate::transport::PeerCredentials

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub use crate::dispatch::PeerCredentials;

pub mod unix;

/// A byte stream a transport can carry: anything tokio can read from and write to that
/// can move between tasks.
///
/// Implemented for every type with those bounds; it exists to name them once.
pub trait AsyncStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> AsyncStream for T {}

/// The read half of a [`Connection`], boxed so every transport has the same type.
pub type BoxReader = Box<dyn AsyncRead + Send + Unpin>;

/// The write half of a [`Connection`], boxed so every transport has the same type.
pub type BoxWriter = Box<dyn AsyncWrite + Send + Unpin>;

/// The listening side of a transport: something that yields [`Connection`]s.
///
/// Servers accept through this trait, so they run on any transport.
pub trait Accept {
    /// Waits for the next connection. An error concerns this attempt (for example, the
    /// process ran out of file descriptors); the caller decides whether to keep
    /// accepting.
    fn accept_connection(&mut self) -> impl Future<Output = io::Result<Connection>> + Send;
}

/// A process-unique connection number, for logs and for telling connections apart.
///
/// Ids come from one global counter, start at 1 and are never reused within a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(u64);

impl ConnectionId {
    /// The next id from the process-wide counter.
    fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ConnectionId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The number itself.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// One established connection, whatever the transport: a read half, a write half, an
/// id, and the peer's credentials when the transport knows them.
///
/// `Connection` itself implements [`AsyncRead`] and [`AsyncWrite`] (reading from the read
/// half and writing to the write half), so it can be used whole; a server that reads and
/// writes from different tasks takes it apart with [`Connection::into_split`]. Shutting
/// down or dropping the write half tells the peer no more data follows (it reads
/// end-of-file), while the read half stays usable.
pub struct Connection {
    id: ConnectionId,
    peer: Option<PeerCredentials>,
    reader: BoxReader,
    writer: BoxWriter,
}

impl Connection {
    /// A connection from a stream that is already split into independent owned halves
    /// (tokio's `UnixStream::into_split`). Takes the next [`ConnectionId`].
    pub fn from_halves<R, W>(reader: R, writer: W, peer: Option<PeerCredentials>) -> Self
    where
        R: AsyncRead + Send + Unpin + 'static,
        W: AsyncWrite + Send + Unpin + 'static,
    {
        Connection {
            id: ConnectionId::next(),
            peer,
            reader: Box::new(reader),
            writer: Box::new(writer),
        }
    }

    /// A connection from any [`AsyncStream`], split with [`tokio::io::split`] (a small
    /// lock shared by the halves). Prefer [`Connection::from_halves`] when the stream
    /// has owned halves of its own. Takes the next [`ConnectionId`].
    pub fn from_stream<S: AsyncStream>(stream: S, peer: Option<PeerCredentials>) -> Self {
        let (reader, writer) = tokio::io::split(stream);
        Connection::from_halves(reader, writer, peer)
    }

    /// This connection's id.
    pub fn id(&self) -> ConnectionId {
        self.id
    }

    /// The peer's credentials, when the transport reports them (`SO_PEERCRED` on Unix
    /// sockets). `None` when the transport has no such notion or the query failed.
    pub fn peer(&self) -> Option<PeerCredentials> {
        self.peer
    }

    /// The read half and the write half, for use from different tasks. Read the id and
    /// the peer first: they are not carried by the halves.
    pub fn into_split(self) -> (BoxReader, BoxWriter) {
        (self.reader, self.writer)
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().reader).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().writer).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().writer).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.writer.is_write_vectored()
    }
}
