-- wrk script for benchmarks/scale.py: a device API load of update checks, downloads and reports.
--
--   wrk -t2 -c1000 -d60s -s wrk_mix.lua URL -- KEY SALT LABEL HASH BLOB_PATH CHECKS DOWNLOADS REPORTS
--
-- Out of every 100 requests, CHECKS are update checks (/v1/update-check from a device on LABEL/HASH, or
-- on the embedded bundle for every other one), DOWNLOADS are GETs of BLOB_PATH (the CDN stand-in answers
-- them) and REPORTS are POST /v1/report ("downloaded" or "installed" of LABEL). Every request has its own
-- client id "<SALT>-t<thread>-<counter>". done() prints "WRK_RESULT {json}" like wrk_clients.lua.

local threads = {}
local next_id = 1

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local counter = 0
local prefix = ""
local key, label, hash, blob = "", "", "", ""
local checks, downloads = 100, 0
non200 = 0

function init(args)
  key, label, hash, blob = args[1], args[3], args[4], args[5]
  prefix = string.format("%s-t%02d-", args[2], tid)
  checks, downloads = tonumber(args[6]), tonumber(args[7])
end

function request()
  counter = counter + 1
  local client = prefix .. string.format("%010d", counter)
  local slot = counter % 100
  if slot < checks then
    local on = ""
    if counter % 2 == 0 then
      on = "&label=" .. label .. "&package_hash=" .. hash
    end
    return wrk.format("GET", "/v1/update-check?deployment_key=" .. key .. "&app_version=1.0.0" .. on
      .. "&client_id=" .. client)
  elseif slot < checks + downloads then
    return wrk.format("GET", blob)
  end
  local status = "downloaded"
  if counter % 2 == 0 then
    status = "installed"
  end
  local body = '{"deployment_key":"' .. key .. '","label":"' .. label .. '","status":"' .. status
    .. '","client_id":"' .. client .. '"}'
  return wrk.format("POST", "/v1/report", { ["Content-Type"] = "application/json" }, body)
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
