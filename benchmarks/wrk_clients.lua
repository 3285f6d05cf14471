-- wrk script for benchmarks/update_check.py: every request is an update check from a new device.
--
--   wrk -t2 -c32 -d10s -s wrk_clients.lua URL -- PROTOCOL DEPLOYMENT_KEY SALT STATE [STATE ...]
--
-- PROTOCOL is "native" (/v1/update-check) or "codepush" (/v0.1/public/codepush/update_check, as
-- react-native-code-push >= 5.7 asks).
-- Each STATE is "label:package_hash" (either may be empty) and describes the bundle a device runs; the
-- requests cycle through them. client_id is "<SALT>-t<thread>-<counter>", fixed-width, so every request
-- of a run has a distinct id and the same URL length whichever server is measured. done() prints one line
-- "WRK_RESULT {json}" with requests, duration, socket errors, non-200 answers and latency percentiles.

local threads = {}
local next_id = 1

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local paths = {}
local counter = 0
local client_prefix = ""
non200 = 0

function init(args)
  local protocol = args[1]
  local key = args[2]
  client_prefix = string.format("%s-t%02d-", args[3], tid)
  local route, client = "/v1/update-check?", "&client_id="
  if protocol == "codepush" then
    route, client = "/v0.1/public/codepush/update_check?", "&client_unique_id="
  end
  for i = 4, #args do
    local label, hash = string.match(args[i], "^([^:]*):(.*)$")
    paths[#paths + 1] = route .. "deployment_key=" .. key .. "&app_version=1.0.0&label=" .. label
      .. "&package_hash=" .. hash .. client .. client_prefix
  end
  if #paths == 0 then
    paths[1] = route .. "deployment_key=" .. key .. "&app_version=1.0.0" .. client .. client_prefix
  end
end

function request()
  counter = counter + 1
  local path = paths[(counter % #paths) + 1] .. string.format("%010d", counter)
  return wrk.format("GET", path)
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non200")
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"non200":%d,"connect":%d,"read":%d,'
      .. '"write":%d,"timeout":%d,"status":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,'
      .. '"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, bad, e.connect, e.read, e.write, e.timeout,
    e.status, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
