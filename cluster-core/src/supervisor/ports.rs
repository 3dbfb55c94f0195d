//! Private loopback endpoints for workers.

use std::collections::HashSet;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};

/// Picks a free port on 127.0.0.1 that no live worker of this cluster holds.
///
/// The port is found by binding port 0 and closing the socket; the worker binds it a moment
/// later. Ports the cluster already gave out are skipped, so two workers never share one.
pub(crate) fn free_endpoint(in_use: &HashSet<SocketAddr>) -> io::Result<SocketAddr> {
    for _ in 0..64 {
        let addr = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?;
        if !in_use.contains(&addr) {
            return Ok(addr);
        }
    }
    Err(io::Error::new(io::ErrorKind::AddrInUse, "no free loopback port for a worker"))
}
