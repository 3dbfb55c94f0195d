//! The `hello` worker's opt-in notify heartbeat (`HELLO_NOTIFY=1`), against a notify socket
//! of the test's own.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::hello_bin;

/// A worker process, killed on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The next datagram within `limit`, as text.
fn next(socket: &UnixDatagram, limit: Duration) -> Option<String> {
    socket.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn ready_then_watchdog_pings_until_the_hang_while_http_goes_on() {
    let name = format!("hello-notify-test/{}", std::process::id());
    let socket =
        UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
    let child = Command::new(hello_bin())
        .env("PORT", "0")
        .env("HELLO_NOTIFY", "1")
        .env("NOTIFY_SOCKET", format!("@{name}"))
        .env("WATCHDOG_USEC", "200000")
        .env("HELLO_NOTIFY_HANG_AFTER_MS", "700")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn hello");
    let mut worker = Killed(child);
    let started = Instant::now();
    assert_eq!(next(&socket, Duration::from_secs(10)).as_deref(), Some("READY=1\nSTATUS=serving"));
    let mut pings = 0;
    let last = loop {
        match next(&socket, Duration::from_secs(5)).expect("a datagram") {
            ping if ping == "WATCHDOG=1" => pings += 1,
            other => break other,
        }
    };
    // Every 100 ms (half of WATCHDOG_USEC) for 700 ms, then a last status and silence.
    assert!((4..=9).contains(&pings), "{pings} pings");
    assert!(last.starts_with("STATUS=hanging"), "{last:?}");
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert_eq!(next(&socket, Duration::from_millis(500)), None);

    // Still serving.
    let mut banner = String::new();
    let mut stdout = worker.0.stdout.take().unwrap();
    let mut byte = [0u8; 1];
    while !banner.ends_with('\n') && stdout.read(&mut byte).unwrap() == 1 {
        banner.push(byte[0] as char);
    }
    let addr = banner.trim().rsplit(' ').next().expect("address in banner").to_owned();
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.write_all(b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}
