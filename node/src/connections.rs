//! Limits on inbound connections, checked when a TCP connection is accepted and before
//! its TLS handshake: at most `limits.max_connections` open and
//! `limits.max_handshakes` handshaking at once, and of those at most
//! `limits.max_connections_per_ip` / `limits.max_handshakes_per_ip` from one address.
//! A connection over a limit is closed at once — shed, not queued — and counted in
//! `kms_connections_refused_total{reason}`; requests on admitted connections meet the
//! per-endpoint rate and concurrency limits (429/503) next.
//!
//! Without this a client that opens connections faster than the node answers makes it
//! accept all of them: each costs a handshake (the dearest thing a request does here)
//! and memory, and every request behind them waits (seen: ~19,500 connections from one
//! load generator, p99 in seconds).

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum_server::accept::Accept;
use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::config::LimitsConfig;
use crate::metrics::{Metrics, ReasonLabel};

#[derive(Default)]
struct Counts {
    connections: usize,
    handshakes: usize,
    per_ip: HashMap<IpAddr, (usize, usize)>,
}

/// The counters and their limits, shared by every connection of one server.
pub struct ConnectionLimits {
    max_connections: usize,
    max_handshakes: usize,
    max_connections_per_ip: usize,
    max_handshakes_per_ip: usize,
    counts: Mutex<Counts>,
    metrics: Arc<Metrics>,
}

/// Why a connection was shed (the metric's `reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shed {
    /// `max_connections` open.
    Connections,
    /// `max_connections_per_ip` open from this address.
    ConnectionsPerIp,
    /// `max_handshakes` in progress.
    Handshakes,
    /// `max_handshakes_per_ip` in progress from this address.
    HandshakesPerIp,
}

impl Shed {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Shed::Connections => "connections",
            Shed::ConnectionsPerIp => "connections_per_ip",
            Shed::Handshakes => "handshakes",
            Shed::HandshakesPerIp => "handshakes_per_ip",
        }
    }
}

/// Held while a connection is open; released on drop.
pub struct ConnectionSlot {
    limits: Arc<ConnectionLimits>,
    ip: Option<IpAddr>,
}

/// Held while a connection's handshake runs; released on drop.
pub struct HandshakeSlot {
    limits: Arc<ConnectionLimits>,
    ip: Option<IpAddr>,
}

impl ConnectionLimits {
    /// The limits of `cfg`, counted into `metrics`.
    pub fn new(cfg: &LimitsConfig, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            max_connections: cfg.max_connections.max(1),
            max_handshakes: cfg.max_handshakes.max(1),
            max_connections_per_ip: cfg.max_connections_per_ip.max(1),
            max_handshakes_per_ip: cfg.max_handshakes_per_ip.max(1),
            counts: Mutex::new(Counts::default()),
            metrics,
        })
    }

    /// A connection and a handshake slot for a new connection from `ip`, or why not.
    pub fn admit(
        self: &Arc<Self>,
        ip: Option<IpAddr>,
    ) -> Result<(ConnectionSlot, HandshakeSlot), Shed> {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let (ip_conns, ip_hands) = ip
            .and_then(|ip| c.per_ip.get(&ip).copied())
            .unwrap_or((0, 0));
        let refusal = if c.connections >= self.max_connections {
            Some(Shed::Connections)
        } else if ip_conns >= self.max_connections_per_ip {
            Some(Shed::ConnectionsPerIp)
        } else if c.handshakes >= self.max_handshakes {
            Some(Shed::Handshakes)
        } else if ip_hands >= self.max_handshakes_per_ip {
            Some(Shed::HandshakesPerIp)
        } else {
            None
        };
        if let Some(r) = refusal {
            drop(c);
            self.metrics
                .connections_refused
                .get_or_create(&ReasonLabel {
                    reason: r.label().to_string(),
                })
                .inc();
            return Err(r);
        }
        c.connections += 1;
        c.handshakes += 1;
        if let Some(ip) = ip {
            let e = c.per_ip.entry(ip).or_default();
            e.0 += 1;
            e.1 += 1;
        }
        self.metrics.connections_open.set(c.connections as i64);
        Ok((
            ConnectionSlot {
                limits: self.clone(),
                ip,
            },
            HandshakeSlot {
                limits: self.clone(),
                ip,
            },
        ))
    }

    fn release(&self, ip: Option<IpAddr>, connection: bool) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if connection {
            c.connections = c.connections.saturating_sub(1);
        } else {
            c.handshakes = c.handshakes.saturating_sub(1);
        }
        if let Some(ip) = ip
            && let Some(e) = c.per_ip.get_mut(&ip)
        {
            if connection {
                e.0 = e.0.saturating_sub(1);
            } else {
                e.1 = e.1.saturating_sub(1);
            }
            if *e == (0, 0) {
                c.per_ip.remove(&ip);
            }
        }
        self.metrics.connections_open.set(c.connections as i64);
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.limits.release(self.ip, true);
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        self.limits.release(self.ip, false);
    }
}

/// An acceptor that applies [`ConnectionLimits`] before the inner (TLS) acceptor runs.
#[derive(Clone)]
pub struct LimitedAcceptor<A> {
    inner: A,
    limits: Arc<ConnectionLimits>,
}

impl<A> LimitedAcceptor<A> {
    /// Wraps `inner`.
    pub fn new(inner: A, limits: Arc<ConnectionLimits>) -> Self {
        Self { inner, limits }
    }
}

impl<S, A> Accept<TcpStream, S> for LimitedAcceptor<A>
where
    A: Accept<TcpStream, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = Limited<A::Stream>;
    type Service = A::Service;
    type Future = BoxFuture<'static, io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let ip = stream.peer_addr().ok().map(|a| a.ip());
        let (connection, handshake) = match self.limits.admit(ip) {
            Ok(slots) => slots,
            Err(r) => {
                // Dropping the stream closes the connection before any TLS work.
                drop(stream);
                return Box::pin(async move {
                    Err(io::Error::other(format!("connection shed ({})", r.label())))
                });
            }
        };
        let handshaking = self.inner.accept(stream, service);
        Box::pin(async move {
            let (stream, service) = handshaking.await?;
            drop(handshake);
            Ok((
                Limited {
                    inner: stream,
                    _slot: connection,
                },
                service,
            ))
        })
    }
}

/// A connection that holds its slot until it is dropped.
pub struct Limited<S> {
    inner: S,
    _slot: ConnectionSlot,
}

impl<S: AsyncRead + Unpin> AsyncRead for Limited<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Limited<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(conns: usize, per_ip: usize, hands: usize, hands_ip: usize) -> Arc<ConnectionLimits> {
        let cfg = LimitsConfig {
            max_connections: conns,
            max_connections_per_ip: per_ip,
            max_handshakes: hands,
            max_handshakes_per_ip: hands_ip,
            ..LimitsConfig::default()
        };
        ConnectionLimits::new(&cfg, Arc::new(Metrics::new()))
    }

    #[test]
    fn connections_and_handshakes_are_bounded_overall_and_per_address() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let l = limits(3, 2, 10, 10);
        let a1 = l.admit(Some(a)).unwrap();
        let _a2 = l.admit(Some(a)).unwrap();
        assert_eq!(l.admit(Some(a)).err(), Some(Shed::ConnectionsPerIp));
        let _b1 = l.admit(Some(b)).unwrap();
        assert_eq!(l.admit(Some(b)).err(), Some(Shed::Connections));
        // A closed connection frees its slots.
        drop(a1);
        let _a3 = l.admit(Some(a)).unwrap();

        let l = limits(10, 10, 2, 1);
        let (_c1, h1) = l.admit(Some(a)).unwrap();
        assert_eq!(l.admit(Some(a)).err(), Some(Shed::HandshakesPerIp));
        let (_c2, _h2) = l.admit(Some(b)).unwrap();
        assert_eq!(
            l.admit(Some("10.0.0.3".parse().unwrap())).err(),
            Some(Shed::Handshakes)
        );
        // A finished handshake frees its slot; the connection keeps its own.
        drop(h1);
        let _a = l.admit(Some(a)).unwrap();
        let text = l.metrics.render();
        assert!(
            text.contains("kms_connections_refused_total{reason=\"handshakes_per_ip\"} 1"),
            "{text}"
        );
    }
}
