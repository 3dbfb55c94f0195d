//! deploy/kubernetes/: the Deployment, Service and ConfigMap agree with each other, with the
//! image and with the cluster they run.

use cluster_admin::routes;
use cluster_core::config::{AccessLogPath, ClusterSpec};
use serde_json::Value;

use crate::files::{self, LAST_STOP_GRACE_SECS};

/// What the Deployment needs of the primary besides its workers: the proxy, the admin API,
/// the status history (tens of MB at most).
const PRIMARY_OVERHEAD: u64 = 64 << 20;

/// The manifests, read once per test.
struct Manifests {
    deployment: Value,
    service: Value,
    config_json: String,
}

impl Manifests {
    fn read() -> Self {
        let deployment = files::yaml("deploy/kubernetes/deployment.yaml");
        let service = files::yaml("deploy/kubernetes/service.yaml");
        let config_map = files::yaml("deploy/kubernetes/configmap.yaml");
        assert_eq!(deployment["kind"], "Deployment");
        assert_eq!(service["kind"], "Service");
        assert_eq!(config_map["kind"], "ConfigMap");
        let config_json = config_map["data"]["cluster.config.json"]
            .as_str()
            .expect("the ConfigMap has cluster.config.json")
            .to_owned();
        // The Deployment mounts this ConfigMap.
        let volumes = deployment["spec"]["template"]["spec"]["volumes"].as_array().unwrap();
        assert!(
            volumes.iter().any(|v| v["configMap"]["name"] == config_map["metadata"]["name"]),
            "no volume of the Deployment is the ConfigMap {}",
            config_map["metadata"]["name"]
        );
        Self { deployment, service, config_json }
    }

    fn pod(&self) -> &Value {
        &self.deployment["spec"]["template"]["spec"]
    }

    fn container(&self) -> &Value {
        let containers = self.pod()["containers"].as_array().expect("containers");
        assert_eq!(containers.len(), 1, "one container: the cluster");
        &containers[0]
    }

    /// The container's environment: the image's `ENV`, then the Deployment's variables (a
    /// Secret's value stands in as a token of the length the docs ask for).
    fn env(&self) -> Vec<(String, String)> {
        let mut env = image_env();
        for var in self.container()["env"].as_array().into_iter().flatten() {
            let name = var["name"].as_str().unwrap().to_owned();
            let value = match var["value"].as_str() {
                Some(v) => v.to_owned(),
                None => {
                    assert!(var["valueFrom"]["secretKeyRef"].is_object(), "{var}");
                    "k8s-secret-token-0123456789abcdef".to_owned()
                }
            };
            env.retain(|(k, _)| *k != name);
            env.push((name, value));
        }
        env
    }

    /// The configuration as the container loads it.
    fn spec(&self) -> ClusterSpec {
        let env = self.env();
        let path = env.iter().find(|(k, _)| k == "CLUSTER_CONFIG_PATH").map(|(_, v)| v.clone());
        let path = path.expect("the container sets CLUSTER_CONFIG_PATH");
        let dir = std::path::Path::new(&path).parent().unwrap();
        assert_eq!(path, dir.join("cluster.config.json").to_string_lossy());
        assert!(
            self.mount("config").is_some_and(|m| m == dir.to_string_lossy()),
            "CLUSTER_CONFIG_PATH {path} is not in the ConfigMap's mount"
        );
        files::load_config(&self.config_json, &env)
    }

    /// Where the volume `name` is mounted.
    fn mount(&self, name: &str) -> Option<String> {
        self.container()["volumeMounts"]
            .as_array()?
            .iter()
            .find(|m| m["name"] == name)
            .and_then(|m| m["mountPath"].as_str().map(str::to_owned))
    }

    /// A container port, by name or number.
    fn port(&self, port: &Value) -> u64 {
        if let Some(n) = port.as_u64() {
            return n;
        }
        let name = port.as_str().expect("a port is a number or a name");
        self.container()["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no container port named {name}"))["containerPort"]
            .as_u64()
            .unwrap()
    }
}

/// The `ENV` of the image the Deployment runs (the Dockerfile's last stage).
fn image_env() -> Vec<(String, String)> {
    files::dockerfile("Dockerfile").last().unwrap().env()
}

#[test]
fn the_config_map_loads_as_the_container_loads_it() {
    let m = Manifests::read();
    let spec = m.spec();
    assert_eq!(m.deployment["spec"]["replicas"], 2, "2 replicas");
    assert!(spec.workers >= 2, "N workers per pod, N >= 2: {}", spec.workers);
    // A read-only root file system: the control socket and pid file need a volume.
    let read_only = m.container()["securityContext"]["readOnlyRootFilesystem"] == true;
    let runtime = m.mount("runtime").expect("a volume for the runtime directory");
    if read_only {
        assert!(
            spec.runtime_dir.starts_with(&runtime),
            "{:?} is not on {runtime}",
            spec.runtime_dir
        );
        // The access log, when turned on, must go to stdout: no volume takes it.
        assert_eq!(spec.access_log.path, AccessLogPath::Stdout, "the access log goes to stdout");
    }
}

#[test]
fn the_probes_ask_the_health_route_on_the_admin_listener() {
    let m = Manifests::read();
    let spec = m.spec();
    let admin = spec.admin.listen.expect("admin.listen is set");
    assert!(admin.ip().is_unspecified(), "the kubelet probes the pod's address: {admin}");
    assert!(
        spec.admin.token.is_none() || spec.admin.public_health,
        "with a token, the probes get 401 unless admin.publicHealth is true"
    );
    for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
        let get = &m.container()[probe]["httpGet"];
        assert_eq!(get["path"], routes::HEALTH, "{probe}");
        assert_eq!(
            m.port(&get["port"]),
            u64::from(admin.port()),
            "{probe} is on admin.listen's port"
        );
    }
    // The startup probe waits at least one start attempt; liveness gives the primary time to
    // replace an unresponsive worker itself before the pod is restarted.
    let window = |probe: &str| {
        let p = &m.container()[probe];
        p["periodSeconds"].as_u64().unwrap() * p["failureThreshold"].as_u64().unwrap()
    };
    assert!(window("startupProbe") > spec.start_timeout.as_secs());
    assert!(window("livenessProbe") > (spec.unresponsive_timeout + spec.start_timeout).as_secs());
}

#[test]
fn the_grace_period_covers_the_pre_stop_sleep_and_the_graceful_shutdown() {
    let m = Manifests::read();
    let spec = m.spec();
    let command = m.container()["lifecycle"]["preStop"]["exec"]["command"].as_array().unwrap();
    assert_eq!(command[0], "sleep", "preStop sleeps");
    let sleep: u64 = command[1].as_str().unwrap().parse().unwrap();
    let grace = m.pod()["terminationGracePeriodSeconds"].as_u64().unwrap();
    let shutdown = spec.graceful_shutdown_timeout.as_secs_f64().ceil() as u64;
    assert!(
        grace > sleep + shutdown + LAST_STOP_GRACE_SECS,
        "terminationGracePeriodSeconds {grace} must exceed preStop {sleep} s + \
         gracefulShutdownTimeout {shutdown} s + {LAST_STOP_GRACE_SECS} s, or the kubelet's \
         SIGKILL cuts the drain short"
    );
}

#[test]
fn the_container_port_is_the_front_port_and_the_service_targets_it() {
    let m = Manifests::read();
    let spec = m.spec();
    assert_eq!(m.port(&"http".into()), u64::from(spec.listen.port()));
    let ports = m.service["spec"]["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 1, "the Service exposes the front port only");
    assert_eq!(m.port(&ports[0]["targetPort"]), u64::from(spec.listen.port()));
    let labels = &m.deployment["spec"]["template"]["metadata"]["labels"];
    for selector in
        [&m.service["spec"]["selector"], &m.deployment["spec"]["selector"]["matchLabels"]]
    {
        for (k, v) in selector.as_object().unwrap() {
            assert_eq!(&labels[k], v, "the pods carry the selector's label {k}");
        }
    }
}

#[test]
fn memory_requests_and_limits_fit_the_workers() {
    let m = Manifests::read();
    let spec = m.spec();
    let resources = &m.container()["resources"];
    let per_worker = spec.max_memory_bytes;
    let workers = spec.workers as u64;
    // A recycle or a rolling restart starts the replacement before its old worker stops.
    let surge = spec.rolling_restart.max_surge.max(spec.health.max_concurrent_recycles) as u64;
    let request = files::bytes(&resources["requests"]["memory"]);
    let limit = files::bytes(&resources["limits"]["memory"]);
    let mib = |b: u64| b >> 20;
    assert!(
        request >= workers * per_worker + PRIMARY_OVERHEAD,
        "requests.memory {} MiB < {workers} workers x maxMemoryUsage {} MiB + the primary's {} MiB",
        mib(request),
        mib(per_worker),
        mib(PRIMARY_OVERHEAD)
    );
    assert!(
        limit >= (workers + surge) * per_worker + PRIMARY_OVERHEAD,
        "limits.memory {} MiB < ({workers} + {surge}) workers x maxMemoryUsage {} MiB + the primary's {} MiB",
        mib(limit),
        mib(per_worker),
        mib(PRIMARY_OVERHEAD)
    );
}

#[test]
fn prometheus_scrapes_the_metrics_route_on_the_admin_port() {
    let m = Manifests::read();
    let spec = m.spec();
    let annotations = &m.deployment["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/path"], routes::METRICS);
    let port: u16 = annotations["prometheus.io/port"].as_str().unwrap().parse().unwrap();
    assert_eq!(Some(port), spec.admin.listen.map(|a| a.port()));
}
