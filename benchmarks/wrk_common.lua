-- Shared by the wrk scripts of benchmarks/: thread bookkeeping, counting non-200 answers, and done()
-- printing one line "WRK_RESULT {json}" (requests, duration, socket errors, non-200 answers, latency
-- percentiles) that benchmarks/update_check.py parses. A script loads it first with
--   dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "wrk_common.lua")

threads = {}
local next_id = 1

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

non200 = 0

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
