//! deploy/docker/docker-compose.yml: the cluster with Redis, checked against the image and
//! the configuration it mounts.

use crate::files::{self, LAST_STOP_GRACE_SECS};

#[test]
fn the_compose_file_runs_the_cluster_with_redis_and_its_config() {
    let compose = files::yaml("deploy/docker/docker-compose.yml");
    let cluster = &compose["services"]["cluster"];
    assert!(compose["services"]["redis"].is_object(), "a redis service");

    // The build is the repository's Dockerfile.
    let context = cluster["build"]["context"].as_str().unwrap();
    let root = files::repo().join("deploy/docker").join(context).canonicalize().unwrap();
    assert_eq!(root, files::repo().canonicalize().unwrap());
    assert!(root.join(cluster["build"]["dockerfile"].as_str().unwrap()).is_file());

    // The configuration file it mounts, loaded with the image's and the service's
    // environment: the shared rate limit in the redis service.
    let mut env = files::dockerfile("Dockerfile").last().unwrap().env();
    for (k, v) in cluster["environment"].as_object().unwrap() {
        env.push((k.clone(), v.as_str().unwrap().to_owned()));
    }
    let config_path = env.iter().find(|(k, _)| k == "CLUSTER_CONFIG_PATH").unwrap().1.clone();
    let volumes: Vec<&str> =
        cluster["volumes"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let mounted = volumes
        .iter()
        .find_map(|v| {
            let mut parts = v.split(':');
            let (from, to) = (parts.next()?, parts.next()?);
            (to == config_path).then_some(from)
        })
        .expect("the configuration file is mounted at CLUSTER_CONFIG_PATH");
    let json = files::read(&format!("deploy/docker/{}", mounted.trim_start_matches("./")));
    let spec = files::load_config(&json, &env);
    assert_eq!(
        spec.security.rate_limit_store,
        cluster_core::config::RateLimitStore::Redis,
        "the rate limit is shared through Redis"
    );
    let redis = spec.redis_url.as_deref().expect("redisUrl");
    assert!(redis.starts_with("redis://redis:"), "the compose service's name: {redis}");

    // Port, logs volume, healthcheck, stop grace.
    let ports: Vec<&str> =
        cluster["ports"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert!(ports.iter().any(|p| p.ends_with(&format!(":{}", spec.listen.port()))));
    let cluster_core::config::AccessLogPath::File(log) = &spec.access_log.path else {
        panic!("the access log goes to a file on the logs volume")
    };
    assert!(spec.security.enable_request_logging);
    let log_dir = log.parent().unwrap().to_string_lossy().into_owned();
    assert!(volumes.contains(&format!("logs:{log_dir}").as_str()), "{log_dir} is the logs volume");
    assert!(compose["volumes"].as_object().unwrap().contains_key("logs"));
    let test: Vec<&str> = cluster["healthcheck"]["test"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(test, ["CMD", "cluster", "health"]);
    let grace = cluster["stop_grace_period"].as_str().unwrap();
    let grace: u64 = grace.strip_suffix('s').unwrap().parse().unwrap();
    let shutdown = spec.graceful_shutdown_timeout.as_secs_f64().ceil() as u64;
    assert!(grace > shutdown + LAST_STOP_GRACE_SECS, "stop_grace_period {grace}s is too short");
}
