//! Header handling through the proxy: Host, X-Forwarded-*, hop-by-hop fields both ways.

mod proxy_support;

use cluster_core::ProxyConfig;
use http::{Request, Response, StatusCode};
use proxy_support::*;

fn forwarded_request() -> Request<TestBody> {
    Request::get("/where?x=1")
        .header("host", "app.test:8080")
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "public.test")
        .body(empty())
        .unwrap()
}

#[tokio::test]
async fn host_is_preserved_and_forwarded_fields_replaced_for_an_untrusted_peer() {
    within(async {
        let a = inspecting(1).await;
        let proxy = start_proxy(&[a.addr], ProxyConfig::default()).await;
        let mut client = Client::connect(proxy.addr).await;
        let body = text(client.send(forwarded_request()).await.unwrap()).await;
        assert!(body.starts_with("GET /where?x=1 HTTP/1.1\n"), "{body}");
        assert_eq!(seen(&body, "host").as_deref(), Some("app.test:8080"));
        assert_eq!(seen(&body, "x-forwarded-for").as_deref(), Some("127.0.0.1"));
        assert_eq!(seen(&body, "x-forwarded-proto").as_deref(), Some("http"));
        assert_eq!(seen(&body, "x-forwarded-host").as_deref(), Some("app.test:8080"));
    })
    .await;
}

#[tokio::test]
async fn forwarded_fields_are_extended_for_a_trusted_peer() {
    within(async {
        let a = inspecting(1).await;
        let mut cfg = ProxyConfig::default();
        cfg.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
        let proxy = start_proxy(&[a.addr], cfg).await;
        let mut client = Client::connect(proxy.addr).await;
        let body = text(client.send(forwarded_request()).await.unwrap()).await;
        assert_eq!(seen(&body, "host").as_deref(), Some("app.test:8080"));
        assert_eq!(seen(&body, "x-forwarded-for").as_deref(), Some("6.6.6.6, 127.0.0.1"));
        assert_eq!(seen(&body, "x-forwarded-proto").as_deref(), Some("https"));
        assert_eq!(seen(&body, "x-forwarded-host").as_deref(), Some("public.test"));
        // Without incoming fields, a trusted peer gets the same defaults as anyone.
        let body = text(client.get("/").await).await;
        assert_eq!(seen(&body, "x-forwarded-for").as_deref(), Some("127.0.0.1"));
        assert_eq!(seen(&body, "x-forwarded-proto").as_deref(), Some("http"));
        assert_eq!(seen(&body, "x-forwarded-host").as_deref(), Some("app.test"));
    })
    .await;
}

#[tokio::test]
async fn hop_by_hop_fields_are_stripped_both_ways() {
    within(async {
        let worker = upstream(|req| async move {
            let mut names: Vec<String> = req.headers().keys().map(|k| k.to_string()).collect();
            names.sort();
            Response::builder()
                .header("connection", "x-resp-private")
                .header("x-resp-private", "1")
                .header("keep-alive", "timeout=5")
                .header("proxy-authenticate", "Basic")
                .header("upgrade", "h2c")
                .header("x-resp-public", "1")
                .body(full(names.join(",")))
                .unwrap()
        })
        .await;
        let proxy = start_proxy(&[worker.addr], ProxyConfig::default()).await;
        let mut client = Client::connect(proxy.addr).await;
        let req = Request::get("/")
            .header("host", "app.test")
            .header("connection", "keep-alive, x-private")
            .header("x-private", "secret")
            .header("keep-alive", "timeout=10")
            .header("proxy-authorization", "Basic Zm9v")
            .header("proxy-connection", "keep-alive")
            .header("te", "trailers")
            .header("upgrade", "websocket")
            .header("x-public", "1")
            .body(empty())
            .unwrap();
        let resp = client.send(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        for name in ["x-resp-private", "keep-alive", "proxy-authenticate", "upgrade", "connection"]
        {
            assert!(!resp.headers().contains_key(name), "{name} reached the client");
        }
        assert_eq!(resp.headers()["x-resp-public"], "1");
        let names = text(resp).await;
        assert_eq!(names, "host,x-forwarded-for,x-forwarded-host,x-forwarded-proto,x-public");
    })
    .await;
}

#[tokio::test]
async fn head_response_keeps_its_content_length() {
    within(async {
        let worker = upstream(|_req| async move {
            Response::builder().header("content-length", "1234").body(empty()).unwrap()
        })
        .await;
        let proxy = start_proxy(&[worker.addr], ProxyConfig::default()).await;
        let mut client = Client::connect(proxy.addr).await;
        for _ in 0..3 {
            let req = Request::head("/").header("host", "a").body(empty()).unwrap();
            let resp = client.send(req).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            assert_eq!(resp.headers()["content-length"], "1234");
            assert_eq!(text(resp).await, "");
        }
        assert_eq!(worker.connections(), 1);
        assert_eq!(proxy.proxy.in_flight(), 0);
    })
    .await;
}
