-- wrk script for bench/webhook_ingest.py --client wrk: Alertmanager v4 notifications, every
-- alert a new firing episode (its own fingerprint), like the Python client's payloads.
-- Environment: WRK_TOKEN (bearer token), WRK_ALERTS (alerts a payload; 0 = GET /healthz),
-- WRK_RUN (a prefix that makes this run's fingerprints unique).
-- done() prints one line: WRK_RESULT {json}.

local token = os.getenv("WRK_TOKEN") or ""
local per = tonumber(os.getenv("WRK_ALERTS") or "0")
local run = os.getenv("WRK_RUN") or "r"
local threads = {}

local rules = {
  {"HighCPUUsage", "warning", "node"},
  {"DiskWillFillIn4Hours", "critical", "node"},
  {"KubePodCrashLooping", "warning", "kube-state-metrics"},
  {"PostgresqlReplicationLag", "warning", "postgres"},
  {"ProbeHttpFailure", "critical", "blackbox"},
}
local services = {"payments-api", "checkout-web", "billing-worker", "identity-api", "search-api"}
local t0 = 1790812800 -- 2026-10-01T00:00:00Z

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  n = 0
  ok = 0
  bad = 0
end

local function alert(k)
  local rule = rules[k % #rules + 1]
  local name, severity, job = rule[1], rule[2], rule[3]
  local service = services[k % #services + 1]
  local starts = os.date("!%Y-%m-%dT%H:%M:%SZ", t0 + k % 5000000)
  return string.format(
    '{"status":"firing","labels":{"alertname":"%s","severity":"%s","service":"%s",'
      .. '"team":"platform","job":"%s","instance":"10.0.%d.%d:9100"},'
      .. '"annotations":{"summary":"%s on %s","description":"%s has been firing for %s '
      .. '(bench alert %d)","runbook_url":"https://runbooks.example.org/%s"},'
      .. '"startsAt":"%s","endsAt":"0001-01-01T00:00:00Z",'
      .. '"generatorURL":"http://prometheus.example.org:9090/graph?g0.expr=%s&g0.tab=1",'
      .. '"fingerprint":"%s%02d%012x"}',
    name, severity, service, job, k % 250, k % 200, name, service, name, service, k,
    string.lower(name), starts, name, run, tid, k)
end

function request()
  if per == 0 then
    return wrk.format("GET", "/healthz")
  end
  local alerts = {}
  local first
  for i = 1, per do
    alerts[i] = alert(n)
    if i == 1 then first = rules[n % #rules + 1][1] end
    n = n + 1
  end
  local body = '{"version":"4","groupKey":"{}:{alertname=\\"' .. first .. '\\"}",'
    .. '"truncatedAlerts":0,"status":"firing","receiver":"opsledger",'
    .. '"groupLabels":{"alertname":"' .. first .. '"},"commonLabels":{"team":"platform"},'
    .. '"commonAnnotations":{},"externalURL":"http://alertmanager.example.org:9093",'
    .. '"alerts":[' .. table.concat(alerts, ",") .. ']}'
  return wrk.format("POST", "/api/v1/hooks/alertmanager", {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
  }, body)
end

function response(status, headers, body)
  if (per == 0 and status == 200) or (per > 0 and status == 202) then
    ok = ok + 1
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local oks, bads = 0, 0
  for _, thread in ipairs(threads) do
    oks = oks + thread:get("ok")
    bads = bads + thread:get("bad")
  end
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"ok":%d,"bad":%d,"socket_errors":%d,'
      .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, oks, bads,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
