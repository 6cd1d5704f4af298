// Checks of the Helm chart (helm/ringmq) and the kustomize example (deploy/k8s):
// what they render is validated against the Kubernetes, Prometheus-Operator and
// cert-manager schemas, linted, and checked for what a broker cluster needs
// (probes on the real endpoints, peer discovery through the headless Service,
// a grace period longer than the drain, a configuration ringmq accepts).
//
//   node check_chart.mjs render VALUES...       helm template with these values files
//   node check_chart.mjs kustomize DIR          kubectl kustomize --enable-helm DIR
//   node check_chart.mjs bad-values FILE        the chart must refuse FILE ("# expect: text")
//   node check_chart.mjs bad-config FILE        renders, but ringmq --check-config refuses it
//   node check_chart.mjs readme                 README.md's parameter table is up to date
//   node check_chart.mjs files                  files/ holds the same rules and dashboard as deploy/
//
// Tools come from the environment: HELM, KUBECTL, RINGMQ, YAMLLINT, PROMTOOL, OPENSSL.
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const chart = path.join(root, "helm/ringmq");
const tool = (name, fallback) => process.env[name] || fallback;
const helm = tool("HELM", path.join(root, ".tools/helm-3.17.2/helm"));
const release = "mq";
const namespace = "iot";

const problems = [];
const problem = (what) => problems.push(what);
function finish(what) {
  if (problems.length) {
    console.error(`FAILED ${what}:\n  - ${problems.join("\n  - ")}`);
    process.exit(1);
  }
  console.log(`ok: ${what}`);
}

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 64 << 20, ...options });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  return r;
}

function helmTemplate(valuesFiles) {
  const args = ["template", release, chart, "--namespace", namespace];
  for (const f of valuesFiles) args.push("-f", f);
  return run(helm, args);
}

// ---------------------------------------------------------------------------
// Schemas: kubernetes-models and its Prometheus-Operator and cert-manager
// packages, chosen by apiVersion and kind.

async function modelFor(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const candidates = [];
  if (group === "monitoring.coreos.com") {
    candidates.push(`@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`);
  } else if (group === "cert-manager.io") {
    candidates.push(`@kubernetes-models/cert-manager/${apiVersion}/${kind}`);
  } else {
    candidates.push(`kubernetes-models/${group ? `${group}/` : ""}${version}/${kind}`);
  }
  for (const c of candidates) {
    try {
      const m = await import(c);
      if (m[kind]) return m[kind];
    } catch {
      // the next candidate
    }
  }
  return null;
}

async function validateSchemas(objects) {
  for (const o of objects) {
    const id = `${o.kind}/${o.metadata?.name}`;
    const Model = await modelFor(o.apiVersion, o.kind);
    if (!Model) {
      problem(`${id}: no schema for ${o.apiVersion} ${o.kind}`);
      continue;
    }
    try {
      new Model(o).validate();
    } catch (e) {
      problem(`${id} does not match the ${o.apiVersion} ${o.kind} schema: ${e.message}`);
    }
  }
}

// ---------------------------------------------------------------------------
// What a ringmq cluster needs from the objects.

const byKind = (objects, kind) => objects.filter((o) => o.kind === kind);
const one = (objects, kind) => {
  const found = byKind(objects, kind);
  if (found.length !== 1) problem(`expected one ${kind}, found ${found.length}`);
  return found[0];
};
// JSON with sorted keys: helm's toYaml sorts them, the files in deploy/ do not.
const canonical = (v) =>
  Array.isArray(v) ? `[${v.map(canonical).join(",")}]`
    : v && typeof v === "object" ? `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(",")}}`
    : JSON.stringify(v);
const portOf = (bind) => Number(String(bind).split(":").pop());
const matches = (selector, labels) =>
  Object.entries(selector || {}).every(([k, v]) => labels?.[k] === v);

function checkBroker(objects) {
  const sts = one(objects, "StatefulSet");
  if (!sts) return null;
  const pod = sts.spec.template;
  const container = pod.spec.containers.find((c) => c.name === "ringmq");
  if (!container) {
    problem("the StatefulSet has no container named ringmq");
    return null;
  }
  const ports = Object.fromEntries((container.ports || []).map((p) => [p.name, p.containerPort]));

  // The configuration the pods read.
  const configMount = container.volumeMounts.find((m) => m.name === "config");
  const configVolume = pod.spec.volumes.find((v) => v.name === "config");
  const configMap = byKind(objects, "ConfigMap").find(
    (c) => c.metadata.name === configVolume?.configMap?.name);
  const args = container.args || [];
  const configPath = args[args.indexOf("-c") + 1];
  if (!configMap || !configMount || !configPath?.startsWith(configMount.mountPath + "/")) {
    problem("the container's -c file is not the mounted ConfigMap");
    return null;
  }
  const configText = configMap.data[path.basename(configPath)];
  const config = YAML.parse(configText);

  // Probes on the real endpoints and port.
  const httpPort = portOf(config.http.bind);
  const probes = { startupProbe: "/livez", livenessProbe: "/livez", readinessProbe: "/readyz" };
  for (const [probe, endpoint] of Object.entries(probes)) {
    const get = container[probe]?.httpGet;
    if (!get) {
      problem(`${probe} missing`);
      continue;
    }
    if (get.path !== endpoint) problem(`${probe} asks ${get.path}, not ${endpoint}`);
    const port = typeof get.port === "string" ? ports[get.port] : get.port;
    if (port !== httpPort) problem(`${probe} asks port ${get.port}, http.bind is ${config.http.bind}`);
  }

  // Every listener's port is a container port of that name, and the client
  // Service points at listeners only.
  for (const l of config.listeners) {
    if (ports[l.name] !== portOf(l.bind)) {
      problem(`listener ${l.name} (${l.bind}) has no container port of that name and number`);
    }
  }
  const services = byKind(objects, "Service");
  const headless = services.find((s) => s.spec.clusterIP === "None");
  const client = services.find((s) => s.spec.clusterIP !== "None");
  for (const s of services) {
    if (!matches(s.spec.selector, pod.metadata.labels)) problem(`Service ${s.metadata.name} selects no pod`);
    for (const p of s.spec.ports) {
      if (!(p.targetPort in ports)) problem(`Service ${s.metadata.name} port ${p.name} aims at ${p.targetPort}, not a container port`);
    }
  }
  if (client) {
    const listenerNames = new Set(config.listeners.map((l) => l.name));
    for (const p of client.spec.ports) {
      if (!listenerNames.has(p.targetPort)) problem(`client Service port ${p.name} is no listener`);
    }
  } else {
    problem("no client Service");
  }

  // Peer discovery: the headless Service is the StatefulSet's, publishes pods
  // before they are ready, and is the name in cluster.dns.
  if (!headless) {
    problem("no headless Service");
  } else {
    if (sts.spec.serviceName !== headless.metadata.name) {
      problem(`StatefulSet serviceName ${sts.spec.serviceName} is not the headless Service ${headless.metadata.name}`);
    }
    if (headless.spec.publishNotReadyAddresses !== true) {
      problem("the headless Service must publish not-ready pods (peers find each other before they are ready)");
    }
  }
  const clustered = sts.spec.replicas > 1;
  if (clustered) {
    const dns = config.cluster?.dns || "";
    const expected = `${headless?.metadata.name}.${namespace}.svc.cluster.local:${ports.cluster}`;
    if (dns !== expected) problem(`cluster.dns is "${dns}", the pods' headless Service is ${expected}`);
    if (portOf(config.cluster.bind) !== ports.cluster) problem("cluster.bind is not the container port cluster");
    const advertise = container.env.find((e) => e.name === "RINGMQ_CLUSTER__ADVERTISE");
    if (advertise?.value !== `$(POD_IP):${ports.cluster}`) problem("cluster.advertise is not the pod IP and cluster port");
    if (!container.env.find((e) => e.name === "POD_IP" && e.valueFrom?.fieldRef?.fieldPath === "status.podIP")) {
      problem("POD_IP does not come from status.podIP");
    }
    if (sts.spec.podManagementPolicy !== "Parallel") problem("podManagementPolicy is not Parallel");
    const pdb = one(objects, "PodDisruptionBudget");
    if (pdb && (pdb.spec.maxUnavailable !== 1 || !matches(pdb.spec.selector.matchLabels, pod.metadata.labels))) {
      problem("the PodDisruptionBudget does not allow exactly one of these pods to be unavailable");
    }
  } else if (config.cluster) {
    problem("one node is configured as a cluster");
  }

  // The grace period covers the preStop wait and the SIGTERM's shutdown.
  const grace = pod.spec.terminationGracePeriodSeconds;
  const shutdown = (config.node?.shutdown_timeout_ms ?? 10000) / 1000;
  const preStop = container.lifecycle?.preStop?.exec?.command || [];
  const wait = preStop.includes("--timeout") ? Number(preStop[preStop.indexOf("--timeout") + 1]) : 0;
  if (!(grace > wait + shutdown)) {
    problem(`terminationGracePeriodSeconds ${grace} is not longer than the preStop wait ${wait} s plus the shutdown ${shutdown} s`);
  }
  if (preStop.length) {
    const url = preStop[preStop.indexOf("--url") + 1] || "";
    if (!preStop.includes("pre-stop") || portOf(url) !== httpPort) problem(`preStop ${preStop.join(" ")} does not ask this node's HTTP port`);
  }

  // Security.
  const psc = pod.spec.securityContext || {};
  const csc = container.securityContext || {};
  if (psc.runAsNonRoot !== true) problem("the pod may run as root");
  if (csc.readOnlyRootFilesystem !== true) problem("the root file system is writable");
  if (!(csc.capabilities?.drop || []).includes("ALL")) problem("capabilities are not dropped");
  if (csc.allowPrivilegeEscalation !== false) problem("privilege escalation is allowed");
  const data = container.volumeMounts.find((m) => m.mountPath === config.node.data_dir);
  const claim = (sts.spec.volumeClaimTemplates || []).find((c) => c.metadata.name === data?.name);
  const emptyDir = pod.spec.volumes.find((v) => v.name === data?.name && v.emptyDir);
  if (!data || (!claim && !emptyDir)) problem(`node.data_dir ${config.node.data_dir} is not a volume`);

  // Every Secret the pod reads is rendered, or made by a cert-manager Certificate.
  const secrets = new Set(byKind(objects, "Secret").map((s) => s.metadata.name));
  for (const c of byKind(objects, "Certificate")) secrets.add(c.spec.secretName);
  const wanted = [];
  for (const v of pod.spec.volumes) {
    if (v.secret) wanted.push(v.secret.secretName);
    for (const s of v.projected?.sources || []) if (s.secret) wanted.push(s.secret.name);
  }
  for (const e of container.env) if (e.valueFrom?.secretKeyRef) wanted.push(e.valueFrom.secretKeyRef.name);
  for (const w of wanted) if (!secrets.has(w)) problem(`the pod reads Secret ${w}, which nothing makes`);

  return { sts, container, config, configText, headless };
}

function checkMonitoring(objects, headless, work) {
  for (const sm of byKind(objects, "ServiceMonitor")) {
    if (!headless || !matches(sm.spec.selector.matchLabels, headless.metadata.labels)) {
      problem("the ServiceMonitor does not select the headless Service");
    } else if (!headless.spec.ports.some((p) => p.name === sm.spec.endpoints[0].port)) {
      problem(`the ServiceMonitor scrapes port ${sm.spec.endpoints[0].port}, which the Service lacks`);
    }
    if (sm.spec.endpoints[0].path !== "/metrics") problem("the ServiceMonitor does not scrape /metrics");
  }
  for (const rule of byKind(objects, "PrometheusRule")) {
    const file = path.join(work, "rules.yml");
    fs.writeFileSync(file, YAML.stringify({ groups: rule.spec.groups }));
    const r = run(tool("PROMTOOL", "promtool"), ["check", "rules", file]);
    if (r.status !== 0) problem(`promtool check rules on the PrometheusRule: ${r.stdout}${r.stderr}`);
    const deployed = YAML.parse(fs.readFileSync(path.join(root, "deploy/prometheus/rules/ringmq-alerts.yml"), "utf8"));
    if (canonical(deployed.groups) !== canonical(rule.spec.groups)) {
      problem("the PrometheusRule's groups differ from deploy/prometheus/rules/ringmq-alerts.yml");
    }
  }
  for (const cm of byKind(objects, "ConfigMap").filter((c) => c.data?.["ringmq.json"])) {
    const deployed = JSON.parse(fs.readFileSync(path.join(root, "deploy/grafana/dashboards/ringmq.json"), "utf8"));
    let shipped;
    try {
      shipped = JSON.parse(cm.data["ringmq.json"]);
    } catch (e) {
      problem(`the dashboard ConfigMap holds no JSON: ${e.message}`);
      continue;
    }
    if (canonical(shipped) !== canonical(deployed)) problem("the dashboard ConfigMap differs from deploy/grafana");
    if (cm.metadata.labels?.grafana_dashboard !== "1") problem("the dashboard ConfigMap lacks the sidecar label");
  }
}

// ringmq --check-config on the rendered configuration, as the pod would run
// it: the same environment, the Secrets' files, a certificate where the TLS
// Secret would be mounted.
function checkConfig(objects, broker, work) {
  const { container, configText } = broker;
  const mounts = Object.fromEntries(container.volumeMounts.map((m) => [m.mountPath, path.join(work, "mnt", m.name)]));
  for (const to of Object.values(mounts)) fs.mkdirSync(to, { recursive: true });
  // Each mount path, where a value starts with it, becomes its stand-in (one
  // pass, longest first, so that no stand-in is rewritten again).
  const froms = Object.keys(mounts).sort((a, b) => b.length - a.length);
  const escaped = froms.map((f) => f.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const pattern = new RegExp(`(^|[\\s"'])(${escaped.join("|")})(?=[/\\s"']|$)`, "gm");
  const text = configText.replace(pattern, (_, before, from) => before + mounts[from]);
  const secretData = (name, key) => {
    const s = byKind(objects, "Secret").find((x) => x.metadata.name === name);
    return s?.data?.[key] !== undefined ? Buffer.from(s.data[key], "base64") : null;
  };
  const pod = broker.sts.spec.template.spec;
  for (const v of pod.volumes) {
    const dir = path.join(work, "mnt", v.name);
    for (const s of v.projected?.sources || []) {
      for (const item of s.secret?.items || []) {
        const content = secretData(s.secret.name, item.key);
        if (content === null) problem(`Secret ${s.secret.name} has no key ${item.key}`);
        else fs.writeFileSync(path.join(dir, item.path), content);
      }
    }
    if (v.secret) {
      // A kubernetes.io/tls Secret: a self-signed certificate stands in.
      const openssl = tool("OPENSSL", "openssl");
      execFileSync(openssl, ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-days", "1", "-subj", "/CN=ringmq", "-keyout", path.join(dir, "tls.key"),
        "-out", path.join(dir, "tls.crt")], { stdio: "ignore" });
      fs.copyFileSync(path.join(dir, "tls.crt"), path.join(dir, "ca.crt"));
    }
  }
  const file = path.join(work, "ringmq.yaml");
  fs.writeFileSync(file, text);
  const env = { PATH: process.env.PATH, HOME: work, POD_IP: "10.1.2.3" };
  for (const e of container.env) {
    if (e.value !== undefined) env[e.name] = e.value.replace(/\$\(([A-Z_]+)\)/g, (_, n) => env[n] ?? "");
    else if (e.valueFrom?.secretKeyRef) {
      const v = secretData(e.valueFrom.secretKeyRef.name, e.valueFrom.secretKeyRef.key);
      env[e.name] = v ? v.toString() : "from-an-existing-secret";
    }
  }
  return run(tool("RINGMQ", "ringmq"), ["--check-config", "-c", file], { env });
}

async function checkRendered(text, what, { expectConfigError } = {}) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "ringmq-chart-"));
  try {
    const docs = YAML.parseAllDocuments(text);
    for (const d of docs) for (const e of d.errors) problem(`YAML: ${e.message}`);
    const objects = docs.map((d) => d.toJS()).filter((o) => o);
    for (const o of objects) {
      if (!o.apiVersion || !o.kind || !o.metadata?.name) problem(`an object without apiVersion, kind or name: ${JSON.stringify(o).slice(0, 120)}`);
    }
    await validateSchemas(objects);

    // yamllint on exactly what would be applied.
    const rendered = path.join(work, "rendered.yaml");
    fs.writeFileSync(rendered, text);
    const lint = run(tool("YAMLLINT", "yamllint"), ["--strict", "-c", path.join(here, "yamllint-rendered.yaml"), rendered]);
    if (lint.status !== 0) problem(`yamllint:\n${lint.stdout}${lint.stderr}`);

    const broker = checkBroker(objects);
    checkMonitoring(objects, broker?.headless, work);
    if (broker) {
      const r = checkConfig(objects, broker, work);
      const said = `${r.stdout}${r.stderr}`.trim();
      if (expectConfigError) {
        if (r.status !== 2 || !said.includes(expectConfigError)) {
          problem(`ringmq --check-config should refuse "${expectConfigError}" (exit 2), said (exit ${r.status}): ${said}`);
        }
      } else if (r.status !== 0) {
        problem(`ringmq --check-config refuses the rendered configuration (exit ${r.status}):\n${said}\n--- config:\n${broker.configText}`);
      } else {
        console.log(`  ${said}`);
      }
    }
    console.log(`  ${objects.length} objects: ${objects.map((o) => o.kind).join(", ")}`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  finish(what);
}

const expectation = (file, tag) => {
  const m = fs.readFileSync(file, "utf8").match(new RegExp(`^# ${tag}: (.+)$`, "m"));
  if (!m) throw new Error(`${file} has no "# ${tag}:" line`);
  return m[1].trim();
};

const [mode, ...rest] = process.argv.slice(2);
switch (mode) {
  case "render": {
    const r = helmTemplate(rest);
    if (r.status !== 0) {
      problem(`helm template: ${r.stderr}`);
      finish(`helm template ${rest.join(" ")}`);
    }
    await checkRendered(r.stdout, `helm template ${rest.map((f) => path.basename(f)).join(" ")}`);
    break;
  }
  case "kustomize": {
    const r = run(tool("KUBECTL", "kubectl"), ["kustomize", "--enable-helm", "--helm-command", helm, rest[0]]);
    if (r.status !== 0) {
      problem(`kubectl kustomize: ${r.stderr}`);
      finish("kubectl kustomize");
    }
    await checkRendered(r.stdout, `kubectl kustomize ${path.relative(root, rest[0])}`);
    break;
  }
  case "bad-values": {
    const expect = expectation(rest[0], "expect");
    const r = helmTemplate([rest[0]]);
    if (r.status === 0) problem(`helm accepted ${path.basename(rest[0])}`);
    else if (!r.stderr.includes(expect)) problem(`helm refused ${path.basename(rest[0])} without saying "${expect}":\n${r.stderr}`);
    else console.log(`  ${r.stderr.trim().split("\n").slice(-1)[0]}`);
    finish(`the chart refuses ${path.basename(rest[0])}`);
    break;
  }
  case "bad-config": {
    const expect = expectation(rest[0], "expect-config");
    const r = helmTemplate([rest[0]]);
    if (r.status !== 0) {
      problem(`helm template: ${r.stderr}`);
      finish(path.basename(rest[0]));
    }
    await checkRendered(r.stdout, `ringmq --check-config refuses ${path.basename(rest[0])}`, { expectConfigError: expect });
    break;
  }
  case "readme": {
    // The generator rewrites README.md in place: run it on copies.
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "ringmq-readme-"));
    for (const f of ["values.yaml", "README.md"]) fs.copyFileSync(path.join(chart, f), path.join(work, f));
    const r = run(process.execPath, [path.join(here, "node_modules/@bitnami/readme-generator-for-helm/bin/index.js"),
      "-v", path.join(work, "values.yaml"), "-r", path.join(work, "README.md")]);
    if (r.status !== 0 || /error/i.test(r.stderr)) problem(`the README generator: ${r.stdout}${r.stderr}`);
    else if (fs.readFileSync(path.join(work, "README.md"), "utf8") !== fs.readFileSync(path.join(chart, "README.md"), "utf8")) {
      problem("helm/ringmq/README.md does not list the values of values.yaml as they are: run ./dev chart-readme");
    }
    fs.rmSync(work, { recursive: true, force: true });
    finish("the chart's README lists every value");
    break;
  }
  case "files": {
    const same = (a, b) => fs.readFileSync(path.join(root, a), "utf8") === fs.readFileSync(path.join(root, b), "utf8");
    if (!same("deploy/prometheus/rules/ringmq-alerts.yml", "helm/ringmq/files/ringmq-alerts.yml")) {
      problem("helm/ringmq/files/ringmq-alerts.yml differs from deploy/prometheus/rules/ringmq-alerts.yml: copy it");
    }
    if (!same("deploy/grafana/dashboards/ringmq.json", "helm/ringmq/files/ringmq-dashboard.json")) {
      problem("helm/ringmq/files/ringmq-dashboard.json differs from deploy/grafana/dashboards/ringmq.json: copy it");
    }
    finish("the chart's copies of the alert rules and the dashboard are current");
    break;
  }
  default:
    console.error("usage: check_chart.mjs render VALUES... | kustomize DIR | bad-values FILE | bad-config FILE | readme | files");
    process.exit(2);
}
