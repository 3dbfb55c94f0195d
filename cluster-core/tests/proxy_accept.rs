//! The accept loop survives running out of file descriptors: it backs off and resumes.
//! Alone in its test binary because it lowers the process's descriptor limit.

mod proxy_support;

use std::time::Duration;

use cluster_core::ProxyConfig;
use http::StatusCode;
use proxy_support::*;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use tokio::net::TcpStream;

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").unwrap().count() as u64
}

#[tokio::test]
async fn accept_backs_off_on_emfile_and_recovers() {
    within(async {
        let worker = inspecting(1).await;
        let proxy = start_proxy(&[worker.addr], ProxyConfig::default()).await;
        let saved = getrlimit(Resource::Nofile);
        setrlimit(
            Resource::Nofile,
            Rlimit { current: Some(open_fds() + 8), maximum: saved.maximum },
        )
        .unwrap();
        // Connect until this process has no descriptor left: the proxy cannot accept the
        // connections waiting in its backlog.
        let mut clients = Vec::new();
        for _ in 0..64 {
            match TcpStream::connect(proxy.addr).await {
                Ok(tcp) => clients.push(tcp),
                Err(_) => break,
            }
        }
        assert!(clients.len() < 64, "the descriptor limit was not reached");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!proxy.served.is_finished(), "serve gave up on EMFILE");
        drop(clients);
        setrlimit(Resource::Nofile, saved).unwrap();
        let mut client = Client::connect(proxy.addr).await;
        let resp = client.get("/").await;
        assert_eq!(resp.status(), StatusCode::OK);
    })
    .await;
}
